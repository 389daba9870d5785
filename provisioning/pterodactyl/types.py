"""Typed results of the panel API: frozen dataclasses built by ``from_api``.

``from_api`` accepts either an item envelope (``{"object": "server", "attributes": {...}}``) or
the bare attributes, and raises ``PanelBadResponse`` (never KeyError/TypeError) when the shape
is not the one the panel documents. Request-side value objects (``Limits``, ``FeatureLimits``,
``Deploy``) live here too because the server type reuses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from provisioning.pterodactyl.errors import PanelBadResponse

__all__ = [
    "AllocatedResources",
    "Allocation",
    "Container",
    "CreateOrigin",
    "Created",
    "Deploy",
    "Egg",
    "EggVariable",
    "FeatureLimits",
    "Limits",
    "Location",
    "Nest",
    "Node",
    "Page",
    "Server",
    "ServerResources",
    "ServerStatus",
    "User",
]

T = TypeVar("T")


class _Reader:
    """Typed access to one attributes dict; every problem becomes a PanelBadResponse."""

    def __init__(self, data: Any, what: str) -> None:
        if not isinstance(data, Mapping):
            raise PanelBadResponse(
                f"unexpected {what} shape from the panel: expected an object, got "
                f"{type(data).__name__}"
            )
        self.data = data
        self.what = what

    def _fail(self, key: str, expected: str) -> PanelBadResponse:
        if key not in self.data:
            return PanelBadResponse(
                f"unexpected {self.what} shape from the panel: field '{key}' is missing"
            )
        got = type(self.data[key]).__name__
        return PanelBadResponse(
            f"unexpected {self.what} shape from the panel: field '{key}' should be {expected}, "
            f"got {got}"
        )

    def int(self, key: str) -> int:
        value = self.data.get(key)
        if isinstance(value, bool) or value is None:
            raise self._fail(key, "an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
        raise self._fail(key, "an integer")

    def opt_int(self, key: str) -> int | None:
        if self.data.get(key) is None:
            return None
        return self.int(key)

    def str(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def opt_str(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._fail(key, "a string or null")
        return value

    def bool(self, key: str) -> bool:
        value = self.data.get(key)
        # Older panels render some booleans as 0/1.
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise self._fail(key, "a boolean")

    def obj(self, key: str) -> _Reader:
        value = self.data.get(key)
        if not isinstance(value, Mapping):
            raise self._fail(key, "an object")
        return _Reader(value, f"{self.what}.{key}")

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        # PHP renders an empty map as [] sometimes; accept it as {}.
        if value == [] or value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self._fail(key, "an object")
        return dict(value)

    def ts(self, key: str) -> datetime | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._fail(key, "a timestamp string")
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise self._fail(key, "an ISO-8601 timestamp") from None

    def relationship_list(self, name: str) -> list[Mapping[str, Any]] | None:
        """Items of ``attributes.relationships.<name>`` (None when not included or not readable)."""
        relationships = self.data.get("relationships")
        if not isinstance(relationships, Mapping) or name not in relationships:
            return None
        value = relationships[name]
        if not isinstance(value, Mapping):
            raise PanelBadResponse(
                f"unexpected {self.what} shape from the panel: relationship '{name}' is not an "
                "object"
            )
        if value.get("object") == "null_resource":
            return None
        data = value.get("data")
        if not isinstance(data, list):
            raise PanelBadResponse(
                f"unexpected {self.what} shape from the panel: relationship '{name}' has no list"
            )
        return data


def _unwrap(payload: Any, expected_object: str) -> Any:
    """Return the attributes of an item envelope (or the payload when it is bare attributes)."""
    if isinstance(payload, Mapping) and "object" in payload:
        if payload.get("object") != expected_object:
            raise PanelBadResponse(
                f"unexpected reply from the panel: expected a '{expected_object}' object, got "
                f"'{payload.get('object')}'"
            )
        attributes = payload.get("attributes")
        if not isinstance(attributes, Mapping):
            raise PanelBadResponse(
                f"unexpected reply from the panel: '{expected_object}' without attributes"
            )
        return attributes
    return payload


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
        r = _Reader(_unwrap(payload, "user"), "user")
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


@dataclass(frozen=True)
class Allocation:
    id: int
    ip: str
    alias: str | None
    port: int
    notes: str | None
    assigned: bool

    @classmethod
    def from_api(cls, payload: Any) -> Allocation:
        r = _Reader(_unwrap(payload, "allocation"), "allocation")
        return cls(
            id=r.int("id"),
            ip=r.str("ip"),
            alias=r.opt_str("alias"),
            port=r.int("port"),
            notes=r.opt_str("notes"),
            assigned=r.bool("assigned"),
        )


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
        r = _Reader(_unwrap(payload, "server"), "server")
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
                    _Reader(_unwrap(item, "server_variable"), "server_variable").str("env_variable")
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
class AllocatedResources:
    memory: int
    disk: int


@dataclass(frozen=True)
class Node:
    id: int
    uuid: str
    public: bool
    name: str
    description: str | None
    location_id: int
    fqdn: str
    scheme: str
    behind_proxy: bool
    maintenance_mode: bool
    memory: int
    memory_overallocate: int
    disk: int
    disk_overallocate: int
    upload_size: int
    daemon_listen: int
    daemon_sftp: int
    daemon_base: str
    allocated_resources: AllocatedResources
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_api(cls, payload: Any) -> Node:
        r = _Reader(_unwrap(payload, "node"), "node")
        allocated = r.obj("allocated_resources") if "allocated_resources" in r.data else None
        return cls(
            id=r.int("id"),
            uuid=r.str("uuid"),
            public=r.bool("public"),
            name=r.str("name"),
            description=r.opt_str("description"),
            location_id=r.int("location_id"),
            fqdn=r.str("fqdn"),
            scheme=r.str("scheme"),
            behind_proxy=r.bool("behind_proxy"),
            maintenance_mode=r.bool("maintenance_mode"),
            memory=r.int("memory"),
            memory_overallocate=r.int("memory_overallocate"),
            disk=r.int("disk"),
            disk_overallocate=r.int("disk_overallocate"),
            upload_size=r.int("upload_size"),
            daemon_listen=r.int("daemon_listen"),
            daemon_sftp=r.int("daemon_sftp"),
            daemon_base=r.str("daemon_base"),
            allocated_resources=AllocatedResources(
                memory=allocated.int("memory") if allocated else 0,
                disk=allocated.int("disk") if allocated else 0,
            ),
            created_at=r.ts("created_at"),
            updated_at=r.ts("updated_at"),
        )

    @property
    def memory_capacity(self) -> float:
        """MiB the deploy filter allows: overallocate is a percentage (-1 means 99%)."""
        return self.memory * (1 + self.memory_overallocate / 100)

    @property
    def disk_capacity(self) -> float:
        return self.disk * (1 + self.disk_overallocate / 100)

    def fits(self, memory: int, disk: int) -> bool:
        """The panel's deploy test: allocated + requested <= capacity, for memory and disk."""
        return (
            self.allocated_resources.memory + memory <= self.memory_capacity
            and self.allocated_resources.disk + disk <= self.disk_capacity
        )


