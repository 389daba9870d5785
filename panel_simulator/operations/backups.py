"""Server backups through the Client API, in the panel's order of checks.

From pterodactyl/panel (1.0-develop): app/Http/Requests/Api/Client/Servers/Backups/
StoreBackupRequest.php (the fields), app/Services/Backups/InitiateBackupService.php (throttle,
then limit, then the row and the Wings call in one transaction),
app/Exceptions/Service/Backup/TooManyBackupsException.php (the limit message) and
config/backups.php (throttle: 2 backups per 600 s). The state conflict (409 for a suspended
server) comes first, from AuthenticateServerAccess, in the handler.
"""

from __future__ import annotations

import math
from typing import Any

from panel_simulator.errors import ApiError, display_error, model_not_found
from panel_simulator.state import BackupRow, ServerRow
from panel_simulator.tables import PanelTables
from panel_simulator.validation import php_truthy, validate


class BackupOperations(PanelTables):
    def backups_of(self, server: ServerRow) -> list[BackupRow]:
        return sorted(
            (b for b in self.backups.values() if b.server_id == server.id and b.deleted_at is None),
            key=lambda b: b.id,
        )

    def backup_of(self, server: ServerRow, uuid: str) -> BackupRow:
        """Scoped route binding ({backup} by uuid among the server's backups)."""
        for backup in self.backups_of(server):
            if backup.uuid == uuid:
                return backup
        raise model_not_found("Backup", uuid)

    def non_failed_backups(self, server: ServerRow) -> list[BackupRow]:
        """BackupRepository::getNonFailedBackups: in progress or successful."""
        return [b for b in self.backups_of(server) if b.completed_at is None or b.is_successful]

    def create_backup(self, server: ServerRow, data: dict[str, Any]) -> BackupRow:
        validate(
            data,
            {
                "name": "nullable|string|max:191",
                "is_locked": "nullable|boolean",
                "ignored": "nullable|string",
            },
        )
        now = self.now()
        limit, period = self.backup_throttle_limit, self.backup_throttle_period
        if period > 0:
            # Deleted backups count too (the repository query includes trashed rows).
            recent = sorted(
                (
                    b
                    for b in self.backups.values()
                    if b.server_id == server.id and b.created_at >= now - period
                ),
                key=lambda b: b.created_at,
            )
            if len(recent) >= limit:
                retry_after = max(0, math.ceil(recent[-1].created_at + period - now))
                raise ApiError(
                    429,
                    "TooManyRequestsHttpException",
                    f"Only {limit} backups may be generated within a {period} second span of time.",
                    headers={"Retry-After": str(retry_after)},
                )
        backup_limit = server.backup_limit or 0
        if not backup_limit or len(self.non_failed_backups(server)) >= backup_limit:
            raise display_error(
                "Cannot create a new backup, this server has reached its limit of "
                f"{backup_limit} backups.",
                "TooManyBackupsException",
            )
        name = (data.get("name") or "").strip()
        ignored = [line for line in str(data.get("ignored") or "").split("\n") if line]
        # A root admin's key may delete backups, so is_locked is taken as given.
        backup = BackupRow(
            id=self.next_id("backups"),
            server_id=server.id,
            uuid=self.new_uuid(),
            name=name or f"Backup at {_datetime_string(now)}",
            ignored_files=ignored,
            is_locked=php_truthy(data.get("is_locked")),
            created_at=now,
            updated_at=now,
        )
        # The row and the Wings call share a transaction: a Wings failure leaves no row.
        self._wings(server.node_id)
        backup.complete_due_at = now + max(0.0, self.backup_delay)
        self.backups[backup.id] = backup
        return backup


def _datetime_string(epoch: float) -> str:
    """Carbon's toDateTimeString(): 2024-01-15 10:26:32."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(int(epoch), tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
