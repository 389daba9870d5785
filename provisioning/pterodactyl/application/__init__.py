"""The panel's Application API (``/api/application``, a root admin's ``ptla_`` key): one client
class, ``PterodactylClient``, made of a part per resource (``users``, ``servers``, ``nodes``:
nodes, allocations, locations, nests and eggs) over the shared transport.

Method names say what comes back: ``get_X`` one object (PanelNotFound when missing),
``find_X_by_Y`` one object or None, ``list_X`` a list, ``iter_X`` a lazy walk over every page (for
fleet-sized lists), ``create_X`` / ``ensure_X`` a ``Created`` (see ``Created.origin``),
``update_X`` the object after the change, ``delete_X`` None (``missing_ok`` for gone already);
actions are named after the panel's (``suspend_server``, ``reinstall_server``).
"""

from __future__ import annotations

from typing import Any

from provisioning.pterodactyl.application.common import UNSET, Unset
from provisioning.pterodactyl.application.nodes import NodesAPI
from provisioning.pterodactyl.application.servers import ServersAPI
from provisioning.pterodactyl.application.users import UsersAPI
from provisioning.pterodactyl.ratelimit import (
    DEFAULT_LIMIT_PER_MINUTE,
    BoundedWaitLimiter,
    CombinedRateLimiter,
    InProcessRateLimiter,
    RateLimiter,
)
from provisioning.pterodactyl.transport import settings_kwargs

__all__ = ["UNSET", "PterodactylClient", "Unset"]


class PterodactylClient(UsersAPI, ServersAPI, NodesAPI):
    """The panel's Application API (``/api/application``) with a root admin's ``ptla_`` key."""

    _prefix = "/api/application"
    _key_setting = "PTERODACTYL_ADMIN_API_KEY"

    @classmethod
    def from_settings(
        cls, *, share: RateLimiter | None = None, **overrides: Any
    ) -> PterodactylClient:
        """Build a client from Django settings (the only place this module touches Django).

        `share`: a limiter every request also takes a slot from, before the shared budget (the
        fleet jobs' share, so a fleet-wide read never uses the whole budget)."""
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        url = getattr(settings, "PTERODACTYL_URL", "") or ""
        key = getattr(settings, "PTERODACTYL_ADMIN_API_KEY", "") or ""
        if not url or not key:
            raise ImproperlyConfigured(
                "PTERODACTYL_URL and PTERODACTYL_ADMIN_API_KEY must be set to talk to the panel"
            )
        kwargs = settings_kwargs(
            settings,
            bucket="application",
            rate_setting="PTERODACTYL_RATE_LIMIT_PER_MINUTE",
            rate_default=DEFAULT_LIMIT_PER_MINUTE,
        )
        kwargs.update(overrides)
        if share is not None:
            kwargs["rate_limiter"] = CombinedRateLimiter(
                share, kwargs.get("rate_limiter") or InProcessRateLimiter(DEFAULT_LIMIT_PER_MINUTE)
            )
        return cls(url, key, **kwargs)

    @classmethod
    def for_workers(cls, **overrides: Any) -> PterodactylClient:
        """A client for Celery workers: one try per request, no sleeping. A retryable error
        (5xx, timeout, 429) goes straight back to the caller, whose scheduler retries later
        with backoff (one retry layer, not two); a rate-limit wait longer than
        PTERODACTYL_WORKER_RATE_WAIT seconds is raised as PanelRateLimited with the wait
        in ``retry_after`` instead of being slept through."""
        from django.conf import settings

        client = cls.from_settings(**{"max_retries": 0, **overrides})
        limiter = client._t.rate_limiter
        if limiter is not None and "rate_limiter" not in overrides:
            client._t.rate_limiter = BoundedWaitLimiter(
                limiter, max_wait=float(getattr(settings, "PTERODACTYL_WORKER_RATE_WAIT", 0.25))
            )
        return client
