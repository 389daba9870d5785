"""DRF authentication for the API (its own module: DRF imports it while defining APIView)."""

from drf_spectacular import authentication as drf_spectacular_authentication
from rest_framework import authentication
from rest_framework.request import Request


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's session authentication (CSRF enforced as before) with a challenge, so an
    anonymous call answers 401 "log in first" rather than 403 "you may not": DRF sends 403
    whenever the first authentication class names no WWW-Authenticate scheme."""

    def authenticate_header(self, request: Request) -> str:
        return 'Session realm="api"'


class SessionScheme(drf_spectacular_authentication.SessionScheme):
    """The OpenAPI schema describes it as DRF's (cookie) session scheme."""

    target_class = "common.authentication.SessionAuthentication"
