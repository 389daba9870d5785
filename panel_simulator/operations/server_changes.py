"""Changing a server: details, build, startup, suspend, reinstall, delete."""

from __future__ import annotations

from typing import Any

from panel_simulator.errors import ApiError, display_error
from panel_simulator.state import (
    STATUS_INSTALLING,
    STATUS_SUSPENDED,
    ServerRow,
)
from panel_simulator.tables import (
    PanelTables,
    _as_list,
    _limit_or,
    _php_identical,
)
from panel_simulator.validation import (
    Custom,
    is_int_like,
    php_bool,
    php_string,
    php_truthy,
    to_db_int,
    validate,
)


class ServerChanges(PanelTables):
    def update_details(self, server: ServerRow, data: dict[str, Any]) -> ServerRow:
        model = self._server_rules(server.id)
        rules = {
            "external_id": model["external_id"],
            "name": model["name"],
            "user": model["owner_id"],
            "description": ["nullable", *model["description"]],
        }
        validate(data, rules, {"user": "User ID", "name": "Server Name"})
        # All four are written: omitted external_id becomes null, description "".
        server.external_id = data.get("external_id")
        server.name = data["name"]
        server.owner_id = int(data["user"])
        server.description = data.get("description") or ""
        self._touch(server)
        # Revoking the old owner's websocket tokens at Wings: failures are ignored.
        return server

    def update_build(self, server: ServerRow, data: dict[str, Any]) -> ServerRow:
        model = self._server_rules(server.id)
        allocation_rules = [
            "required",
            "bail",
            Custom.unique(lambda v: self._primary_free_for(v, server.id)),
            Custom.exists(lambda v: is_int_like(v) and int(v) in self.allocations),
        ]

        def with_limits(rule: str) -> str:
            return rule.replace("required", "required_with:limits", 1)

        def without_limits(rule: str) -> str:
            return rule.replace("required", "required_without:limits", 1)

        rules: dict[str, Any] = {
            "allocation": allocation_rules,
            "oom_disabled": model["oom_disabled"],
            "limits": "sometimes|array",
            "limits.memory": with_limits(model["memory"]),
            "limits.swap": with_limits(model["swap"]),
            "limits.io": with_limits(model["io"]),
            "limits.cpu": with_limits(model["cpu"]),
            "limits.threads": model["threads"],
            "limits.disk": with_limits(model["disk"]),
            "memory": without_limits(model["memory"]),
            "swap": without_limits(model["swap"]),
            "io": without_limits(model["io"]),
            "cpu": without_limits(model["cpu"]),
            "threads": model["threads"],
            "disk": without_limits(model["disk"]),
            "add_allocations": "bail|array",
            "add_allocations.*": "integer",
            "remove_allocations": "bail|array",
            "remove_allocations.*": "integer",
            "feature_limits": "required|array",
            "feature_limits.databases": model["database_limit"],
            "feature_limits.allocations": model["allocation_limit"],
            "feature_limits.backups": model["backup_limit"],
        }
        validate(
            data,
            rules,
            {
                "add_allocations": "allocations to add",
                "remove_allocations": "allocations to remove",
                "add_allocations.*": "allocation to add",
                "remove_allocations.*": "allocation to remove",
                "feature_limits.databases": "Database Limit",
                "feature_limits.allocations": "Allocation Limit",
                "feature_limits.backups": "Backup Limit",
            },
        )
        allocation_id: Any = data["allocation"]
        changes: dict[str, Any] = {}
        for key in ("memory", "swap", "io", "cpu", "threads", "disk"):
            if key in data:
                changes[key] = data[key]
        limits = data.get("limits")
        if isinstance(limits, dict) and limits:
            for key in ("memory", "swap", "io", "cpu", "threads", "disk"):
                if key in limits:
                    changes[key] = limits[key]
        add = [int(x) for x in _as_list(data.get("add_allocations")) if is_int_like(x)]
        remove_raw = _as_list(data.get("remove_allocations"))
        remove = [int(x) for x in remove_raw if is_int_like(x)]

        # BuildModificationService::processAllocations, planned first so a 400 changes nothing.
        fresh = [
            a.id
            for a in self.sorted_allocations()
            if a.id in add and a.node_id == server.node_id and a.server_id is None
        ]
        freshly_allocated = fresh[0] if fresh else None
        if remove:
            for item in remove_raw:
                current_primary = (
                    allocation_id if allocation_id is not None else server.allocation_id
                )
                if _php_identical(item, current_primary):
                    if freshly_allocated is None:
                        raise display_error(
                            "You are attempting to delete the default allocation for this server "
                            "but there is no fallback allocation to use."
                        )
                    allocation_id = freshly_allocated
        to_free = [
            a.id
            for a in self.allocations.values()
            if a.node_id == server.node_id
            and a.server_id == server.id
            and a.id in set(remove) - set(add)
        ]
        assigned_after = (
            {a.id for a in self.allocations.values() if a.server_id == server.id} | set(fresh)
        ) - set(to_free)
        if int(allocation_id) != server.allocation_id and int(allocation_id) not in assigned_after:
            raise display_error(
                "The requested default allocation is not currently assigned to this server."
            )
        for allocation_id_to_add in fresh:
            row = self.allocations[allocation_id_to_add]
            row.server_id, row.notes = server.id, None
        for allocation_id_to_free in to_free:
            row = self.allocations[allocation_id_to_free]
            row.server_id, row.notes = None, None

        if "oom_disabled" in data and data["oom_disabled"] is not None:
            server.oom_disabled = php_bool(data["oom_disabled"])
        for key, value in changes.items():
            if key == "threads":
                server.threads = None if value is None else php_string(value)
            else:
                setattr(server, key, to_db_int(value))
        server.allocation_id = int(allocation_id)
        features = data["feature_limits"]
        server.database_limit = _limit_or(features.get("databases"), None)
        server.allocation_limit = _limit_or(features.get("allocations"), None)
        server.backup_limit = _limit_or(features.get("backups"), 0)
        self._touch(server)
        # Wings sync failures are only logged by the panel: the response is still 200.
        return server

    def _primary_free_for(self, value: Any, server_id: int) -> bool:
        if not is_int_like(value):
            return True
        return not any(
            s.allocation_id == int(value) for s in self.servers.values() if s.id != server_id
        )

    def update_startup(self, server: ServerRow, data: dict[str, Any]) -> ServerRow:
        model = self._server_rules(server.id)
        rules = {
            "startup": model["startup"],
            "environment": "present|array",
            "egg": model["egg_id"],
            "image": model["image"],
            "skip_scripts": "present|boolean",
        }
        validate(data, rules)
        egg_id = int(data["egg"])
        environment = data.get("environment")
        if php_truthy(environment):
            values = self._validate_variables(egg_id, environment)
            server.variables.update(values)
        egg = self.eggs[egg_id]
        if egg.id != server.egg_id:
            server.egg_id, server.nest_id = egg.id, egg.nest_id
        server.startup = data["startup"]
        server.skip_scripts = php_bool(data["skip_scripts"])
        server.image = data["image"]
        self._touch(server)
        return server

    # ================================================================== servers: actions

    def suspend(self, server: ServerRow, suspend: bool) -> None:
        if suspend == (server.status == STATUS_SUSPENDED):
            return  # already in the target state: nothing happens
        if server.transferring:
            raise ApiError(
                409,
                "ConflictHttpException",
                "Cannot toggle suspension status on a server that is currently being transferred.",
            )
        previous = server.status
        server.status = STATUS_SUSPENDED if suspend else None
        try:
            self._wings(server.node_id)
        except ApiError:
            server.status = previous  # the panel's DB transaction rolls the update back
            raise
        if suspend:
            server.power_state, server.started_at = "offline", None
        self._touch(server)

    def reinstall(self, server: ServerRow) -> None:
        previous = server.status
        server.status = STATUS_INSTALLING  # also clears a suspension
        try:
            self._wings(server.node_id)
        except ApiError:
            server.status = previous
            raise
        server.power_state, server.started_at = "offline", None
        self._schedule_install(server, "reinstall")
        self._touch(server)

    def delete_server(self, server: ServerRow, *, force: bool) -> None:
        if not force:
            self._wings(server.node_id, ignore_not_found=True)
        self._remove_server(server)

    def _remove_server(self, server: ServerRow) -> None:
        for allocation in self.allocations.values():
            if allocation.server_id == server.id:
                allocation.server_id = None  # the foreign key sets it to null
        self.servers.pop(server.id, None)
        self._stats_cache.pop(server.id, None)
        for backup_id in [b.id for b in self.backups.values() if b.server_id == server.id]:
            self.backups.pop(backup_id)  # the server's backup rows go with it

    def find_server_by_external_id(self, external_id: str) -> ServerRow | None:
        for server in self.sorted_servers():
            if server.external_id is not None and server.external_id.lower() == external_id.lower():
                return server
        return None
