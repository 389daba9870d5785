"""API permissions: what a bearer token's scopes allow (common.tokens).

A session caller (the dashboard's own fetches, a logged-in browser) has every right of its
user; a token caller has its user's rights narrowed to the token's scopes. A view names the
scope each method needs in `required_scopes`; otherwise reads need `read` and writes `write`.
Views list `CUSTOMER`, `STAFF` or `PUBLIC` as their permission classes, so no view can drop
the scope check by naming its own classes (tests/test_api_tokens.py walks every route).
"""

from typing import Any

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, AllowAny, BasePermission, IsAdminUser
from rest_framework.permissions import IsAuthenticated as DrfIsAuthenticated
from rest_framework.request import Request

from common.actors import Actor
from common.admin_site import session_is_verified
from common.models import ApiToken, ApiTokenScope


def required_scope(request: Request, view: Any) -> str:
    scopes: dict[str, str] = getattr(view, "required_scopes", None) or {}
    if request.method in scopes:
        return scopes[request.method]
    return ApiTokenScope.READ if request.method in SAFE_METHODS else ApiTokenScope.WRITE


class TokenScopes(BasePermission):
    message = "This token's scopes do not allow this call."

    def has_permission(self, request: Request, view: Any) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return True
        scope = required_scope(request, view)
        if token.has_scope(scope):
            return True
        self.message = f"This token lacks the '{scope}' scope this call needs."
        return False


class StaffSecondFactor(BasePermission):
    """A staff account reaches the API with an API token (created from a session that passed
    the second factor, or by staff in the admin) or a session verified like the admin's; a
    staff password alone (HTTP Basic, an unverified session) is not enough, as in the admin.
    Customers are not concerned. OTP_ADMIN_REQUIRED=false turns it off, as in the admin."""

    message = (
        "Staff accounts use the API with an API token, or a session that passed the second factor."
    )

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not getattr(user, "is_staff", False) or isinstance(request.auth, ApiToken):
            return True
        return not settings.OTP_ADMIN_REQUIRED or session_is_verified(request)


class StaffModelPermissions(BasePermission):
    """The Django permissions a staff route's method needs (`required_perms`), as the admin's
    actions need them: a read-only support account cannot terminate a server by API."""

    message = "Your staff account lacks the permission this call needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        perms: dict[str, tuple[str, ...]] = getattr(view, "required_perms", None) or {}
        return request.user.has_perms(perms.get(request.method or "", ()))


def api_actor(request: Request) -> Actor:
    """Who an API call acts as, for the history rows: the user (as the admin names them), and
    for a token call the token's public prefix, so "which integration did it?" is answered."""
    actor = Actor.for_user(request.user)
    if isinstance(request.auth, ApiToken):
        return Actor(label=f"{actor.label} (token {request.auth.prefix})", user=request.user)
    return actor


# The permission lists views use.
CUSTOMER = [DrfIsAuthenticated, StaffSecondFactor, TokenScopes]
STAFF = [IsAdminUser, StaffSecondFactor, StaffModelPermissions, TokenScopes]
PUBLIC = [AllowAny, TokenScopes]
