"""Creating a server: its rules, egg variables, node choice (deploy block) and allocation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from panel_simulator.errors import ApiError, display_error
from panel_simulator.state import (
    STATUS_INSTALLING,
    AllocationRow,
    ServerRow,
)
from panel_simulator.tables import (
    IMAGE_REGEX,
    PORT_RANGE,
    PanelTables,
    _as_list,
    _limit_or,
)
from panel_simulator.validation import (
    MISSING,
    Custom,
    is_int_like,
    is_numeric,
    php_bool,
    php_string,
    php_truthy,
    to_db_int,
    validate,
)


class ServerCreation(PanelTables):
    def _server_external_id_taken(self, value: Any, ignore_id: int | None) -> bool:
        wanted = php_string(value).lower()
        return any(
            server.external_id is not None and server.external_id.lower() == wanted
            for server in self.servers.values()
            if server.id != ignore_id
        )

    def _allocation_unassigned(self, value: Any) -> bool:
        if not is_int_like(value):
            return False
        allocation = self.allocations.get(int(value))
        return allocation is not None and allocation.server_id is None

    def _user_exists(self, value: Any) -> bool:
        return is_int_like(value) and int(value) in self.users

    def _egg_exists(self, value: Any) -> bool:
        return is_int_like(value) and int(value) in self.eggs

    def _server_rules(self, ignore_id: int | None) -> dict[str, Any]:
        """app/Models/Server.php $validationRules (the parts the API requests reuse)."""
        return {
            "external_id": [
                "sometimes",
                "nullable",
                "string",
                "between:1,191",
                Custom.unique(lambda v: not self._server_external_id_taken(v, ignore_id)),
            ],
            "owner_id": ["required", "integer", Custom.exists(self._user_exists)],
            "name": "required|string|min:1|max:191",
            "description": ["string"],
            "memory": "required|numeric|min:0",
            "swap": "required|numeric|min:-1",
            "io": "required|numeric|between:10,1000",
            "cpu": "required|numeric|min:0",
            "threads": "nullable|regex:/^[0-9-,]+$/",
            "oom_disabled": "sometimes|boolean",
            "disk": "required|numeric|min:0",
            "egg_id": ["required", Custom.exists(self._egg_exists)],
            "startup": "required|string",
            "image": ["required", "string", "max:191", IMAGE_REGEX],
            "database_limit": "present|nullable|integer|min:0",
            "allocation_limit": "sometimes|nullable|integer|min:0",
            "backup_limit": "present|nullable|integer|min:0",
        }

    def create_server(self, data: dict[str, Any]) -> ServerRow:
        """POST /servers: validation, deploy, variables, save, Wings (rolled back on failure)."""
        model = self._server_rules(None)
        deploy_value = data.get("deploy", MISSING)
        manual = not php_truthy(deploy_value)
        unassigned = Custom.exists(self._allocation_unassigned)
        rules: dict[str, Any] = {
            "external_id": model["external_id"],
            "name": model["name"],
            "description": ["nullable", *model["description"]],
            "user": model["owner_id"],
            "egg": model["egg_id"],
            "docker_image": model["image"],
            "startup": model["startup"],
            "environment": "present|array",
            "skip_scripts": "sometimes|boolean",
            "oom_disabled": "sometimes|boolean",
            "limits": "required|array",
            "limits.memory": model["memory"],
            "limits.swap": model["swap"],
            "limits.disk": model["disk"],
            "limits.io": model["io"],
            "limits.threads": model["threads"],
            "limits.cpu": model["cpu"],
            "feature_limits": "required|array",
            "feature_limits.databases": model["database_limit"],
            "feature_limits.allocations": model["allocation_limit"],
            "feature_limits.backups": model["backup_limit"],
            "allocation.default": ["required", "integer", "bail", unassigned] if manual else [],
            "allocation.additional.*": ["integer", unassigned] if manual else [],
            "deploy": "sometimes|required|array",
            "deploy.locations": ["array"] + ([] if manual else ["present"]),
            "deploy.locations.*": "integer|min:1",
            # The panel's rule really is "required_with:deploy,boolean" (one rule, two fields).
            "deploy.dedicated_ip": "required_with:deploy,boolean",
            "deploy.port_range": ["array"] + ([] if manual else ["present"]),
            "deploy.port_range.*": "string",
            "start_on_completion": "sometimes|boolean",
        }
        validate(data, rules)

        limits = data["limits"]
        additional: list[int] = []
        if data.get("deploy") is not None:
            deploy = data["deploy"]
            locations = [int(x) for x in _as_list(deploy.get("locations")) if is_int_like(x)]
            node_ids = self.viable_nodes(
                memory=limits.get("memory"), disk=limits.get("disk"), locations=locations
            )
            allocation = self._select_allocation(
                node_ids,
                [php_string(p) for p in _as_list(deploy.get("port_range"))],
                php_bool(deploy.get("dedicated_ip")),
            )
        else:
            allocation = self.allocations[int(data["allocation"]["default"])]
            additional = [int(x) for x in _as_list(data["allocation"].get("additional"))]

        egg = self.eggs[int(data["egg"])]
        values = self._validate_variables(egg.id, data.get("environment"))

        now = self.now()
        server_uuid = self.new_uuid()
        features = data["feature_limits"]
        server = ServerRow(
            id=self.next_id("servers"),
            uuid=server_uuid,
            uuid_short=server_uuid[:8],
            external_id=data.get("external_id"),
            name=data["name"],
            description=data.get("description") or "",
            owner_id=int(data["user"]),
            node_id=allocation.node_id,
            allocation_id=allocation.id,
            nest_id=egg.nest_id,
            egg_id=egg.id,
            memory=to_db_int(limits["memory"]),
            swap=to_db_int(limits["swap"]),
            disk=to_db_int(limits["disk"]),
            io=to_db_int(limits["io"]),
            cpu=to_db_int(limits["cpu"]),
            threads=None if limits.get("threads") is None else php_string(limits["threads"]),
            oom_disabled=php_bool(data["oom_disabled"])
            if data.get("oom_disabled") is not None
            else True,
            startup=data["startup"],
            image=data["docker_image"],
            skip_scripts=php_bool(data.get("skip_scripts", False)),
            database_limit=_limit_or(features.get("databases"), 0),
            allocation_limit=_limit_or(features.get("allocations"), 0),
            backup_limit=_limit_or(features.get("backups"), 0),
            status=STATUS_INSTALLING,
            start_on_completion=php_bool(data.get("start_on_completion", False)),
            created_at=now,
            updated_at=now,
            variables=values,
        )
        self.servers[server.id] = server
        for allocation_id in [allocation.id, *additional]:
            row = self.allocations.get(allocation_id)
            if row is not None:
                row.server_id = server.id
        try:
            self._wings(server.node_id)
        except ApiError:
            # ServerCreationService force-deletes the server again: nothing is left behind.
            self._remove_server(server)
            raise
        self._schedule_install(server, "install")
        return server

    def _validate_variables(self, egg_id: int, environment: Any) -> dict[int, str]:
        """VariableValidatorService at admin level: every variable of the egg is checked."""
        fields = environment if isinstance(environment, dict) else {}
        data: dict[str, Any] = {"environment": {}}
        rules: dict[str, Any] = {}
        attributes: dict[str, str] = {}
        variables = self.variables_of(egg_id)
        for variable in variables:
            key = f"environment.{variable.env_variable}"
            data["environment"][variable.env_variable] = fields.get(variable.env_variable)
            rules[key] = variable.rules
            attributes[key] = f"{variable.name} variable"
        validate(data, rules, attributes)
        return {
            variable.id: php_string(fields.get(variable.env_variable))
            if fields.get(variable.env_variable) is not None
            else ""
            for variable in variables
        }

    def viable_nodes(self, *, memory: Any, disk: Any, locations: list[int]) -> list[int]:
        """FindViableNodesService: public nodes in the locations with memory/disk left."""
        wanted_memory = Decimal(str(memory)) if is_numeric(memory) else Decimal(0)
        wanted_disk = Decimal(str(disk)) if is_numeric(disk) else Decimal(0)
        result = []
        for node in self.sorted_nodes():
            if not node.public or (locations and node.location_id not in locations):
                continue
            on_node = [s for s in self.servers.values() if s.node_id == node.id]
            used_memory = Decimal(sum(s.memory for s in on_node))
            used_disk = Decimal(sum(s.disk for s in on_node))
            # overallocate is a percentage; -1 is arithmetic (99%), not "unlimited".
            memory_cap = node.memory * (1 + Decimal(node.memory_overallocate) / 100)
            disk_cap = node.disk * (1 + Decimal(node.disk_overallocate) / 100)
            if used_memory + wanted_memory <= memory_cap and used_disk + wanted_disk <= disk_cap:
                result.append(node.id)
        if not result:
            raise ApiError(
                400,
                "NoViableNodeException",
                "No nodes satisfying the requirements specified for automatic deployment could "
                "be found.",
            )
        return result

    def _select_allocation(
        self, node_ids: list[int], port_range: list[str], dedicated: bool
    ) -> AllocationRow:
        """AllocationSelectionService: one random free allocation across all viable nodes."""
        discrete: set[int] = set()
        ranges: list[tuple[int, int]] = []
        for entry in port_range:
            if entry.isdigit():
                discrete.add(int(entry))
            match = PORT_RANGE.match(entry)
            if match:
                start, end = int(match.group(1)), int(match.group(2))
                if abs(end - start) > 1000:
                    raise display_error(
                        "Adding more than 1000 ports in a single range at once is not supported."
                    )
                ranges.append((start, end))
        candidates = [
            a for a in self.sorted_allocations() if a.server_id is None and a.node_id in node_ids
        ]
        if discrete or ranges:
            candidates = [
                a
                for a in candidates
                if a.port in discrete or any(start <= a.port <= end for start, end in ranges)
            ]
        if dedicated:
            taken = {(a.node_id, a.ip) for a in self.allocations.values() if a.server_id}
            candidates = [a for a in candidates if (a.node_id, a.ip) not in taken]
        if not candidates:
            raise ApiError(
                400,
                "NoViableAllocationException",
                "No allocations satisfying the requirements for automatic deployment were found.",
            )
        return self.rng.choice(candidates)
