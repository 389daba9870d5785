"""The reconcile job's read of the panel: the whole fleet by list calls, a few ints a server.

Every panel server (with its allocations) and every user carrying our external-id prefix, per
PER_PAGE; a failed page raises, so nothing is judged on half a read. Servers our live
deployments hold that the list did not show are looked up one by one before they count as
missing (`panel_fleet_confirm_absent`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from provisioning.fleet.budget import servers_confirm_absent
from provisioning.fleet.drift import LIVE_STATUSES, SERVER_EXTERNAL_PREFIX, USER_EXTERNAL_PREFIX
from provisioning.pterodactyl import PterodactylClient, Server
from servers.models import Deployment

PER_PAGE = 100
# The limits compared (plan + add-ons in Deployment.spec against the panel's build).
LIMIT_FIELDS = ("memory", "swap", "disk", "io", "cpu", "threads")
FEATURE_FIELDS = ("databases", "allocations", "backups")
PANEL_FIELDS = LIMIT_FIELDS + FEATURE_FIELDS


@dataclass(frozen=True, slots=True)
class PanelServerView:
    """What the comparison needs of one panel server (a few ints, not the whole payload)."""

    id: int
    external_id: str | None
    status: str | None
    user_id: int
    uuid: str
    identifier: str
    # memory, swap, disk, io, cpu, threads, databases, allocations, backups (PANEL_FIELDS).
    limits: tuple[Any, ...]
    primary_ip: str | None
    primary_port: int | None

    @classmethod
    def from_server(cls, server: Server) -> PanelServerView:
        primary = next((a for a in server.allocations or () if a.id == server.allocation_id), None)
        limits, features = server.limits, server.feature_limits
        return cls(
            id=server.id,
            external_id=server.external_id,
            status=server.status,
            user_id=server.user_id,
            uuid=server.uuid,
            identifier=server.identifier,
            limits=(
                limits.memory,
                limits.swap,
                limits.disk,
                limits.io,
                limits.cpu,
                limits.threads,
                features.databases,
                features.allocations,
                features.backups,
            ),
            primary_ip=primary.ip if primary else None,
            primary_port=primary.port if primary else None,
        )

    def limits_dict(self) -> dict[str, Any]:
        return dict(zip(PANEL_FIELDS, self.limits, strict=True))


@dataclass(frozen=True, slots=True)
class PanelUserView:
    id: int
    external_id: str
    username: str
    root_admin: bool


@dataclass
class PanelFleet:
    servers: dict[int, PanelServerView] = field(default_factory=dict)
    # Deployment pk (from "deployment-<pk>") -> panel server id.
    by_external: dict[int, int] = field(default_factory=dict)
    # Panel allocation id -> the panel server it is assigned to.
    allocation_owner: dict[int, int] = field(default_factory=dict)
    # Panel user id -> how many servers it owns.
    owned: Counter[int] = field(default_factory=Counter)
    users: list[PanelUserView] = field(default_factory=list)


def _deployment_pk(external_id: str | None) -> int | None:
    if not external_id or not external_id.startswith(SERVER_EXTERNAL_PREFIX):
        return None
    suffix = external_id[len(SERVER_EXTERNAL_PREFIX) :]
    return int(suffix) if suffix.isdigit() else None


def panel_fleet_read(*, client: PterodactylClient) -> PanelFleet:
    """Every panel server (with its allocations) and every user with our prefix, by list
    calls of PER_PAGE; raises the client's PanelError when any page fails (nothing partial is
    returned, so nothing is judged on half a read)."""
    fleet = PanelFleet()
    for server in client.iter_servers(include=["allocations"], per_page=PER_PAGE):
        _fleet_add(fleet, server)
    # The users' filter is a partial match: it narrows the read, the prefix test decides.
    for user in client.iter_users(external_id=USER_EXTERNAL_PREFIX, per_page=PER_PAGE):
        if user.external_id and user.external_id.startswith(USER_EXTERNAL_PREFIX):
            fleet.users.append(
                PanelUserView(user.id, user.external_id, user.username, user.root_admin)
            )
    return fleet


def panel_fleet_confirm_absent(client: PterodactylClient, fleet: PanelFleet) -> None:
    """Servers our live deployments hold that the (long) list read did not show are looked up
    one by one before they count as missing: a page may shift while the list is walked."""
    held = Deployment.objects.filter(
        status__in=LIVE_STATUSES, panel_server_id__isnull=False
    ).values_list("panel_server_id", flat=True)
    absent = [server_id for server_id in held.order_by() if server_id not in fleet.servers]
    for server in servers_confirm_absent(client=client, absent_ids=absent).values():
        _fleet_add(fleet, server)


def _fleet_add(fleet: PanelFleet, server: Server) -> None:
    view = PanelServerView.from_server(server)
    fleet.servers[view.id] = view
    fleet.owned[view.user_id] += 1
    for allocation in server.allocations or ():
        fleet.allocation_owner[allocation.id] = view.id
    pk = _deployment_pk(view.external_id)
    if pk is not None:
        fleet.by_external[pk] = view.id
