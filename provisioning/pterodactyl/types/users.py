"""Panel users (``/api/application/users``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provisioning.pterodactyl.types.base import Reader, unwrap


@dataclass(frozen=True)
class User:
    id: int
    external_id: str | None
    uuid: str
    username: str
    email: str
    first_name: str
    last_name: str
    language: str
    root_admin: bool
    two_factor: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_api(cls, payload: Any) -> User:
        r = Reader(unwrap(payload, "user"), "user")
        return cls(
            id=r.int("id"),
            external_id=r.opt_str("external_id"),
            uuid=r.str("uuid"),
            username=r.str("username"),
            email=r.str("email"),
            first_name=r.str("first_name"),
            last_name=r.str("last_name"),
            language=r.opt_str("language") or "en",
            root_admin=r.bool("root_admin"),
            two_factor=r.bool("2fa") if "2fa" in r.data else False,
            created_at=r.ts("created_at"),
            updated_at=r.ts("updated_at"),
        )
