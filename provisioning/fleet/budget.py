"""The fleet jobs' share of the panel budget.

Our budget for the application API is PTERODACTYL_RATE_LIMIT_PER_MINUTE (200 of the panel's
240). The fleet work (the drain's panel operations, and the health and reconcile jobs' list
reads) takes at most FLEET_PANEL_RATE_LIMIT_PER_MINUTE of it, through one more limiter shared by
every worker (Redis), so provisioning always keeps the rest.
"""

from typing import Any

from django.conf import settings

from provisioning.pterodactyl import PterodactylClient
from provisioning.pterodactyl.ratelimit import build_rate_limiter

# A fleet read may wait for its share (it is a scheduled job walking pages, not a customer's
# request); past this it stops and the next run reads again.
READ_MAX_WAIT_SECONDS = 300.0
_limiters: dict[tuple[str, int, str | None, float], Any] = {}


def fleet_share_limiter(*, max_wait: float = READ_MAX_WAIT_SECONDS) -> Any:
    key = (
        settings.PTERODACTYL_URL or "-",
        settings.FLEET_PANEL_RATE_LIMIT_PER_MINUTE,
        settings.PTERODACTYL_RATE_LIMIT_REDIS_URL,
        max_wait,
    )
    if key not in _limiters:
        _limiters[key] = build_rate_limiter(
            base_url=key[0],
            limit_per_minute=key[1],
            redis_url=key[2],
            bucket="fleet",
            max_wait=max_wait,
        )
    return _limiters[key]


def fleet_panel_client(**overrides: Any) -> PterodactylClient:
    """An application-API client whose every request also counts against the fleet share."""
    return PterodactylClient.from_settings(share=fleet_share_limiter(), **overrides)
