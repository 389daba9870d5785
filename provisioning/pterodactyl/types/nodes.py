"""Nodes, their allocations (ip:port pairs) and locations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provisioning.pterodactyl.types.base import Reader, unwrap


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
        r = Reader(unwrap(payload, "allocation"), "allocation")
        return cls(
            id=r.int("id"),
            ip=r.str("ip"),
            alias=r.opt_str("alias"),
            port=r.int("port"),
            notes=r.opt_str("notes"),
            assigned=r.bool("assigned"),
        )


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
        r = Reader(unwrap(payload, "node"), "node")
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
        r = Reader(unwrap(payload, "location"), "location")
        return cls(
            id=r.int("id"),
            short=r.str("short"),
            long=r.opt_str("long"),
            created_at=r.ts("created_at"),
            updated_at=r.ts("updated_at"),
        )
