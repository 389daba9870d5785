"""Capacity holds: the room a checkout keeps on a node for its order until the server exists.

Without them, checkout sold whatever was asked and placement found out after the money was
taken (50 paid orders for 10 free slots: 40 paid customers whose provisioning failed). Now:

- checkout (`capacity_hold_take`, inside the order's transaction) locks the location's nodes
  in the order PlacementStep locks them, so checkouts and placements of one location
  serialise, and takes room on the least loaded node that fits, for CAPACITY_HOLD_MINUTES;
  when nothing fits the order is refused (`SoldOutError`, a field error on "location");
- payment (`capacity_hold_keep`) keeps it until the server exists; a hold that lapsed is taken
  again, and when there is no room the paid order still gets a hold (over the node's
  capacity): it keeps its place in the queue and the location stays sold out for new orders
  until it is served;
- placement counts other orders' holds (provisioning.saga.placement.node_load) and consumes
  the deployment's own once its run's reservation takes over (`capacity_hold_consume`);
- a cancelled order or invoice, or failed provisioning, releases it (`capacity_hold_release`);
  an unpaid hold stops counting by itself at expires_at, and the hourly billing job marks such
  rows released (`capacity_holds_release_expired`).

A location with no usable node at all (none synced from the panel, or all in maintenance or
private) is refused as "not available" rather than "sold out": we cannot promise room there.

A node's load also counts in-flight provisioning runs, which are provisioning's rows: the loads
are computed by provisioning.saga.placement (imported inside the functions below, the one read
from servers into provisioning; ADR 0008), so checkout and placement use one formula.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from common.actors import Actor
from common.errors import ApplicationError
from servers.errors import ServersErrorCode
from servers.models import CapacityHold, Deployment, Location, Node
from servers.services import deployment_record

if TYPE_CHECKING:
    from provisioning.saga.placement import NodeLoad

logger = logging.getLogger(__name__)

RELEASE_EXPIRED = "expired"


class SoldOutError(ApplicationError):
    """No node of the chosen location has room for the plan (code "sold_out"), or the location
    has no usable node at all (code "not_available"). A field error on "location"."""

    default_code = ServersErrorCode.SOLD_OUT


class Sized(Protocol):
    """What availability needs of a plan (billing's Plan; servers does not import billing)."""

    pk: int
    memory_mb: int
    disk_mb: int


def _location_name(location: Location) -> str:
    return location.long_name or location.short_code


def sold_out_error(*, location: Location, plan_name: str) -> SoldOutError:
    return SoldOutError.for_fields(
        {
            "location": _(
                "Sold out: no server in %(location)s has room for %(plan)s right now. Choose "
                "another location or try again later."
            )
            % {"location": _location_name(location), "plan": plan_name}
        },
        code=ServersErrorCode.SOLD_OUT,
    )


def not_available_error(*, location: Location, plan_name: str) -> SoldOutError:
    return SoldOutError.for_fields(
        {
            "location": _(
                "%(plan)s is not available in %(location)s right now: no server there takes new "
                "orders. Choose another location or try again later."
            )
            % {"location": _location_name(location), "plan": plan_name}
        },
        code=ServersErrorCode.NOT_AVAILABLE,
    )


# ---------------------------------------------------------------------- selectors


def capacity_holds_active(*, now: dt.datetime | None = None) -> QuerySet[CapacityHold]:
    """Holds that count against their node: not released, not expired."""
    now = now or timezone.now()
    return CapacityHold.objects.filter(released_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def nodes_usable(*, location: Location) -> QuerySet[Node]:
    """The nodes new servers of `location` go on (the candidates PlacementStep uses)."""
    return Node.objects.filter(location=location, is_public=True, maintenance_mode=False)


def capacity_held_on_node(
    node_id: int, *, exclude_deployment_id: int | None = None, only_ahead: bool = False
) -> tuple[int, int]:
    """Memory and disk that active holds of other deployments keep on the node. With
    `only_ahead`, on the node of the deployment's own active hold only the holds taken before
    it count (placement serves holds first come, first served). One query."""
    holds = capacity_holds_active().filter(node_id=node_id)
    if exclude_deployment_id is not None:
        holds = holds.exclude(deployment_id=exclude_deployment_id)
        if only_ahead:
            own = capacity_holds_active().filter(
                deployment_id=exclude_deployment_id, node_id=OuterRef("node_id")
            )
            own_taken_at = Subquery(own.values("taken_at")[:1])
            holds = holds.filter(
                Q(taken_at__lt=own_taken_at)
                | Q(taken_at=own_taken_at, pk__lt=Subquery(own.values("pk")[:1]))
                | ~Exists(own)
            )
    totals = holds.aggregate(memory=Sum("memory_mb"), disk=Sum("disk_mb"))
    return totals["memory"] or 0, totals["disk"] or 0


def capacity_held_by_node(node_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """What all active holds keep on each node, in one grouped query."""
    rows = (
        capacity_holds_active()
        .filter(node_id__in=list(node_ids))
        .values("node_id")
        .annotate(memory=Sum("memory_mb"), disk=Sum("disk_mb"))
        .order_by()
    )
    return {row["node_id"]: (row["memory"] or 0, row["disk"] or 0) for row in rows}


def capacity_hold_node_id(deployment_id: int) -> int | None:
    """The node the deployment's active hold is on (placement prefers it), or None."""
    return (
        capacity_holds_active()
        .filter(deployment_id=deployment_id)
        .values_list("node_id", flat=True)
        .first()
    )


def location_availability(
    plans: Iterable[Sized], locations: Iterable[Location]
) -> dict[tuple[int, int], bool]:
    """Whether a new order of each plan would find room in each location now, from the node
    mirror, in-flight runs and active holds: three queries however many plans and locations.
    A location with no usable node is unavailable. Add-ons are not counted (the display's
    "from"); checkout checks the exact size."""
    from provisioning.saga.placement import node_loads

    plans, locations = list(plans), list(locations)
    nodes = list(
        Node.objects.filter(
            location__in=[loc.pk for loc in locations], is_public=True, maintenance_mode=False
        )
    )
    by_location: dict[int, list[NodeLoad]] = {}
    for load in node_loads(nodes):
        by_location.setdefault(load.node.location_id, []).append(load)
    return {
        (plan.pk, location.pk): any(
            load.fits(plan.memory_mb, plan.disk_mb) for load in by_location.get(location.pk, ())
        )
        for plan in plans
        for location in locations
    }


def capacity_room_check(
    *, location: Location, memory_mb: int, disk_mb: int, plan_name: str
) -> None:
    """Raise SoldOutError if a new order of this size would find no room in `location` now.
    A read without locks, for the order review; checkout's hold is the binding check."""
    from provisioning.saga.placement import node_loads

    loads = node_loads(list(nodes_usable(location=location)))
    if not loads:
        raise not_available_error(location=location, plan_name=plan_name)
    if not any(load.fits(memory_mb, disk_mb) for load in loads):
        raise sold_out_error(location=location, plan_name=plan_name)


# ---------------------------------------------------------------------- services


def _locked_loads(location: Location, *, deployment_id: int) -> list[NodeLoad]:
    """Lock the location's usable nodes (pk order, as PlacementStep does: checkouts and
    placements of a location take turns and never deadlock) and compute their loads for a
    new hold: every other deployment's run and hold counts."""
    from provisioning.saga.placement import node_load

    locked = list(nodes_usable(location=location).select_for_update().order_by("pk"))
    return [
        node_load(node, exclude_deployment_id=deployment_id, only_holds_ahead=False)
        for node in locked
    ]


def _hold_write(
    *,
    existing: CapacityHold | None,
    deployment_id: int,
    node: Node,
    memory_mb: int,
    disk_mb: int,
    expires_at: dt.datetime | None,
) -> CapacityHold:
    """Create the deployment's hold, or take its lapsed row again (one row per deployment)."""
    if existing is None:
        return CapacityHold.objects.create(
            deployment_id=deployment_id,
            node=node,
            memory_mb=memory_mb,
            disk_mb=disk_mb,
            expires_at=expires_at,
        )
    existing.node, existing.memory_mb, existing.disk_mb = node, memory_mb, disk_mb
    existing.expires_at, existing.released_at, existing.release_reason = expires_at, None, ""
    existing.taken_at = timezone.now()  # queued behind the holds taken while it lapsed
    existing.save(
        update_fields=[
            "taken_at",
            "node",
            "memory_mb",
            "disk_mb",
            "expires_at",
            "released_at",
            "release_reason",
        ]
    )
    return existing


def capacity_hold_take(
    *, deployment: Deployment, location: Location, memory_mb: int, disk_mb: int, actor: Actor
) -> CapacityHold:
    """Keep room for the deployment's order on the least loaded node of `location` that fits,
    for CAPACITY_HOLD_MINUTES. Call inside the order's transaction (the node locks are held
    until it commits, so two checkouts cannot both take the last slot). Raises SoldOutError
    when nothing fits. Idempotent: an active hold of the deployment is returned as is."""
    now = timezone.now()
    with transaction.atomic():
        existing = CapacityHold.objects.filter(deployment_id=deployment.pk).first()
        if existing is not None and existing.is_active(now):
            return existing
        loads = _locked_loads(location, deployment_id=deployment.pk)
        if not loads:
            raise not_available_error(location=location, plan_name=deployment.plan_name)
        from provisioning.saga.placement import rank_nodes

        viable, reason = rank_nodes(loads, memory=memory_mb, disk=disk_mb)
        if not viable:
            logger.info(
                "checkout refused, %s sold out for %s MB / %s MB: %s",
                location.short_code,
                memory_mb,
                disk_mb,
                reason,
            )
            raise sold_out_error(location=location, plan_name=deployment.plan_name)
        hold = _hold_write(
            existing=existing,
            deployment_id=deployment.pk,
            node=viable[0].node,
            memory_mb=memory_mb,
            disk_mb=disk_mb,
            expires_at=now + dt.timedelta(minutes=settings.CAPACITY_HOLD_MINUTES),
        )
    logger.info(
        "capacity held for deployment %s on %s by %s: %s",
        deployment.pk,
        hold.node.name,
        actor,
        reason,
    )
    return hold


def capacity_hold_keep(*, deployment_id: int, actor: Actor) -> CapacityHold | None:
    """The order is paid: keep its room until the server exists (expires_at NULL).

    A hold that lapsed (expired, released) is taken again. If no node has room, the paid order
    still gets a hold on the least loaded node, over its capacity: placement serves it before
    later orders, and the location stays sold out for new orders meanwhile. Never raises for
    lack of room (the money is taken; provisioning waits for capacity); returns None only when
    the location has no usable node at all. Call inside the payment's transaction.
    """
    now = timezone.now()
    with transaction.atomic():
        if (
            capacity_holds_active(now=now)
            .filter(deployment_id=deployment_id)
            .update(expires_at=None)
        ):
            return CapacityHold.objects.get(deployment_id=deployment_id)
        deployment = Deployment.objects.select_related("location").get(pk=deployment_id)
        limits = deployment.spec.get("limits") or {}
        memory, disk = int(limits.get("memory") or 0), int(limits.get("disk") or 0)
        loads = _locked_loads(deployment.location, deployment_id=deployment_id)
        if not loads:
            _record_no_room(
                deployment, actor, f"no usable node in {deployment.location.short_code}"
            )
            return None
        from provisioning.saga.placement import rank_nodes

        viable, reason = rank_nodes(loads, memory=memory, disk=disk)
        if viable:
            node = viable[0].node
        else:
            node = min(loads, key=lambda load: (load.load_after(memory, disk), load.node.pk)).node
            _record_no_room(deployment, actor, reason)
        # Locked after the nodes: PlacementStep's order (nodes, then the hold it consumes).
        existing = CapacityHold.objects.select_for_update().filter(deployment_id=deployment_id)
        hold = _hold_write(
            existing=existing.first(),
            deployment_id=deployment_id,
            node=node,
            memory_mb=memory,
            disk_mb=disk,
            expires_at=None,
        )
    logger.info("capacity hold of deployment %s taken again at payment by %s", deployment_id, actor)
    return hold


def _record_no_room(deployment: Deployment, actor: Actor, reason: str) -> None:
    logger.warning(
        "deployment %s paid while %s has no room: provisioning will wait (%s)",
        deployment.pk,
        deployment.location.short_code,
        reason,
    )
    deployment_record(
        deployment_id=deployment.pk,
        actor=actor,
        reason=f"Paid after its capacity hold lapsed, and {deployment.location.short_code} has "
        f"no room now: provisioning waits for capacity ({reason})",
    )


def capacity_hold_release(*, deployment_id: int, reason: str, actor: Actor) -> bool:
    """Give the deployment's room back (order or invoice cancelled, provisioning failed).
    Idempotent; returns whether a hold was released."""
    released = CapacityHold.objects.filter(
        deployment_id=deployment_id, released_at__isnull=True
    ).update(released_at=timezone.now(), release_reason=(reason or "released")[:200])
    if released:
        logger.info(
            "capacity hold of deployment %s released by %s: %s", deployment_id, actor, reason
        )
    return bool(released)


# An applied upgrade's hold keeps counting this long: until the node's next panel reading (every
# few minutes) shows the bigger server, the reading alone would under-count it.
UPGRADE_HOLD_AFTER_APPLY = dt.timedelta(minutes=15)


def capacity_hold_take_upgrade(
    *,
    deployment_id: int,
    node: Node,
    memory_mb: int,
    disk_mb: int,
    reference: str,
    actor: Actor,
) -> CapacityHold:
    """Keep an upgrade's extra memory and disk on the live server's own node while its invoice
    waits to be paid (CAPACITY_HOLD_MINUTES, as a checkout): a new order cannot take the room
    the customer is paying for. The caller locked `node` and checked the room (billing's
    plan-change quote). The deployment's one hold row is reused (its first one was consumed
    when the server was placed)."""
    existing = CapacityHold.objects.select_for_update().filter(deployment_id=deployment_id)
    hold = _hold_write(
        existing=existing.first(),
        deployment_id=deployment_id,
        node=node,
        memory_mb=memory_mb,
        disk_mb=disk_mb,
        expires_at=timezone.now() + dt.timedelta(minutes=settings.CAPACITY_HOLD_MINUTES),
    )
    deployment_record(
        deployment_id=deployment_id,
        actor=actor,
        reason=f"{memory_mb} MB memory and {disk_mb} MB disk held on {node.name} for {reference} "
        f"until it is paid (at most {settings.CAPACITY_HOLD_MINUTES} min unpaid)",
    )
    return hold


def capacity_hold_keep_upgrade(
    *, deployment_id: int, requested_at: dt.datetime, actor: Actor
) -> bool:
    """The upgrade requested at `requested_at` is paid: the hold it took counts until it is
    applied. One that lapsed unpaid is taken again on the same node even over its capacity
    (the money is taken; the panel does not refuse the bigger limits): new orders see the room
    as gone. A hold taken before the request (the checkout's, an earlier upgrade's) is never
    revived. Returns whether the upgrade had a hold to keep."""
    kept = CapacityHold.objects.filter(
        deployment_id=deployment_id, taken_at__gte=requested_at
    ).filter(Q(released_at__isnull=True) | Q(release_reason=RELEASE_EXPIRED))
    updated = kept.update(expires_at=None, released_at=None, release_reason="")
    if updated:
        logger.info("upgrade hold of deployment %s kept at payment by %s", deployment_id, actor)
    return bool(updated)


def capacity_hold_upgrade_applied(*, deployment_id: int) -> bool:
    """The bigger limits are on the panel: the hold stops counting UPGRADE_HOLD_AFTER_APPLY from
    now (by then the node's panel reading includes them)."""
    return bool(
        CapacityHold.objects.filter(deployment_id=deployment_id, released_at__isnull=True).update(
            expires_at=timezone.now() + UPGRADE_HOLD_AFTER_APPLY
        )
    )


def capacity_hold_consume(*, deployment_id: int, node_id: int) -> bool:
    """Placement chose `node_id` and wrote the run's reservation, which counts from now on:
    release the hold so the room is not counted twice. Call inside PlacementStep's node-locked
    transaction. Idempotent; returns whether a hold was consumed."""
    name = Node.objects.filter(pk=node_id).values_list("name", flat=True).first()
    return capacity_hold_release(
        deployment_id=deployment_id,
        reason=f"placed on {name or f'node {node_id}'}",
        actor=Actor.system("placement"),
    )


def capacity_holds_release_expired(*, now: dt.datetime | None = None) -> int:
    """Mark unpaid holds past their expiry released (they stopped counting at expires_at;
    this keeps the active index small and the history readable). One UPDATE; safe to run
    twice or concurrently."""
    count = CapacityHold.objects.filter(
        released_at__isnull=True, expires_at__lte=now or timezone.now()
    ).update(released_at=F("expires_at"), release_reason=RELEASE_EXPIRED)
    if count:
        logger.info("marked %s expired capacity hold(s) released", count)
    return count
