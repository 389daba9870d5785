"""How django-axes counts failed logins here and what a locked-out client sees.

Configuration and the reasons for it: config/settings/auth.py.
"""

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit, get_lockout_parameters
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

LOCKED_OUT_MESSAGE = (
    "Too many failed log-in attempts. For your security, logging in is paused for {minutes} "
    "minutes. If you forgot your password, you can reset it."
)


def _is_ip_only(parameter: str | list[str]) -> bool:
    return parameter == "ip_address" or parameter == ["ip_address"]


class PortalAxesHandler(AxesDatabaseHandler):
    """Axes' database handler with a limit per lockout parameter.

    Axes compares one number (the largest count over AXES_LOCKOUT_PARAMETERS) with one limit.
    We want a low limit for one account from one address and a higher one for an address
    alone, so an address over AXES_IP_FAILURE_LIMIT reports AXES_FAILURE_LIMIT failures (the
    point where axes locks out), and every other parameter reports its own count.
    """

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        parameters = get_lockout_parameters(request, credentials)
        limit = get_failure_limit(request, credentials)
        failures = 0
        for parameter, attempts in zip(
            parameters, self.get_user_attempts(request, credentials), strict=True
        ):
            count = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            if _is_ip_only(parameter):
                count = limit if count >= settings.AXES_IP_FAILURE_LIMIT else 0
            failures = max(failures, count)
        return failures


def client_username(request: HttpRequest, credentials: dict | None) -> str | None:
    """The username as the backend will match it: "Alice@x" and "alice@x " count together."""
    field = settings.AXES_USERNAME_FORM_FIELD
    if credentials:
        username = credentials.get(field)
    else:
        username = getattr(request, "data", request.POST).get(field)
    return username.strip().lower() if isinstance(username, str) else username


def client_ip_address(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or the address our TRUSTED_PROXY_COUNT proxies saw (X-Forwarded-For).

    Each proxy appends the address it received the request from, so the client's address is
    the TRUSTED_PROXY_COUNT-th entry from the right; anything left of it is the client's own
    claim and is ignored.
    """
    count = settings.TRUSTED_PROXY_COUNT
    if count > 0:
        forwarded = [
            part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        ]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= count:
            return forwarded[-count]
    return request.META.get("REMOTE_ADDR")


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """429 with Retry-After: JSON in the API's error shape for API clients, else a page."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    message = LOCKED_OUT_MESSAGE.format(minutes=max(1, seconds // 60))
    wants_json = (
        request.path.startswith("/api/")
        or request.headers.get("x-requested-with") == "XMLHttpRequest"
        or "application/json" in request.headers.get("accept", "")
    )
    if wants_json:
        response: HttpResponse = JsonResponse(
            {"message": message, "code": "locked_out", "extra": {"retry_after": seconds}},
            status=429,
        )
    else:
        response = render(request, "registration/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = str(seconds)
    return response