@dataclass(frozen=True)
class Location:
    id: int
    short: str
    long: str | None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_api(cls, payload: Any) -> Location:
        r = _Reader(_unwrap(payload, "location"), "location")
        return cls(
            id=r.int("id"),
            short=r.str("short"),
            long=r.opt_str("long"),
            created_at=r.ts("created_at"),
            updated_at=r.ts("updated_at"),
        )


@dataclass(frozen=True)
class Nest:
    id: int
    uuid: str
    author: str
    name: str
    description: str | None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_api(cls, payload: Any) -> Nest:
        r = _Reader(_unwrap(payload, "nest"), "nest")
        return cls(
            id=r.int("id"),
            uuid=r.str("uuid"),
            author=r.str("author"),
            name=r.str("name"),
            description=r.opt_str("description"),
            created_at=r.ts("created_at"),
            updated_at=r.ts("updated_at"),
        )


@dataclass(frozen=True)
class EggVariable:
    id: int
    egg_id: int
    name: str
    description: str
    env_variable: str
    default_value: str
    user_viewable: bool
    user_editable: bool
    rules: str

    @classmethod
    def from_api(cls, payload: Any) -> EggVariable:
        r = _Reader(_unwrap(payload, "egg_variable"), "egg_variable")
        return cls(
            id=r.int("id"),
            egg_id=r.int("egg_id"),
            name=r.str("name"),
            description=r.opt_str("description") or "",
            env_variable=r.str("env_variable"),
            default_value=r.opt_str("default_value") or "",
            user_viewable=r.bool("user_viewable"),
            user_editable=r.bool("user_editable"),
            rules=r.opt_str("rules") or "",
        )

    @property
    def required(self) -> bool:
        """The panel treats a variable as required exactly when its rules contain ``required``."""
        return "required" in self.rules.split("|")


