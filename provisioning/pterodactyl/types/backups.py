"""A server backup from the Client API (``/api/client/servers/{server}/backups``).

The shape is the panel's ``app/Transformers/Api/Client/BackupTransformer.php`` (object
``backup``): uuid, is_successful, is_locked, name, ignored_files, checksum, bytes, created_at,
completed_at. A backup in progress has ``completed_at`` null; Wings' completion callback
(``app/Http/Controllers/Api/Remote/Backups/BackupStatusController.php``) sets it with
``is_successful`` true (checksum ``<type>:<hash>``, bytes) or false (checksum null, bytes 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provisioning.pterodactyl.errors import PanelBadResponse
from provisioning.pterodactyl.types.base import Reader, unwrap


@dataclass(frozen=True)
class Backup:
    uuid: str
    name: str
    is_successful: bool
    is_locked: bool
    ignored_files: tuple[str, ...]
    checksum: str | None
    bytes: int
    created_at: datetime | None
    completed_at: datetime | None

    @property
    def in_progress(self) -> bool:
        return self.completed_at is None

    @property
    def failed(self) -> bool:
        return self.completed_at is not None and not self.is_successful

    @classmethod
    def from_api(cls, payload: Any) -> Backup:
        r = Reader(unwrap(payload, "backup"), "backup")
        ignored = r.data.get("ignored_files")
        if ignored is None:
            ignored = []
        if not isinstance(ignored, list) or not all(isinstance(i, str) for i in ignored):
            raise PanelBadResponse("unexpected backup shape from the panel: ignored_files")
        return cls(
            uuid=r.str("uuid"),
            name=r.str("name"),
            is_successful=r.bool("is_successful"),
            is_locked=r.bool("is_locked"),
            ignored_files=tuple(ignored),
            checksum=r.opt_str("checksum"),
            bytes=r.int("bytes"),
            created_at=r.ts("created_at"),
            completed_at=r.ts("completed_at"),
        )
