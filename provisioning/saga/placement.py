"""Choosing a node: capacity with the panel's overallocation rule, least loaded first."""

from dataclasses import dataclass

from django.db.models import Q, Sum

from provisioning.models import ACTIVE_RUN_STATUSES, ProvisioningRun
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


@dataclass(frozen=True)
class NodeLoad:
    node: Node
    used_memory: int
    used_disk: int
    memory_capacity: float
    disk_capacity: float

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
        return (
            f"{self.node.name} (#{self.node.panel_id}): memory {self.used_memory}+{memory}/"
            f"{self.memory_capacity:.0f} MB, disk {self.used_disk}+{disk}/"
            f"{self.disk_capacity:.0f} MB, {self.node.free_allocations} free ports"
        )


def node_load(node: Node, *, exclude_run_id: int | None = None) -> NodeLoad:
    reserved_memory, reserved_disk = in_flight_reservations(node, exclude_run_id=exclude_run_id)
    return NodeLoad(
        node=node,
        used_memory=node.allocated_memory_mb + reserved_memory,
        used_disk=node.allocated_disk_mb + reserved_disk,
        memory_capacity=capacity(node.memory_mb, node.memory_overallocate_percent),
        disk_capacity=capacity(node.disk_mb, node.disk_overallocate_percent),
    )


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
