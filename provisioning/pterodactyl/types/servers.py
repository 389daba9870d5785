"""Servers: the request-side values of a create or build (``Limits``, ``FeatureLimits``,
``Deploy``, reused by ``Server``), the server itself, and its live usage from the Client API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from provisioning.pterodactyl.errors import PanelBadResponse
from provisioning.pterodactyl.types.base import Reader, unwrap
from provisioning.pterodactyl.types.nodes import Allocation

# --------------------------------------------------------------------------- request values


@dataclass(frozen=True)
class Limits:
    """Server resource limits (MiB / percent of one core / block-IO weight 10..1000)."""

    memory: int
    swap: int
    disk: int
    io: int
    cpu: int
    threads: str | None = None
    oom_disabled: bool = True

    def to_api(self) -> dict[str, Any]:
        return {
            "memory": self.memory,
            "swap": self.swap,
            "disk": self.disk,
            "io": self.io,
            "cpu": self.cpu,
            "threads": self.threads,
        }


@dataclass(frozen=True)
class FeatureLimits:
    """Databases / allocations / backups a customer may create (None = the panel's null)."""

    databases: int | None = 0
    allocations: int | None = 0
    backups: int | None = 0

    def to_api(self) -> dict[str, Any]:
        return {
            "databases": self.databases,
            "allocations": self.allocations,
            "backups": self.backups,
        }


@dataclass(frozen=True)
class Deploy:
    """The create request's ``deploy`` block: let the panel pick a node and a port.

    ``locations`` empty = every location; ``port_range`` entries are ``"25565"`` or
    ``"25565-25600"`` (empty = any port).
    """

    locations: tuple[int, ...] = ()
    dedicated_ip: bool = False
    port_range: tuple[str, ...] = ()

    def to_api(self) -> dict[str, Any]:
        return {
            "locations": [int(location) for location in self.locations],
            "dedicated_ip": bool(self.dedicated_ip),
            "port_range": [str(port) for port in self.port_range],
        }


# --------------------------------------------------------------------------- resources


class ServerStatus(StrEnum):
    """Values of ``server.status``; None (installed and normal) is represented as READY."""

    READY = "ready"
    INSTALLING = "installing"
    INSTALL_FAILED = "install_failed"
    REINSTALL_FAILED = "reinstall_failed"
    SUSPENDED = "suspended"
    RESTORING_BACKUP = "restoring_backup"


@dataclass(frozen=True)
class Container:
    startup_command: str
    image: str
    installed: bool
    environment: Mapping[str, Any]


@dataclass(frozen=True)
class Server:
    id: int
    external_id: str | None
    uuid: str
    identifier: str
    name: str
    description: str
    status: str | None
    suspended: bool
    limits: Limits
    feature_limits: FeatureLimits
    user_id: int
    node_id: int
    allocation_id: int
    nest_id: int
    egg_id: int
    container: Container
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # Present only when fetched with include=allocations.
    allocations: tuple[Allocation, ...] | None = None
    # Env var names of the egg's variables; present only with include=variables.
    variable_names: tuple[str, ...] | None = None

    @classmethod
    def from_api(cls, payload: Any) -> Server:
        r = Reader(unwrap(payload, "server"), "server")
        limits = r.obj("limits")
        feature_limits = r.obj("feature_limits")
        container = r.obj("container")
        allocations = r.relationship_list("allocations")
        variables = r.relationship_list("variables")
        return cls(
            id=r.int("id"),
            external_id=r.opt_str("external_id"),
            uuid=r.str("uuid"),
            identifier=r.str("identifier"),
            name=r.str("name"),
            description=r.opt_str("description") or "",
            status=r.opt_str("status"),
            suspended=r.bool("suspended"),
            limits=Limits(
                memory=limits.int("memory"),
                swap=limits.int("swap"),
                disk=limits.int("disk"),
                io=limits.int("io"),
                cpu=limits.int("cpu"),
                threads=limits.opt_str("threads"),
                oom_disabled=limits.bool("oom_disabled"),
            ),
            feature_limits=FeatureLimits(
                databases=feature_limits.opt_int("databases"),
                allocations=feature_limits.opt_int("allocations"),
                backups=feature_limits.opt_int("backups"),
            ),
            user_id=r.int("user"),
            node_id=r.int("node"),
            allocation_id=r.int("allocation"),
            nest_id=r.int("nest"),
            egg_id=r.int("egg"),
            container=Container(
                startup_command=container.str("startup_command"),
                image=container.str("image"),
                installed=container.bool("installed"),
                environment=container.mapping("environment"),
            ),
            created_at=r.ts("created_at"),
            updated_at=r.ts("updated_at"),
            allocations=(
                None
                if allocations is None
                else tuple(Allocation.from_api(item) for item in allocations)
            ),
            variable_names=(
                None
                if variables is None
                else tuple(
                    Reader(unwrap(item, "server_variable"), "server_variable").str("env_variable")
                    for item in variables
                )
            ),
        )

    @property
    def state(self) -> ServerStatus:
        return ServerStatus(self.status) if self.status else ServerStatus.READY

    @property
    def is_ready(self) -> bool:
        """Installed and not suspended: the panel's ``status`` is null."""
        return self.status is None

    @property
    def is_installing(self) -> bool:
        return self.status == ServerStatus.INSTALLING

    @property
    def install_failed(self) -> bool:
        return self.status in (ServerStatus.INSTALL_FAILED, ServerStatus.REINSTALL_FAILED)

    @property
    def allocation_ids(self) -> tuple[int, ...] | None:
        if self.allocations is None:
            return None
        return tuple(allocation.id for allocation in self.allocations)

    def egg_environment(self) -> dict[str, Any]:
        """The egg variables' values without the four keys the panel adds (STARTUP, P_SERVER_*)."""
        extra = {"STARTUP", "P_SERVER_LOCATION", "P_SERVER_UUID", "P_SERVER_ALLOCATION_LIMIT"}
        if self.variable_names is not None:
            names = set(self.variable_names)
            return {k: v for k, v in self.container.environment.items() if k in names}
        return {k: v for k, v in self.container.environment.items() if k not in extra}


@dataclass(frozen=True)
class ServerResources:
    """Live usage from the client API (``/api/client/servers/{id}/resources``, cached 20 s)."""

    current_state: str
    is_suspended: bool
    memory_bytes: int
    cpu_absolute: float
    disk_bytes: int
    network_rx_bytes: int
    network_tx_bytes: int
    uptime_ms: int

    @classmethod
    def from_api(cls, payload: Any) -> ServerResources:
        r = Reader(unwrap(payload, "stats"), "stats")
        resources = r.obj("resources")
        cpu = resources.data.get("cpu_absolute")
        if isinstance(cpu, bool) or not isinstance(cpu, int | float):
            raise PanelBadResponse("unexpected stats shape from the panel: cpu_absolute")
        return cls(
            current_state=r.str("current_state"),
            is_suspended=r.bool("is_suspended"),
            memory_bytes=resources.int("memory_bytes"),
            cpu_absolute=float(cpu),
            disk_bytes=resources.int("disk_bytes"),
            network_rx_bytes=resources.int("network_rx_bytes"),
            network_tx_bytes=resources.int("network_tx_bytes"),
            uptime_ms=resources.int("uptime"),
        )
