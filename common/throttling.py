"""Per-token rate limit (the `token` rate of REST_FRAMEWORK's DEFAULT_THROTTLE_RATES)."""

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from common.models import ApiToken


class TokenRateThrottle(SimpleRateThrottle):
    """Each token has its own budget, beside its user's: one leaked integration token that
    loops cannot use up the account's other tokens' calls, and a revoked one stops at once."""

    scope = "token"

    def get_cache_key(self, request: Request, view: object) -> str | None:
        token = request.auth
        if not isinstance(token, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": token.pk}
