"""Thin views: the WhatsApp webhook and the one-time credentials page."""

import logging

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from notifications.errors import CredentialsLinkError, NotificationErrorCode
from notifications.models import CredentialsLinkState
from notifications.selectors import credentials_reveal_state
from notifications.services import (
    credentials_reveal_consume,
    credentials_reveal_open,
    whatsapp_webhook_handshake,
    whatsapp_webhook_receive,
)
from notifications.services.webhooks import WebhookRejected

logger = logging.getLogger(__name__)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def whatsapp_webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        challenge = whatsapp_webhook_handshake(
            mode=request.GET.get("hub.mode", ""),
            verify_token=request.GET.get("hub.verify_token", ""),
            challenge=request.GET.get("hub.challenge", ""),
        )
        if challenge is None:
            logger.warning("whatsapp webhook handshake refused from %s", _client_ip(request))
            return HttpResponse("Forbidden", status=403, content_type="text/plain")
        return HttpResponse(challenge, content_type="text/plain")
    try:
        applied = whatsapp_webhook_receive(
            body=request.body,
            signature_header=request.headers.get("X-Hub-Signature-256", ""),
        )
    except WebhookRejected as exc:
        # The reason only; never the payload or the signature.
        logger.warning("whatsapp webhook rejected from %s: %s", _client_ip(request), exc.code)
        status = 403 if exc.code == NotificationErrorCode.INVALID_SIGNATURE else 400
        return JsonResponse({"message": exc.message, "code": exc.code}, status=status)
    return JsonResponse({"received": True, "applied": applied})


# The session key holding the opened link's id (never the token).
_REVEAL_SESSION_KEY = "credentials_reveal_id"


@never_cache
@login_required
@require_http_methods(["GET"])
def credentials_reveal(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the message: its token is exchanged at once for a reference kept in this
    session, and the browser goes on to the token-less page (the token leaves the address bar
    and history, and a copy from an access log opens nothing)."""
    try:
        reveal_id = credentials_reveal_open(
            user=request.user, token=token, opened_here=request.session.get(_REVEAL_SESSION_KEY)
        )
    except CredentialsLinkError as exc:
        state = exc.code.removeprefix("credentials_link_")
        return render(request, _REVEAL_TEMPLATE, {"state": state}, status=_STATUS[state])
    request.session[_REVEAL_SESSION_KEY] = reveal_id
    return redirect("notifications:credentials-page")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def credentials_page(request: HttpRequest) -> HttpResponse:
    """GET: a page with a "show" button (link scanners and previews do not use up the link);
    POST: the login details, once."""
    reveal_id = request.session.get(_REVEAL_SESSION_KEY)
    if request.method == "GET":
        state = credentials_reveal_state(user=request.user, reveal_id=reveal_id)
        return render(request, _REVEAL_TEMPLATE, {"state": state}, status=_STATUS[state])
    try:
        secrets = credentials_reveal_consume(user=request.user, reveal_id=reveal_id or 0)
    except CredentialsLinkError as exc:
        state = exc.code.removeprefix("credentials_link_")
        return render(request, _REVEAL_TEMPLATE, {"state": state}, status=_STATUS.get(state, 404))
    request.session.pop(_REVEAL_SESSION_KEY, None)
    return render(
        request, _REVEAL_TEMPLATE, {"state": CredentialsLinkState.REVEALED, "secrets": secrets}
    )


_REVEAL_TEMPLATE = "notifications/pages/credentials_reveal.html"
# Used, revoked, already opened or expired links are gone for good (410); unknown or someone
# else's: 404.
_STATUS = {
    CredentialsLinkState.VALID: 200,
    CredentialsLinkState.USED: 410,
    CredentialsLinkState.REVOKED: 410,
    CredentialsLinkState.OPENED: 410,
    CredentialsLinkState.EXPIRED: 410,
    CredentialsLinkState.INVALID: 404,
}


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "")
