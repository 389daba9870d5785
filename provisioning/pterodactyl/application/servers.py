"""Servers of the Application API (``/api/application/servers``).

Creates are sent once: after a timeout or a 5xx, ``create_server`` looks the server up by
``external_id`` (our idempotency key) and adopts it if the panel did create it (the result says
so in ``Created.origin``); if it does not exist the retryable error is raised for the caller to
retry later. ``ensure_server`` adds the lookup *before* the POST and adopts on a 422 "external
id has already been taken". The panel's full-replace semantics are hidden: ``update_server_build``
takes only what changes and fills in every other required field from a fresh GET.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from provisioning.pterodactyl.application.common import (
    UNSET,
    Unset,
    check_external_id,
    env_value,
    filter_params,
    include_param,
    recover_lost_create,
)
from provisioning.pterodactyl.errors import PanelNotFound, PanelUnavailable, PanelValidationError
from provisioning.pterodactyl.transport import ClientBase, RetryPolicy
from provisioning.pterodactyl.types import (
    Created,
    CreateOrigin,
    Deploy,
    FeatureLimits,
    Limits,
    Server,
)

logger = logging.getLogger(__name__)


class ServersAPI(ClientBase):
    """Reading, creating, changing, suspending, reinstalling and deleting servers."""

    def get_server(self, server_id: int, *, include: Iterable[str] = ()) -> Server:
        return Server.from_api(self._get(f"/servers/{int(server_id)}", include_param(include)))

    def find_server_by_external_id(
        self, external_id: str, *, include: Iterable[str] = ()
    ) -> Server | None:
        """Exact lookup (GET /servers/external/{id}); None when no server has this external id."""
        path = f"/servers/external/{quote(check_external_id(external_id), safe='')}"
        try:
            return Server.from_api(self._get(path, include_param(include)))
        except PanelNotFound:
            return None

    def iter_servers(
        self,
        *,
        name: str | None = None,
        external_id: str | None = None,
        uuid: str | None = None,
        uuid_short: str | None = None,
        description: str | None = None,
        image: str | None = None,
        sort: str | None = None,
        include: Iterable[str] = (),
        per_page: int = 100,
    ) -> Iterator[Server]:
        params = filter_params(
            name=name,
            external_id=external_id,
            uuid=uuid,
            uuidShort=uuid_short,
            description=description,
            image=image,
        )
        if sort:
            params.append(("sort", sort))
        params += include_param(include)
        return self._paginate(
            "/servers", Server.from_api, "servers", params=params, per_page=per_page
        )

    def create_server(
        self,
        *,
        name: str,
        user_id: int,
        egg_id: int,
        docker_image: str,
        startup: str,
        environment: Mapping[str, Any],
        limits: Limits,
        feature_limits: FeatureLimits | None = None,
        allocation_id: int | None = None,
        additional_allocation_ids: Iterable[int] = (),
        deploy: Deploy | None = None,
        external_id: str | None = None,
        description: str | None = None,
        skip_scripts: bool = False,
        start_on_completion: bool = False,
    ) -> Created[Server]:
        """POST /servers once, with an explicit ``allocation_id`` or a ``deploy`` block.

        ``environment`` must hold every required egg variable: the panel never applies
        defaults (use ``Egg.environment_with_defaults``). After a timeout or 5xx the server is
        looked up by ``external_id`` and adopted (``Created.origin == RECOVERED``); when it is
        not there (e.g. Wings failed and the panel rolled back) the retryable error is raised.
        """
        if (allocation_id is None) == (deploy is None):
            raise ValueError("give exactly one of allocation_id and deploy")
        feature_limits = feature_limits or FeatureLimits()
        body: dict[str, Any] = {
            "name": name,
            "user": int(user_id),
            "egg": int(egg_id),
            "docker_image": docker_image,
            "startup": startup,
            "environment": {key: env_value(value) for key, value in environment.items()},
            "limits": limits.to_api(),
            "feature_limits": feature_limits.to_api(),
            "oom_disabled": bool(limits.oom_disabled),
            "skip_scripts": bool(skip_scripts),
            "start_on_completion": bool(start_on_completion),
        }
        if external_id is not None:
            body["external_id"] = check_external_id(external_id)
        if description is not None:
            body["description"] = description
        if deploy is not None:
            body["deploy"] = deploy.to_api()
        else:
            body["allocation"] = {
                "default": int(allocation_id),  # type: ignore[arg-type]
                "additional": [int(item) for item in additional_allocation_ids],
            }
        try:
            reply = self._t.request("POST", "/servers", body=body, retry=RetryPolicy.ONCE)
        except PanelUnavailable as exc:
            found = recover_lost_create(
                "server", external_id, self.find_server_by_external_id, exc, self._t.redact
            )
            return Created(found, CreateOrigin.RECOVERED, ("reply lost; adopted by external_id",))
        return Created(Server.from_api(reply.body))

    def ensure_server(
        self, *, external_id: str, lookup_first: bool = True, **fields: Any
    ) -> Created[Server]:
        """The server with this external id: the existing one, or a new one (create_server).

        ``lookup_first=False`` skips the GET before the POST, for a caller that knows no
        earlier attempt can have reached the panel: the panel's unique external id still
        turns a duplicate into a 422, which adopts the existing server."""
        if lookup_first:
            existing = self.find_server_by_external_id(external_id)
            if existing is not None:
                return Created(existing, CreateOrigin.EXISTING)
        try:
            return self.create_server(external_id=external_id, **fields)
        except PanelValidationError as exc:
            if exc.has("external_id", "unique"):
                found = self.find_server_by_external_id(external_id)
                if found is not None:
                    return Created(found, CreateOrigin.EXISTING, ("created concurrently",))
            raise

    def update_server_build(
        self,
        server_id: int,
        *,
        memory: int | None = None,
        swap: int | None = None,
        disk: int | None = None,
        io: int | None = None,
        cpu: int | None = None,
        threads: str | Unset | None = UNSET,
        oom_disabled: bool | None = None,
        allocation_id: int | None = None,
        add_allocations: Iterable[int] = (),
        remove_allocations: Iterable[int] = (),
        database_limit: int | Unset | None = UNSET,
        allocation_limit: int | Unset | None = UNSET,
        backup_limit: int | Unset | None = UNSET,
    ) -> Server:
        """PATCH /servers/{id}/build with every limit, the primary allocation and all feature
        limits (the panel requires them all), current values filling what is not given.

        The result includes ``allocations``: the panel silently skips ``add_allocations`` ids
        that are on another node or taken, so check ``result.allocation_ids``.
        """
        current = self.get_server(server_id)
        limits = current.limits
        features = current.feature_limits
        body = {
            "allocation": int(allocation_id)
            if allocation_id is not None
            else current.allocation_id,
            "oom_disabled": limits.oom_disabled if oom_disabled is None else bool(oom_disabled),
            "limits": {
                "memory": limits.memory if memory is None else int(memory),
                "swap": limits.swap if swap is None else int(swap),
                "disk": limits.disk if disk is None else int(disk),
                "io": limits.io if io is None else int(io),
                "cpu": limits.cpu if cpu is None else int(cpu),
                "threads": limits.threads if threads is UNSET else threads,
            },
            "feature_limits": {
                "databases": features.databases if database_limit is UNSET else database_limit,
                "allocations": (
                    features.allocations if allocation_limit is UNSET else allocation_limit
                ),
                "backups": features.backups if backup_limit is UNSET else backup_limit,
            },
            "add_allocations": [int(item) for item in add_allocations],
            "remove_allocations": [int(item) for item in remove_allocations],
        }
        # Changing allocations is not safe to repeat (removing the primary a second time is a
        # 400), so such a build is sent once; a limits-only build is idempotent.
        moves_allocations = bool(body["add_allocations"] or body["remove_allocations"])
        reply = self._t.request(
            "PATCH",
            f"/servers/{int(server_id)}/build",
            params=include_param(["allocations"]),
            body=body,
            **({"retry": RetryPolicy.ONCE} if moves_allocations else {}),
        )
        server = Server.from_api(reply.body)
        skipped = set(body["add_allocations"]) - set(server.allocation_ids or ())
        if skipped:
            logger.warning(
                "panel skipped allocations %s for server %s (other node or already taken)",
                sorted(skipped),
                server_id,
            )
        return server

    def suspend_server(self, server_id: int) -> None:
        """Idempotent on the panel (already suspended = 204), so retried like a GET."""
        self._t.request("POST", f"/servers/{int(server_id)}/suspend")

    def unsuspend_server(self, server_id: int) -> None:
        self._t.request("POST", f"/servers/{int(server_id)}/unsuspend")

    def reinstall_server(self, server_id: int) -> None:
        """Starts a new install (and clears a suspension): not repeated after a lost reply."""
        self._t.request("POST", f"/servers/{int(server_id)}/reinstall", retry=RetryPolicy.ONCE)

    def delete_server(
        self, server_id: int, *, force: bool = False, missing_ok: bool = False
    ) -> None:
        """DELETE /servers/{id} (``force``: /force, ignores Wings errors)."""
        path = f"/servers/{int(server_id)}" + ("/force" if force else "")
        try:
            self._t.request("DELETE", path)
        except PanelNotFound:
            if not missing_ok:
                raise

    # ================================================================== nodes & allocations
