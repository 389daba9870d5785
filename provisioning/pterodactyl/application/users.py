"""Users of the Application API (``/api/application/users``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

from provisioning.pterodactyl.application.common import (
    UNSET,
    Unset,
    check_external_id,
    filter_params,
    include_param,
    recover_lost_create,
)
from provisioning.pterodactyl.errors import PanelNotFound, PanelUnavailable
from provisioning.pterodactyl.transport import ClientBase, RetryPolicy
from provisioning.pterodactyl.types import Created, CreateOrigin, User


class UsersAPI(ClientBase):
    """Reading, creating, updating and deleting panel users."""

    def get_user(self, user_id: int, *, include: Iterable[str] = ()) -> User:
        return User.from_api(self._get(f"/users/{int(user_id)}", include_param(include)))

    def find_user_by_external_id(self, external_id: str) -> User | None:
        """Exact lookup (GET /users/external/{id}); None when no user has this external id."""
        path = f"/users/external/{quote(check_external_id(external_id), safe='')}"
        try:
            return User.from_api(self._get(path))
        except PanelNotFound:
            return None

    def iter_users(
        self,
        *,
        email: str | None = None,
        username: str | None = None,
        external_id: str | None = None,
        uuid: str | None = None,
        sort: str | None = None,
        per_page: int = 100,
    ) -> Iterator[User]:
        """All users; the filters are the panel's partial, case-insensitive matches."""
        params = filter_params(email=email, username=username, external_id=external_id, uuid=uuid)
        if sort:
            params.append(("sort", sort))
        return self._paginate("/users", User.from_api, "users", params=params, per_page=per_page)

    def find_user_by_email(self, email: str) -> User | None:
        """The user whose email is exactly ``email`` (case-insensitive), across all pages.

        The panel's email filter is a partial match (``bob@x.io`` also finds ``jimbob@x.io``),
        so every candidate is compared, never just the first row.
        """
        wanted = email.strip().lower()
        for user in self.iter_users(email=wanted):
            if user.email.strip().lower() == wanted:
                return user
        return None

    def create_user(
        self,
        *,
        email: str,
        username: str,
        first_name: str,
        last_name: str,
        external_id: str | None = None,
        password: str | None = None,
        root_admin: bool | None = None,
        language: str | None = None,
    ) -> Created[User]:
        """POST /users once. After a lost reply, adopt the user found by ``external_id``."""
        body: dict[str, Any] = {
            "email": email,
            "username": username,
            "first_name": first_name,
            "last_name": last_name,
        }
        if external_id is not None:
            body["external_id"] = check_external_id(external_id)
        if password:
            body["password"] = password
        if root_admin is not None:
            body["root_admin"] = bool(root_admin)
        if language is not None:
            body["language"] = language
        try:
            reply = self._t.request("POST", "/users", body=body, retry=RetryPolicy.ONCE)
        except PanelUnavailable as exc:
            found = recover_lost_create(
                "user", external_id, self.find_user_by_external_id, exc, self._t.redact
            )
            return Created(found, CreateOrigin.RECOVERED, ("reply lost; adopted by external_id",))
        return Created(User.from_api(reply.body))

    def update_user(
        self,
        user_id: int,
        *,
        email: str | None = None,
        username: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        password: str | None = None,
        external_id: str | Unset | None = UNSET,
        language: str | None = None,
        root_admin: bool | None = None,
    ) -> User:
        """PATCH /users/{id}. The panel requires email, username and both names again: the
        ones not given are taken from a fresh GET. ``password`` None/empty keeps the current
        one; ``external_id`` UNSET keeps it, None clears it."""
        current = self.get_user(user_id)
        body: dict[str, Any] = {
            "email": email if email is not None else current.email,
            "username": username if username is not None else current.username,
            "first_name": first_name if first_name is not None else current.first_name,
            "last_name": last_name if last_name is not None else current.last_name,
        }
        if external_id is not UNSET:
            body["external_id"] = (
                None if external_id is None else check_external_id(str(external_id))
            )
        if password:
            body["password"] = password
        if language is not None:
            body["language"] = language
        if root_admin is not None:
            body["root_admin"] = bool(root_admin)
        reply = self._t.request("PATCH", f"/users/{int(user_id)}", body=body)
        return User.from_api(reply.body)

    def delete_user(self, user_id: int, *, missing_ok: bool = False) -> None:
        """DELETE /users/{id}; 400 PanelBadRequest while the user still owns servers."""
        try:
            self._t.request("DELETE", f"/users/{int(user_id)}")
        except PanelNotFound:
            if not missing_ok:
                raise
