"""The customer's API tokens: list, create (the token is shown once), revoke.

The plaintext exists only in the response to the create POST: it is rendered into that page
(no-store) and never put in the session, the messages or a redirect URL, so reloading or going
back does not show it again.
"""

import datetime as dt
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from billing.forms import ApiTokenCreateForm
from common.actors import Actor
from common.admin_site import second_factor_due
from common.errors import ApplicationError, NotFoundError
from common.models import ApiToken
from common.tokens import CreatedToken, api_token_create, api_token_list_for_user, api_token_revoke

STATUS_LABELS = {
    "active": gettext_lazy("Active"),
    "revoked": gettext_lazy("Revoked"),
    "expired": gettext_lazy("Expired"),
}
# The CSS status class of each token status (static/css/portal.css).
STATUS_CLASSES = {"active": "active", "revoked": "cancelled", "expired": "offline"}


@dataclass(frozen=True)
class TokenRow:
    token: ApiToken
    status: str

    @property
    def status_label(self) -> str:
        return str(STATUS_LABELS[self.status])

    @property
    def status_class(self) -> str:
        return STATUS_CLASSES[self.status]


def token_status(token: ApiToken, *, now: dt.datetime) -> str:
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "active"


def _tokens_page(
    request: HttpRequest,
    *,
    form: ApiTokenCreateForm | None = None,
    created: CreatedToken | None = None,
) -> HttpResponse:
    now = timezone.now()
    rows = [
        TokenRow(token=token, status=token_status(token, now=now))
        for token in api_token_list_for_user(user=request.user)
    ]
    context = {
        "rows": rows,
        "form": form or ApiTokenCreateForm(user=request.user),
        "created": created,
        # A staff password alone mints no token (it would reach every customer's data by
        # API): the admin's second factor first, as for the admin itself.
        "second_factor_due": second_factor_due(request),
    }
    return render(request, "billing/tokens.html", context)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The list and the create form; a successful POST shows the new token once."""
    if request.method != "POST":
        return _tokens_page(request)
    form = ApiTokenCreateForm(request.POST, user=request.user)
    if second_factor_due(request):
        messages.error(
            request,
            _("Staff accounts create tokens after the second factor: verify in the admin first."),
        )
        return redirect("account-tokens")
    if form.is_valid():
        try:
            created = api_token_create(
                user=request.user, actor=Actor.for_user(request.user), **form.service_arguments()
            )
        except ApplicationError as exc:
            form.add_service_errors(exc)
        else:
            # Rendered, not redirected: this response is the only place the token appears.
            return _tokens_page(request, created=created)
    return _tokens_page(request, form=form)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    """GET asks for confirmation; POST revokes. Another user's token is a 404."""
    if request.method != "POST":
        token = api_token_list_for_user(user=request.user).filter(pk=token_id).first()
        if token is None:
            raise Http404(_("No such token."))
        return render(request, "billing/token_revoke.html", {"token": token})
    try:
        token = api_token_revoke(
            token_id=token_id, actor=Actor.for_user(request.user), owner=request.user
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    messages.success(
        request,
        _("The token “%(name)s” is revoked: API calls with it are refused from now on.")
        % {"name": token.name},
    )
    return redirect("account-tokens")
