"""The simulated panel's model and operations (pure Python: no HTTP here).

Each public operation mirrors one panel service in its documented processing order: request
validation (422) first, then the service's own checks (400 DisplayException and friends), then
the database write, then the call to Wings (simulated per node). Operations raise
``ValidationFailed`` or ``ApiError``; the HTTP layer (``api.py``) renders them.

Callers hold ``panel.lock`` around a request (the HTTP layer does); ``tick()`` completes the
installs whose delay has passed and runs before every request.
"""

from __future__ import annotations

import ipaddress
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from panel_simulator.state import (
    ACL_RESOURCES,
    READ,
    STATUS_INSTALL_FAILED,
    STATUS_INSTALLING,
    STATUS_REINSTALL_FAILED,
    STATUS_RESTORING_BACKUP,
    STATUS_SUSPENDED,
    WRITE,
    AllocationRow,
    ApiKeyRow,
    EggRow,
    EggVariableRow,
    LocationRow,
    NestRow,
    NodeRow,
    ServerRow,
    UserRow,
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
    username_rule,
    validate,
)

GENERIC_500 = "An unexpected error was encountered while processing this request, please try again."
MODEL_NOT_FOUND = "The requested resource could not be found on the server."
IMAGE_REGEX = r"regex:/^~?[\w\.\/\-:@ ]*$/"
PORT_RANGE = re.compile(r"^(\d{4,5})-(\d{4,5})$")
RESERVED_ENV_NAMES = frozenset(
    {
        "SERVER_MEMORY",
        "SERVER_IP",
        "SERVER_PORT",
        "ENV",
        "HOME",
        "USER",
        "STARTUP",
        "SERVER_UUID",
        "UUID",
    }
)


