"""API permissions: what a bearer token's scopes allow (common.tokens).

A session caller (the dashboard's own fetches, a logged-in browser) has every right of its
user; a token caller has its user's rights narrowed to the token's scopes. A view names the
scope each method needs in `required_scopes`; otherwise reads need `read` and writes `write`.
Views list `CUSTOMER`, `STAFF` or `PUBLIC` as their permission classes, so no view can drop
the scope check by naming its own classes (tests/test_api_tokens.py walks every route).
"""

from typing import Any

from rest_framework.permissions import SAFE_METHODS, AllowAny, BasePermission, IsAdminUser
from rest_framework.permissions import IsAuthenticated as DrfIsAuthenticated
from rest_framework.request import Request

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


# The permission lists views use.
CUSTOMER = [DrfIsAuthenticated, TokenScopes]
STAFF = [IsAdminUser, TokenScopes]
PUBLIC = [AllowAny, TokenScopes]
