"""The panel's Client API (``/api/client``) with a root admin's ``ptlc_`` key: power signals,
live resource usage and backups, which the Application API does not offer. Same transport
(timeouts, error mapping, retries) as the Application API; its own rate-limit bucket (the
panel's are separate).

Backups follow the panel's source (pterodactyl/panel, 1.0-develop): routes/api-client.php
(``POST /servers/{server}/backups``, ``GET /servers/{server}/backups[/{backup}]``),
app/Http/Controllers/Api/Client/Servers/BackupController.php (store answers 200 with the item;
index pages by ``min(per_page ?? 20, 50)``),
app/Http/Requests/Api/Client/Servers/Backups/StoreBackupRequest.php (``name`` nullable string
max 191, ``is_locked`` nullable boolean, ``ignored`` nullable string, one path a line),
app/Services/Backups/InitiateBackupService.php (first the throttle: more than
``backups.throttles.limit`` (2) backups within ``period`` (600 s) is a 429
``TooManyRequestsHttpException``; then the limit: ``feature_limits.backups`` 0 or reached is a
400 ``TooManyBackupsException``),
app/Http/Middleware/Api/Client/Server/AuthenticateServerAccess.php (a suspended, installing,
restoring or transferring server answers 409 on every backup route, root admins included),
app/Transformers/Api/Client/BackupTransformer.php (the item's attributes).
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from provisioning.pterodactyl.transport import ClientBase, RetryPolicy, settings_kwargs
from provisioning.pterodactyl.types import ServerResources
from provisioning.pterodactyl.types.backups import Backup

__all__ = ["Backup", "PowerSignal", "PterodactylClientAPI"]

PowerSignal = Literal["start", "stop", "restart", "kill"]


class PterodactylClientAPI(ClientBase):
    """The panel's Client API (``/api/client``) with a root admin's ``ptlc_`` key: power
    signals, live resource usage and backups, which the Application API does not offer."""

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

    def backup_create(
        self,
        identifier: str,
        name: str,
        *,
        is_locked: bool = False,
        ignored: tuple[str, ...] = (),
    ) -> Backup:
        """Start a backup (Wings runs it; ``completed_at`` stays null until it is done). Not
        idempotent: sent once (a lost reply may have started one: look it up by name with
        ``backup_find`` before asking again). 400 ``PanelBadRequest`` (code
        ``TooManyBackupsException``) when the server's backup limit is 0 or reached, 409
        ``PanelConflict`` (not retryable) when the server is suspended, 429
        ``PanelRateLimited`` (retryable, ``retry_after``) when two backups were started
        within ten minutes."""
        if not name or len(name) > 191:
            raise ValueError("a backup name is 1..191 characters")
        body: dict[str, Any] = {"name": name, "is_locked": is_locked}
        if ignored:
            body["ignored"] = "\n".join(ignored)
        reply = self._t.request(
            "POST",
            f"/servers/{quote(identifier, safe='')}/backups",
            body=body,
            retry=RetryPolicy.ONCE,
        )
        return Backup.from_api(reply.body)

    def backup_get(self, identifier: str, uuid: str) -> Backup:
        """One backup by its uuid; ``PanelNotFound`` when the server has no such backup."""
        return Backup.from_api(
            self._get(f"/servers/{quote(identifier, safe='')}/backups/{quote(uuid, safe='')}")
        )

    def backups_list(self, identifier: str) -> list[Backup]:
        """Every backup of the server (the panel pages them by at most 50)."""
        return list(
            self._paginate(
                f"/servers/{quote(identifier, safe='')}/backups",
                Backup.from_api,
                "backups",
                per_page=50,
            )
        )

    def backup_find(self, identifier: str, name: str) -> Backup | None:
        """The newest backup of the server with this name, or None."""
        found = [b for b in self.backups_list(identifier) if b.name == name]
        return found[-1] if found else None