class ApiError(Exception):
    """An error the panel renders as ``{"errors": [{code, status, detail}]}``."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        debug_detail: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        # What APP_DEBUG=true shows instead of the production detail.
        self.debug_detail = debug_detail or detail


def display_error(detail: str, code: str = "DisplayException") -> ApiError:
    return ApiError(400, code, detail)


def model_not_found(model: str, ident: Any) -> ApiError:
    return ApiError(
        404,
        "NotFoundHttpException",
        MODEL_NOT_FOUND,
        debug_detail=f"No query results for model [Pterodactyl\\Models\\{model}] {ident}",
    )


class Panel:
    """The panel's tables and services. Not thread-safe by itself: hold ``lock``."""

    def __init__(
        self,
        *,
        install_delay: float = 2.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        stats_cache_seconds: float = 20.0,
    ) -> None:
        self.lock = threading.RLock()
        self.install_delay = install_delay
        self.stats_cache_seconds = stats_cache_seconds
        self._clock = clock
        self.time_offset = 0.0
        self.rng = rng or random.Random()  # noqa: S311 - simulation only
        self.users: dict[int, UserRow] = {}
        self.locations: dict[int, LocationRow] = {}
        self.nodes: dict[int, NodeRow] = {}
        self.allocations: dict[int, AllocationRow] = {}
        self.nests: dict[int, NestRow] = {}
        self.eggs: dict[int, EggRow] = {}
        self.egg_variables: dict[int, EggVariableRow] = {}
        self.servers: dict[int, ServerRow] = {}
        self.api_keys: dict[str, ApiKeyRow] = {}
        self._sequences: dict[str, int] = {}
        self._stats_cache: dict[int, tuple[float, dict[str, Any]]] = {}
        # Panel-wide settings a test may flip.
        self.require_2fa: str | None = None  # None, "admins" or "all"

    # ================================================================== basics

    def now(self) -> float:
        return self._clock() + self.time_offset

    def advance_time(self, seconds: float) -> None:
        """Move the simulated clock forward (installs due by then complete on the next tick)."""
        self.time_offset += seconds

    def next_id(self, table: str) -> int:
        self._sequences[table] = self._sequences.get(table, 0) + 1
        return self._sequences[table]

    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def random_string(self, length: int) -> str:
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    def sorted_servers(self) -> list[ServerRow]:
        return [self.servers[i] for i in sorted(self.servers)]

    def sorted_allocations(self) -> list[AllocationRow]:
        return [self.allocations[i] for i in sorted(self.allocations)]

    def sorted_nodes(self) -> list[NodeRow]:
        return [self.nodes[i] for i in sorted(self.nodes)]

    def sorted_eggs(self) -> list[EggRow]:
        return [self.eggs[i] for i in sorted(self.eggs)]

    def variables_of(self, egg_id: int) -> list[EggVariableRow]:
        return sorted(
            (v for v in self.egg_variables.values() if v.egg_id == egg_id), key=lambda v: v.id
        )

    def location_of_node(self, node_id: int) -> LocationRow | None:
        node = self.nodes.get(node_id)
        return self.locations.get(node.location_id) if node else None

    def _touch(self, row: Any) -> None:
        row.updated_at = self.now()

    # ================================================================== seeding helpers

    def add_user(self, **fields: Any) -> UserRow:
        now = self.now()
        fields.setdefault("uuid", self.new_uuid())
        fields["username"] = str(fields["username"]).lower()
        user = UserRow(id=self.next_id("users"), created_at=now, updated_at=now, **fields)
        self.users[user.id] = user
        return user

    def add_location(self, short: str, long: str | None = None) -> LocationRow:
        now = self.now()
        location = LocationRow(self.next_id("locations"), short, long, now, now)
        self.locations[location.id] = location
        return location

    def add_node(self, **fields: Any) -> NodeRow:
        now = self.now()
        fields.setdefault("uuid", self.new_uuid())
        fields.setdefault("daemon_token_id", self.random_string(16))
        fields.setdefault("daemon_token", self.random_string(64))
        node = NodeRow(id=self.next_id("nodes"), created_at=now, updated_at=now, **fields)
        self.nodes[node.id] = node
        return node

    def add_allocations(
        self, node_id: int, ip: str, ports: Iterable[int], alias: str | None = None
    ) -> list[AllocationRow]:
        rows = []
        existing = {(a.node_id, a.ip, a.port) for a in self.allocations.values()}
        now = self.now()
        for port in ports:
            if (node_id, ip, port) in existing:
                continue
            row = AllocationRow(
                self.next_id("allocations"), node_id, ip, int(port), alias, None, None, now, now
            )
            self.allocations[row.id] = row
            rows.append(row)
        return rows

    def add_nest(self, **fields: Any) -> NestRow:
        now = self.now()
        fields.setdefault("uuid", self.new_uuid())
        nest = NestRow(id=self.next_id("nests"), created_at=now, updated_at=now, **fields)
        self.nests[nest.id] = nest
        return nest

    def add_egg(self, *, variables: Iterable[dict[str, Any]] = (), **fields: Any) -> EggRow:
        now = self.now()
        fields.setdefault("uuid", self.new_uuid())
        egg = EggRow(id=self.next_id("eggs"), created_at=now, updated_at=now, **fields)
        self.eggs[egg.id] = egg
        for spec in variables:
            if spec["env_variable"] in RESERVED_ENV_NAMES:
                raise ValueError(f"{spec['env_variable']} is a reserved environment variable")
            variable = EggVariableRow(
                id=self.next_id("egg_variables"),
                egg_id=egg.id,
                created_at=now,
                updated_at=now,
                **spec,
            )
            self.egg_variables[variable.id] = variable
        return egg

    def add_api_key(
        self,
        user_id: int,
        *,
        key_type: str = "application",
        token: str | None = None,
        acl: dict[str, int] | None = None,
        allowed_ips: list[str] | None = None,
        expires_at: float | None = None,
    ) -> str:
        """Create a key for a user and return the full 48-character token."""
        prefix = "ptla_" if key_type == "application" else "ptlc_"
        if token is None:
            token = prefix + self.random_string(11) + self.random_string(32)
        if len(token) != 48 or not token.startswith(prefix):
            raise ValueError("a key is the prefix + 11 characters + 32 characters")
        row = ApiKeyRow(
            id=self.next_id("api_keys"),
            user_id=user_id,
            identifier=token[:16],
            secret=token[16:],
            key_type=key_type,
            allowed_ips=list(allowed_ips or []),
            acl=dict(acl) if acl is not None else dict.fromkeys(ACL_RESOURCES, READ | WRITE),
            expires_at=expires_at,
        )
        self.api_keys[row.identifier] = row
        return token

    def find_api_key(self, token: str) -> ApiKeyRow | None:
        row = self.api_keys.get(token[:16])
        if row is None or row.secret != token[16:]:
            return None
        if row.expires_at is not None and row.expires_at <= self.now():
            return None
        return row

    def set_wings_failure(self, node_id: int, failure: int | None) -> None:
        """None = Wings healthy; 0 = Wings unreachable (504); n = Wings answers HTTP n."""
        self.nodes[node_id].wings_failure = failure

    # ================================================================== install lifecycle

    def tick(self) -> None:
        now = self.now()
        for server in self.sorted_servers():
            if server.install_due_at is not None and server.install_due_at <= now:
                self.complete_install(server)

    def complete_install(self, server: ServerRow, *, success: bool | None = None) -> None:
        """Wings' install callback (ServerInstallController)."""
        egg = self.eggs.get(server.egg_id)
        if success is None:
            # A failing install script cannot fail when scripts are skipped.
            success = not (egg is not None and egg.fail_install and not server.skip_scripts)
        status: str | None = None
        if not success:
            status = (
                STATUS_INSTALL_FAILED
                if server.install_kind == "install"
                else STATUS_REINSTALL_FAILED
            )
        if server.status == STATUS_SUSPENDED:
            status = STATUS_SUSPENDED  # the callback keeps a suspension
        server.status = status
        server.install_due_at = None
        if success and server.start_on_completion and server.install_kind == "install":
            server.power_state = "running"
            server.started_at = self.now()
        self._touch(server)

    def _schedule_install(self, server: ServerRow, kind: str) -> None:
        server.install_kind = kind
        server.install_due_at = self.now() + max(0.0, self.install_delay)

    # ================================================================== Wings

    def _wings(self, node_id: int, *, ignore_not_found: bool = False) -> None:
        node = self.nodes.get(node_id)
        failure = node.wings_failure if node else None
        if failure is None:
            return
        request_id = self.new_uuid()
        if failure == 0:
            raise ApiError(
                504,
                "DaemonConnectionException",
                "Could not establish a connection to the machine running this server. "
                "Please try again.",
            )
        if failure >= 500:
            raise ApiError(
                failure,
                "DaemonConnectionException",
                "There was an error while communicating with the machine running this server. "
                f"This error has been logged, please try again. (code: {failure}) "
                f"(request_id: {request_id})",
            )
        if failure >= 400:
            if failure == 404 and ignore_not_found:
                return
            raise ApiError(
                failure,
                "DaemonConnectionException",
                "An error occurred on the remote host: The requested resource does not exist on "
                f"this instance.. (request id: {request_id})",
            )
        raise ApiError(
            502,
            "DaemonConnectionException",
            "There was an error while communicating with the machine running this server. "
            f"This error has been logged, please try again. (code: {failure}) "
            f"(request_id: {request_id})",
        )

    # ================================================================== users

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

    # ================================================================== servers: create

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

    # ================================================================== servers: updates

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

    def find_server_by_external_id(self, external_id: str) -> ServerRow | None:
        for server in self.sorted_servers():
            if server.external_id is not None and server.external_id.lower() == external_id.lower():
                return server
        return None

    # ================================================================== allocations

    def create_allocations(self, node: NodeRow, data: dict[str, Any]) -> None:
        validate(
            data,
            {
                "ip": "required|string",
                "alias": "sometimes|nullable|string|max:191",
                "ports": "required|array",
                "ports.*": "string",
            },
        )
        ip_text = data["ip"]
        parts = ip_text.split("/")
        if len(parts) != 1 and (not parts[1].isdigit() or not 25 <= int(parts[1]) <= 32):
            raise display_error(
                "CIDR notation only allows masks between /25 and /32.", "CidrOutOfRangeException"
            )
        try:
            network = ipaddress.IPv4Network(ip_text, strict=False)
        except ValueError:
            raise display_error(
                f"Could not parse provided allocation IP address ({ip_text}): Invalid IP address "
                "format"
            ) from None
        rows: list[tuple[str, int]] = []
        for ip in network:
            for port in _as_list(data["ports"]):
                port_text = php_string(port)
                match = PORT_RANGE.match(port_text)
                if not port_text.isdigit() and not match:
                    raise display_error(
                        f"The mapping provided for {port_text} was invalid and could not be "
                        "processed.",
                        "InvalidPortMappingException",
                    )
                if match:
                    start, end = int(match.group(1)), int(match.group(2))
                    block = range(start, end + 1) if start <= end else range(start, end - 1, -1)
                    if len(block) > 1000:
                        raise display_error(
                            "Adding more than 1000 ports in a single range at once is not "
                            "supported.",
                            "TooManyPortsInRangeException",
                        )
                    ports = list(block)
                else:
                    ports = [int(port_text)]
                for unit in ports:
                    if unit <= 1024 or unit > 65535:
                        raise display_error(
                            "Ports in an allocation must be greater than 1024 and less than or "
                            "equal to 65535.",
                            "PortOutOfRangeException",
                        )
                    rows.append((str(ip), unit))
        # All or nothing (one transaction); existing (node, ip, port) rows are skipped.
        alias = data.get("alias")
        for ip, port in rows:
            self.add_allocations(node.id, ip, [port], alias)

    def delete_allocation(self, allocation: AllocationRow) -> None:
        if allocation.server_id is not None:
            raise display_error(
                "A server is currently assigned to this allocation. An allocation can only be "
                "deleted if no server is currently assigned.",
                "ServerUsingAllocationException",
            )
        del self.allocations[allocation.id]

    # ================================================================== locations & nodes

    def _location_short_taken(self, value: Any, ignore_id: int | None) -> bool:
        wanted = php_string(value).lower()
        return any(
            loc.short.lower() == wanted for loc in self.locations.values() if loc.id != ignore_id
        )

    def save_location(self, location: LocationRow | None, data: dict[str, Any]) -> LocationRow:
        ignore = location.id if location else None
        short_rules: list[Any] = [
            "required",
            "string",
            "between:1,60",
            Custom.unique(lambda v: not self._location_short_taken(v, ignore)),
        ]
        long_rules = "string|nullable|between:1,191"
        if location is not None:
            short_rules = ["sometimes", *short_rules]
            long_rules = "sometimes|" + long_rules
        validate(data, {"short": short_rules, "long": long_rules})
        if location is None:
            return self.add_location(data["short"], data.get("long"))
        if "short" in data:
            location.short = data["short"]
        if "long" in data:
            location.long = data["long"]
        self._touch(location)
        return location

    def delete_location(self, location: LocationRow) -> None:
        if any(node.location_id == location.id for node in self.nodes.values()):
            raise display_error(
                "Cannot delete a location that has active nodes attached to it.",
                "HasActiveNodesException",
            )
        del self.locations[location.id]

    def save_node(self, node: NodeRow | None, data: dict[str, Any]) -> NodeRow:
        """POST/PATCH /nodes, with the node rules (simplified: see the module docs)."""
        prefix = "sometimes|" if node is not None else ""
        rules = {
            "name": prefix + r"required|regex:/^([\w .-]{1,100})$/",
            "location_id": [
                *(["sometimes"] if node else []),
                "required",
                Custom.exists(lambda v: is_int_like(v) and int(v) in self.locations),
            ],
            "fqdn": prefix + "required|string",
            "scheme": prefix + "required",
            "public": "boolean",
            "behind_proxy": "boolean",
            "maintenance_mode": "boolean",
            "memory": prefix + "required|numeric|min:1",
            "memory_overallocate": "sometimes|numeric|min:-1",
            "disk": prefix + "required|numeric|min:1",
            "disk_overallocate": "sometimes|numeric|min:-1",
            "upload_size": "sometimes|integer|between:1,1024",
            "daemon_listen": "sometimes|numeric|between:1,65535",
            "daemon_sftp": "sometimes|numeric|between:1,65535",
            "daemon_base": r"sometimes|required|regex:/^([\/][\d\w.\-\/]+)$/",
        }
        validate(data, rules)
        ints = (
            "memory",
            "disk",
            "memory_overallocate",
            "disk_overallocate",
            "upload_size",
            "daemon_listen",
            "daemon_sftp",
            "location_id",
        )
        bools = ("public", "behind_proxy", "maintenance_mode")
        fields: dict[str, Any] = {}
        for key in (*ints, *bools, "name", "fqdn", "scheme", "daemon_base"):
            if key in data and data[key] is not None:
                value = data[key]
                fields[key] = (
                    to_db_int(value) if key in ints else php_bool(value) if key in bools else value
                )
        if node is None:
            return self.add_node(**fields)
        for key, value in fields.items():
            setattr(node, key, value)
        if php_bool(data.get("reset_secret")):
            node.daemon_token_id = self.random_string(16)
            node.daemon_token = self.random_string(64)
        self._touch(node)
        return node

    def delete_node(self, node: NodeRow) -> None:
        if any(server.node_id == node.id for server in self.servers.values()):
            raise display_error(
                "A node must have no servers linked to it in order to be deleted.",
                "HasActiveServersException",
            )
        for allocation_id in [a.id for a in self.allocations.values() if a.node_id == node.id]:
            del self.allocations[allocation_id]
        del self.nodes[node.id]

    # ================================================================== client API: power

    def state_conflict(self, server: ServerRow) -> str | None:
        """ServerStateConflictException's message for this server, or None when usable."""
        node = self.nodes.get(server.node_id)
        if server.status == STATUS_SUSPENDED:
            return (
                "This server is currently suspended and the functionality requested is unavailable."
            )
        if node is not None and node.maintenance_mode:
            return (
                "The node of this server is currently under maintenance and the functionality "
                "requested is unavailable."
            )
        if server.status in (STATUS_INSTALLING, STATUS_INSTALL_FAILED):
            return (
                "This server has not yet completed its installation process, please try again "
                "later."
            )
        if server.status == STATUS_RESTORING_BACKUP:
            return "This server is currently restoring from a backup, please try again later."
        if server.transferring:
            return (
                "This server is currently being transferred to a new machine, please try again "
                "later."
            )
        return None

    def power(self, server: ServerRow, signal: str) -> None:
        validate({"signal": signal}, {"signal": "required|string|in:start,stop,restart,kill"})
        self._wings(server.node_id)
        if signal in ("start", "restart"):
            if signal == "restart" or server.power_state == "offline":
                server.started_at = self.now()
            server.power_state = "running"
        else:
            server.power_state, server.started_at = "offline", None

    def resources(self, server: ServerRow) -> dict[str, Any]:
        """Wings' stats, cached per server like the panel does."""
        now = self.now()
        cached = self._stats_cache.get(server.id)
        if cached is not None and cached[0] > now:
            return cached[1]
        self._wings(server.node_id)
        running = server.power_state == "running"
        uptime_ms = int((now - (server.started_at or now)) * 1000) if running else 0
        memory_limit = (server.memory or 1024) * 1024 * 1024
        stats = {
            "current_state": server.power_state,
            "is_suspended": server.status == STATUS_SUSPENDED,
            "resources": {
                "memory_bytes": int(memory_limit * 0.42) if running else 0,
                "cpu_absolute": round(min(server.cpu or 100, 100) * 0.125, 3) if running else 0,
                "disk_bytes": 157_286_400,
                "network_rx_bytes": (uptime_ms // 1000) * 2048 if running else 0,
                "network_tx_bytes": (uptime_ms // 1000) * 1024 if running else 0,
                "uptime": uptime_ms,
            },
        }
        self._stats_cache[server.id] = (now + self.stats_cache_seconds, stats)
        return stats


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return []


def _limit_or(value: Any, default: int | None) -> int | None:
    return default if value is None else to_db_int(value)


def _php_identical(a: Any, b: Any) -> bool:
    """PHP ===: same type and value (so "5" !== 5)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return type(a) is type(b) and a == b


__all__ = ["GENERIC_500", "ApiError", "Panel", "model_not_found"]
