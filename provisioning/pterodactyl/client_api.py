"""The panel's Client API (``/api/client``) with a root admin's ``ptlc_`` key: power signals and
live resource usage, which the Application API does not offer. Same transport (timeouts, error
mapping, retries) as the Application API; its own rate-limit bucket (the panel's are separate).
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from provisioning.pterodactyl.transport import ClientBase, RetryPolicy, settings_kwargs
from provisioning.pterodactyl.types import ServerResources

__all__ = ["PowerSignal", "PterodactylClientAPI"]

PowerSignal = Literal["start", "stop", "restart", "kill"]


class PterodactylClientAPI(ClientBase):
    """The panel's Client API (``/api/client``) with a root admin's ``ptlc_`` key: power
    signals and live resource usage, which the Application API does not offer."""

    _prefix = "/api/client"
    _key_setting = "PTERODACTYL_CLIENT_API_KEY"

    @classmethod
    def from_settings(cls, **overrides: Any) -> PterodactylClientAPI:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        url = getattr(settings, "PTERODACTYL_URL", "") or ""
        key = getattr(settings, "PTERODACTYL_CLIENT_API_KEY", "") or ""
        if not url or not key:
            raise ImproperlyConfigured(
                "PTERODACTYL_URL and PTERODACTYL_CLIENT_API_KEY must be set for power signals"
            )
        kwargs = settings_kwargs(
            settings,
            bucket="client",
            rate_setting="PTERODACTYL_CLIENT_RATE_LIMIT_PER_MINUTE",
            rate_default=600,  # the panel allows 720/min on the client API
        )
        kwargs.update(overrides)
        return cls(url, key, **kwargs)

    def get_server_resources(self, identifier: str) -> ServerResources:
        """Live state and usage (the panel caches it for 20 s). 409 PanelConflict while the
        server is installing (retryable) or suspended (not retryable)."""
        return ServerResources.from_api(
            self._get(f"/servers/{quote(identifier, safe='')}/resources")
        )

    def send_power_signal(self, identifier: str, signal: PowerSignal) -> None:
        """start / stop / restart / kill. Sent once: a repeated restart restarts again."""
        if signal not in ("start", "stop", "restart", "kill"):
            raise ValueError(f"unknown power signal {signal!r}")
        self._t.request(
            "POST",
            f"/servers/{quote(identifier, safe='')}/power",
            body={"signal": signal},
            retry=RetryPolicy.ONCE,
        )
