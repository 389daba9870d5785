"""Thin views: the WhatsApp webhook and the one-time credentials page."""

import logging

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from notifications.errors import CredentialsLinkError
from notifications.selectors import credentials_reveal_state
from notifications.services import (
    credentials_reveal_consume,
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
        status = 403 if exc.code == "invalid_signature" else 400
        return JsonResponse({"message": exc.message, "code": exc.code}, status=status)
    return JsonResponse({"received": True, "applied": applied})


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def credentials_reveal(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a page with a "show" button (link scanners and previews do not use up the link);
    POST: the login details, once."""
    template = "notifications/pages/credentials_reveal.html"
    if request.method == "GET":
        state = credentials_reveal_state(user=request.user, token=token)
        return render(request, template, {"state": state}, status=_STATUS[state])
    try:
        secrets = credentials_reveal_consume(user=request.user, token=token)
    except CredentialsLinkError as exc:
        state = exc.code.removeprefix("credentials_link_")
        return render(request, template, {"state": state}, status=_STATUS.get(state, 404))
    return render(request, template, {"state": "revealed", "secrets": secrets})


# Used or expired links are gone for good (410); unknown or someone else's: 404.
_STATUS = {"valid": 200, "used": 410, "expired": 410, "invalid": 404}


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "")
