"""Users: create, update, delete (the panel's user services and their rules)."""

from __future__ import annotations

from typing import Any

from panel_simulator.errors import display_error
from panel_simulator.state import (
    UserRow,
)
from panel_simulator.tables import (
    PanelTables,
)
from panel_simulator.validation import (
    Custom,
    php_bool,
    php_string,
    username_rule,
    validate,
)


class UserOperations(PanelTables):
    def _user_taken(self, column: str, value: Any, ignore_id: int | None) -> bool:
        wanted = php_string(value).lower()  # MySQL's default collation ignores case
        return any(
            php_string(getattr(user, column)).lower() == wanted
            for user in self.users.values()
            if user.id != ignore_id and getattr(user, column) is not None
        )

    def _user_rules(self, ignore_id: int | None) -> dict[str, Any]:
        return {
            "email": [
                "required",
                "email",
                "between:1,191",
                Custom.unique(lambda v: not self._user_taken("email", v, ignore_id)),
            ],
            "external_id": [
                "sometimes",
                "nullable",
                "string",
                "max:191",
                Custom.unique(lambda v: not self._user_taken("external_id", v, ignore_id)),
            ],
            "username": [
                "required",
                "between:1,191",
                Custom.unique(lambda v: not self._user_taken("username", v, ignore_id)),
                username_rule(),
            ],
            "password": "sometimes|nullable|string",
            "root_admin": "boolean",
            "language": ["string", "in:en"],
            "first_name": "required|string|between:1,191",
            "last_name": "required|string|between:1,191",
        }

    USER_ATTRIBUTES = {
        "external_id": "Third Party Identifier",
        "name_first": "First Name",
        "name_last": "Last Name",
        "root_admin": "Root Administrator Status",
    }

    def create_user(self, data: dict[str, Any]) -> UserRow:
        validate(data, self._user_rules(None), self.USER_ATTRIBUTES)
        return self.add_user(
            email=data["email"],
            username=php_string(data["username"]),
            first_name=data["first_name"],
            last_name=data["last_name"],
            external_id=data.get("external_id"),
            language=data.get("language") or "en",
            root_admin=php_bool(data.get("root_admin", False)),
            # No password: the panel sets a random one and e-mails a reset link.
            password=data.get("password") or self.random_string(32),
        )

    def update_user(self, user: UserRow, data: dict[str, Any]) -> UserRow:
        validate(data, self._user_rules(user.id), self.USER_ATTRIBUTES)
        # Only the keys sent are written; an empty password leaves it unchanged.
        user.email = data["email"]
        user.username = php_string(data["username"]).lower()
        user.first_name = data["first_name"]
        user.last_name = data["last_name"]
        if "external_id" in data:
            user.external_id = data["external_id"]
        if "language" in data and data["language"] is not None:
            user.language = data["language"]
        if "root_admin" in data and data["root_admin"] is not None:
            user.root_admin = php_bool(data["root_admin"])
        if data.get("password"):
            user.password = data["password"]
        self._touch(user)
        return user

    def delete_user(self, user: UserRow) -> None:
        if any(server.owner_id == user.id for server in self.servers.values()):
            raise display_error(
                "Cannot delete a user with active servers attached to their account. Please "
                "delete their servers before continuing."
            )
        del self.users[user.id]
        for identifier in [k for k, v in self.api_keys.items() if v.user_id == user.id]:
            del self.api_keys[identifier]

    def find_user_by_external_id(self, external_id: str) -> UserRow | None:
        for user_id in sorted(self.users):
            user = self.users[user_id]
            if user.external_id is not None and user.external_id.lower() == external_id.lower():
                return user
        return None
