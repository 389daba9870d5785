"""Server figures for the admin's analytics page: node utilisation and churn (2 queries).

Node figures are the panel's, as last synced (provisioning.panel_sync): what is allocated on the
node against what the panel lets be allocated, total * (1 + overallocate / 100) (the formula of
provisioning.saga.placement.capacity: -1 means 99 %, not unlimited).
"""

from dataclasses import dataclass

from django.db.models import Count, Q

from common.analytics import Period, rate
from servers.models import Deployment, DeploymentStatus, Node

LIVE_STATUSES = (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED)


def _capacity(total_mb: int, overallocate_percent: int) -> float:
    return total_mb * (1 + overallocate_percent / 100)


@dataclass(frozen=True)
class NodeUtilisation:
    node_id: int
    name: str
    location: str
    maintenance_mode: bool
    memory_mb: int
    memory_capacity_mb: float
    allocated_memory_mb: int
    disk_mb: int
    disk_capacity_mb: float
    allocated_disk_mb: int
    free_allocations: int
    live_servers: int

    @property
    def memory_share(self) -> float | None:
        return (
            None
            if not self.memory_capacity_mb
            else self.allocated_memory_mb / self.memory_capacity_mb
        )

    @property
    def disk_share(self) -> float | None:
        return None if not self.disk_capacity_mb else self.allocated_disk_mb / self.disk_capacity_mb


def node_utilisation() -> list[NodeUtilisation]:
    nodes = (
        Node.objects.select_related("location")
        .annotate(live=Count("deployments", filter=Q(deployments__status__in=LIVE_STATUSES)))
        .order_by("location__short_code", "name", "pk")
    )
    return [
        NodeUtilisation(
            node_id=node.pk,
            name=node.name,
            location=node.location.short_code,
            maintenance_mode=node.maintenance_mode,
            memory_mb=node.memory_mb,
            memory_capacity_mb=_capacity(node.memory_mb, node.memory_overallocate_percent),
            allocated_memory_mb=node.allocated_memory_mb,
            disk_mb=node.disk_mb,
            disk_capacity_mb=_capacity(node.disk_mb, node.disk_overallocate_percent),
            allocated_disk_mb=node.allocated_disk_mb,
            free_allocations=node.free_allocations,
            live_servers=node.live,
        )
        for node in nodes
    ]


@dataclass(frozen=True)
class Churn:
    live_at_start: int
    ended: int  # of those live at the start, terminated in the period

    @property
    def rate(self) -> float | None:
        return rate(self.ended, self.live_at_start)


def deployment_churn(*, period: Period) -> Churn:
    """Servers live (active or suspended) at the start of the period, and how many of them were
    terminated within it. A customer's cancellation ends in a termination at the end of the paid
    period (billing.services.cancellations), so it is counted when it takes effect; an order
    cancelled before its server was ever active is not churn."""
    live_at_start = Q(activated_at__lt=period.start) & (
        Q(terminated_at__isnull=True) | Q(terminated_at__gte=period.start)
    )
    totals = Deployment.objects.order_by().aggregate(
        live=Count("id", filter=live_at_start),
        ended=Count("id", filter=live_at_start & Q(terminated_at__lt=period.end)),
    )
    return Churn(live_at_start=totals["live"], ended=totals["ended"])
