"""DRF authentication for the API (its own module: DRF imports it while defining APIView)."""

import logging
from typing import Any

from drf_spectacular import authentication as drf_spectacular_authentication
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

logger = logging.getLogger(__name__)


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's session authentication (CSRF enforced as before) with a challenge, so an
    anonymous call answers 401 "log in first" rather than 403 "you may not": DRF sends 403
    whenever the first authentication class names no WWW-Authenticate scheme."""

    def authenticate_header(self, request: Request) -> str:
        return 'Session realm="api"'


class SessionScheme(drf_spectacular_authentication.SessionScheme):
    """The OpenAPI schema describes it as DRF's (cookie) session scheme."""

    target_class = "common.authentication.SessionAuthentication"


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer gsp_...`: an API token (common.tokens). `request.auth` is the
    ApiToken, whose scopes common.permissions checks; a session caller has `request.auth` None.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Send the token as 'Authorization: Bearer <token>'."
            )
        try:
            plaintext = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        # Imported here: DRF imports this module while defining APIView, before apps load.
        from common.lockout import client_ip_address
        from common.tokens import api_token_authenticate, token_public_prefix

        token = api_token_authenticate(
            plaintext=plaintext, ip_address=client_ip_address(request._request)
        )
        if token is None:
            # Only the public prefix is logged, never the token (nor part of a foreign secret).
            logger.warning(
                "API call with an unknown, revoked or expired token %s",
                token_public_prefix(plaintext),
            )
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired token.")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "common.authentication.BearerTokenAuthentication"
    name = "BearerToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (gsp_...) created in the dashboard or the admin; "
            "its scopes (read, write, provisioning, billing) decide what it may do.",
        }
