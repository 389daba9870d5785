"""Choosing a node: capacity with the panel's overallocation rule, least loaded first.

A node's load is the panel's last reading (the Node mirror) plus what we have promised on it
that the reading cannot show yet: in-flight runs' reservations and checkouts' capacity holds
(servers.capacity).
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import F, Q, Sum

from provisioning.models import ACTIVE_RUN_STATUSES, ProvisioningRun
from servers.capacity import capacity_held_by_node, capacity_held_on_node
from servers.models import Node


def capacity(total_mb: int, overallocate_percent: int) -> float:
    """The panel's limit: total * (1 + overallocate/100); -1 means 99%, not unlimited."""
    return total_mb * (1 + overallocate_percent / 100)


def in_flight_reservations(node: Node, *, exclude_run_id: int | None = None) -> tuple[int, int]:
    """Memory and disk our runs hold on `node` that the last panel reading does not show yet:
    active runs whose server is not created, and servers created after that reading."""
    runs = ProvisioningRun.objects.filter(node=node).filter(
        Q(status__in=ACTIVE_RUN_STATUSES, server_created_at__isnull=True)
        | Q(server_created_at__gte=node.synced_at)
        if node.synced_at
        else Q(status__in=ACTIVE_RUN_STATUSES) | Q(server_created_at__isnull=False)
    )
    if exclude_run_id is not None:
        runs = runs.exclude(pk=exclude_run_id)
    totals = runs.aggregate(memory=Sum("reserved_memory_mb"), disk=Sum("reserved_disk_mb"))
    return totals["memory"] or 0, totals["disk"] or 0


def in_flight_reservations_by_node(node_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """`in_flight_reservations` of many nodes in one grouped query (availability display)."""
    since_reading = Q(node__synced_at__isnull=False) & (
        Q(status__in=ACTIVE_RUN_STATUSES, server_created_at__isnull=True)
        | Q(server_created_at__gte=F("node__synced_at"))
    )
    never_read = Q(node__synced_at__isnull=True) & (
        Q(status__in=ACTIVE_RUN_STATUSES) | Q(server_created_at__isnull=False)
    )
    rows = (
        ProvisioningRun.objects.filter(node_id__in=list(node_ids))
        .filter(since_reading | never_read)
        .values("node_id")
        .annotate(memory=Sum("reserved_memory_mb"), disk=Sum("reserved_disk_mb"))
        .order_by()
    )
    return {row["node_id"]: (row["memory"] or 0, row["disk"] or 0) for row in rows}


@dataclass(frozen=True)
class NodeLoad:
    node: Node
    used_memory: int
    used_disk: int
    memory_capacity: float
    disk_capacity: float
    # Of used_memory / used_disk: what capacity holds of other orders keep on the node.
    held_memory: int = 0
    held_disk: int = 0

    def fits(self, memory: int, disk: int) -> bool:
        return (
            self.used_memory + memory <= self.memory_capacity
            and self.used_disk + disk <= self.disk_capacity
        )

    def load_after(self, memory: int, disk: int) -> float:
        ratios = [
            (self.used_memory + memory) / self.memory_capacity if self.memory_capacity else 1.0,
            (self.used_disk + disk) / self.disk_capacity if self.disk_capacity else 1.0,
        ]
        return max(ratios)

    def describe(self, memory: int, disk: int) -> str:
        held = (
            f" (held for orders: {self.held_memory} MB / {self.held_disk} MB)"
            if self.held_memory or self.held_disk
            else ""
        )
        return (
            f"{self.node.name} (#{self.node.panel_id}): memory {self.used_memory}+{memory}/"
            f"{self.memory_capacity:.0f} MB, disk {self.used_disk}+{disk}/"
            f"{self.disk_capacity:.0f} MB, {self.node.free_allocations} free ports{held}"
        )


def _load(node: Node, reserved: tuple[int, int], held: tuple[int, int]) -> NodeLoad:
    return NodeLoad(
        node=node,
        used_memory=node.allocated_memory_mb + reserved[0] + held[0],
        used_disk=node.allocated_disk_mb + reserved[1] + held[1],
        memory_capacity=capacity(node.memory_mb, node.memory_overallocate_percent),
        disk_capacity=capacity(node.disk_mb, node.disk_overallocate_percent),
        held_memory=held[0],
        held_disk=held[1],
    )


def node_load(
    node: Node,
    *,
    exclude_run_id: int | None = None,
    exclude_deployment_id: int | None = None,
    only_holds_ahead: bool = True,
) -> NodeLoad:
    """The node's load for placing `exclude_deployment_id` (taken from the run when only
    `exclude_run_id` is given): its own run and its own hold are not counted against it.

    `only_holds_ahead` (placement, the default): on the node of the deployment's own hold, only
    the holds taken before it count, so paid orders are served in the order their room was
    held, and a node that shrank below what is held still serves the oldest instead of no one.
    Checkout passes False: a new hold must fit after every other.
    """
    if exclude_deployment_id is None and exclude_run_id is not None:
        exclude_deployment_id = (
            ProvisioningRun.objects.filter(pk=exclude_run_id)
            .values_list("deployment_id", flat=True)
            .first()
        )
    reserved = in_flight_reservations(node, exclude_run_id=exclude_run_id)
    held = capacity_held_on_node(
        node.pk, exclude_deployment_id=exclude_deployment_id, only_ahead=only_holds_ahead
    )
    return _load(node, reserved, held)


def node_loads(nodes: list[Node]) -> list[NodeLoad]:
    """The loads of many nodes for a new order (every run and every active hold counted), in
    two queries however many nodes: the shop's "sold out" display."""
    ids = [node.pk for node in nodes]
    reserved, held = in_flight_reservations_by_node(ids), capacity_held_by_node(ids)
    return [_load(node, reserved.get(node.pk, (0, 0)), held.get(node.pk, (0, 0))) for node in nodes]


def rank_nodes(loads: list[NodeLoad], *, memory: int, disk: int) -> tuple[list[NodeLoad], str]:
    """Viable nodes, least loaded after placement first, and a readable reason."""
    viable = [load for load in loads if load.fits(memory, disk)]
    full = [load for load in loads if not load.fits(memory, disk)]
    viable.sort(key=lambda load: (load.load_after(memory, disk), load.node.panel_id))
    lines = []
    if viable:
        best = viable[0]
        lines.append(
            f"chose {best.describe(memory, disk)}: least loaded after placement "
            f"({best.load_after(memory, disk):.0%}) of {len(viable)} viable node(s)"
        )
    lines += [f"full: {load.describe(memory, disk)}" for load in full]
    return viable, "; ".join(lines) or "no nodes"
