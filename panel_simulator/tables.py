"""The panel's tables and what every operation shares: ids, time, seeding helpers, the
install lifecycle and the simulated Wings daemons."""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from panel_simulator.errors import ApiError
from panel_simulator.state import (
    ACL_RESOURCES,
    READ,
    STATUS_INSTALL_FAILED,
    STATUS_REINSTALL_FAILED,
    STATUS_SUSPENDED,
    WRITE,
    AllocationRow,
    ApiKeyRow,
    BackupRow,
    EggRow,
    EggVariableRow,
    LocationRow,
    NestRow,
    NodeRow,
    ServerRow,
    UserRow,
)
from panel_simulator.validation import (
    to_db_int,
)

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


class PanelTables:
    """The panel's state (tables, clock, ids) and the lifecycle every service shares."""

    def __init__(
        self,
        *,
        install_delay: float = 2.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        stats_cache_seconds: float = 20.0,
        backup_delay: float = 0.0,
    ) -> None:
        self.lock = threading.RLock()
        self.install_delay = install_delay
        # Seconds Wings takes for a backup (0: done on the next request), like install_delay.
        self.backup_delay = backup_delay
        # config/backups.php throttles: at most `limit` backups per `period` seconds a server.
        self.backup_throttle_limit = 2
        self.backup_throttle_period = 600
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
        self.backups: dict[int, BackupRow] = {}
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
        for backup in list(self.backups.values()):
            if backup.complete_due_at is not None and backup.complete_due_at <= now:
                self.complete_backup(backup)

    def complete_backup(self, backup: BackupRow, *, success: bool | None = None) -> None:
        """Wings' backup callback (Api/Remote/Backups/BackupStatusController::index)."""
        successful = (not backup.will_fail) if success is None else success
        backup.is_successful = successful
        if not successful:
            backup.is_locked = False
        backup.checksum = f"sha1:{self.random_string(40).lower()}" if successful else None
        backup.bytes = 52_428_800 if successful else 0
        backup.completed_at = self.now()
        backup.complete_due_at = None
        self._touch(backup)

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
