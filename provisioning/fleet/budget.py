"""The fleet jobs' shares of the panel budget.

Our budget for the application API is PTERODACTYL_RATE_LIMIT_PER_MINUTE (228 of the panel's
240), shared by every worker. The fleet work takes two capped shares of it, each one more
limiter shared through Redis, so provisioning always keeps the rest:
- the drain of panel operations: PANEL_OPERATIONS_RATE_LIMIT_PER_MINUTE, taken without waiting
  (the drain hands over to a later task instead of sleeping);
- the health and reconcile jobs' list reads: FLEET_READ_RATE_LIMIT_PER_MINUTE, which a read
  waits for (a scheduled job walking pages, not a customer's request).
"""

from typing import Any

from django.conf import settings

from provisioning.pterodactyl import PterodactylClient
from provisioning.pterodactyl.ratelimit import build_rate_limiter

# A fleet read waits at most this long for a slot of its share; past it the read stops and the
# next run reads again.
READ_MAX_WAIT_SECONDS = 300.0
_limiters: dict[tuple[str, str, int, str | None, float], Any] = {}


def _limiter(bucket: str, per_minute: int, max_wait: float) -> Any:
    key = (
        bucket,
        settings.PTERODACTYL_URL or "-",
        per_minute,
        settings.PTERODACTYL_RATE_LIMIT_REDIS_URL,
        max_wait,
    )
    if key not in _limiters:
        _limiters[key] = build_rate_limiter(
            base_url=key[1],
            limit_per_minute=per_minute,
            redis_url=key[3],
            bucket=bucket,
            max_wait=max_wait,
        )
    return _limiters[key]


def operations_share_limiter() -> Any:
    """The drain's share (used with try_acquire: never waits)."""
    return _limiter("operations", settings.PANEL_OPERATIONS_RATE_LIMIT_PER_MINUTE, 0.0)


def read_share_limiter() -> Any:
    return _limiter("fleet-read", settings.FLEET_READ_RATE_LIMIT_PER_MINUTE, READ_MAX_WAIT_SECONDS)


def fleet_panel_client(**overrides: Any) -> PterodactylClient:
    """An application-API client for fleet reads: every request also takes a slot of the read
    share before the shared budget."""
    return PterodactylClient.from_settings(share=read_share_limiter(), **overrides)


# A list read that takes minutes can miss a server: one deleted meanwhile moves the next page's
# first server onto a page already read. Servers our records hold but the list did not show are
# looked up one by one (at most this many a run) before anything calls them missing.
CONFIRM_ABSENT_LIMIT = 50


def servers_confirm_absent(
    *, client: PterodactylClient, absent_ids: list[int], limit: int = CONFIRM_ABSENT_LIMIT
) -> dict[int, Any]:
    """The servers among `absent_ids` that do exist after all (id -> Server), looked up by id;
    the first `limit` are checked, the others are taken as absent."""
    from provisioning.pterodactyl import PanelNotFound

    found = {}
    for server_id in absent_ids[:limit]:
        try:
            found[server_id] = client.get_server(server_id, include=("allocations",))
        except PanelNotFound:
            continue
    return found