@dataclass(frozen=True)
class Egg:
    id: int
    uuid: str
    name: str
    nest_id: int
    author: str
    description: str | None
    docker_image: str
    docker_images: Mapping[str, str]
    startup: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # Present only when fetched with include=variables.
    variables: tuple[EggVariable, ...] | None = None

    @classmethod
    def from_api(cls, payload: Any) -> Egg:
        r = _Reader(_unwrap(payload, "egg"), "egg")
        variables = r.relationship_list("variables")
        images = r.mapping("docker_images")
        return cls(
            id=r.int("id"),
            uuid=r.str("uuid"),
            name=r.str("name"),
            nest_id=r.int("nest"),
            author=r.str("author"),
            description=r.opt_str("description"),
            docker_image=r.opt_str("docker_image") or next(iter(images.values()), ""),
            docker_images={str(k): str(v) for k, v in images.items()},
            startup=r.str("startup"),
            created_at=r.ts("created_at"),
            updated_at=r.ts("updated_at"),
            variables=(
                None
                if variables is None
                else tuple(EggVariable.from_api(item) for item in variables)
            ),
        )

    def environment_with_defaults(
        self, overrides: Mapping[str, Any] | None = None
    ) -> dict[str, str]:
        """Every variable's ``default_value``, then ``overrides`` on top.

        The panel never applies defaults itself: a create without them fails with 422 on every
        ``required`` variable. Needs the egg fetched with variables (``get_egg`` does that).
        """
        if self.variables is None:
            raise ValueError("egg was fetched without include=variables")
        environment = {variable.env_variable: variable.default_value for variable in self.variables}
        for key, value in (overrides or {}).items():
            environment[key] = value
        return environment


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list endpoint, with the panel's ``meta.pagination`` numbers."""

    items: tuple[T, ...]
    total: int
    count: int
    per_page: int
    current_page: int
    total_pages: int

    @property
    def has_next(self) -> bool:
        return self.current_page < self.total_pages

    @classmethod
    def from_api(cls, payload: Any, item_factory: Any, what: str) -> Page[Any]:
        if not isinstance(payload, Mapping) or payload.get("object") != "list":
            raise PanelBadResponse(f"unexpected reply listing {what}: expected a 'list' object")
        data = payload.get("data")
        if not isinstance(data, list):
            raise PanelBadResponse(f"unexpected reply listing {what}: 'data' is not a list")
        meta = payload.get("meta")
        items = tuple(item_factory(item) for item in data)
        if meta is None:
            # Unpaginated endpoints (eggs, deployable nodes without page) send no meta.
            return cls(items, len(items), len(items), len(items), 1, 1)
        pagination = _Reader(_Reader(meta, "list meta").obj("pagination").data, "pagination")
        return cls(
            items=items,
            total=pagination.int("total"),
            count=pagination.int("count"),
            per_page=pagination.int("per_page"),
            current_page=pagination.int("current_page"),
            total_pages=pagination.int("total_pages"),
        )


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
        r = _Reader(_unwrap(payload, "stats"), "stats")
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


class CreateOrigin(StrEnum):
    CREATED = "created"  # our POST returned 201
    RECOVERED = "recovered"  # the POST's reply was lost; found by external_id afterwards
    EXISTING = "existing"  # found by external_id before (or instead of) creating


@dataclass(frozen=True)
class Created(Generic[T]):
    """The result of a create: the object plus how we got it (see ``CreateOrigin``)."""

    resource: T
    origin: CreateOrigin = CreateOrigin.CREATED
    notes: tuple[str, ...] = field(default=())

    @property
    def adopted(self) -> bool:
        """True when we did not get the object from our own successful POST."""
        return self.origin is not CreateOrigin.CREATED
