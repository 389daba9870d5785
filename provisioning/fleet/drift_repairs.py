"""Drift repairs requested: open drift items turned into panel operations, in sets.

- `drift_repairs_request`: each open item becomes a panel operation for the drain (re-apply
  suspension or build, delete an orphan server or user), or for an adoptable orphan server a
  database-only link to its deployment; constant statements per FLEET_BATCH_SIZE items.
- `drift_items_for_automatic_repair`: what the reconcile job may repair by itself.
The drain runs the operations (provisioning.fleet.repairs); the items themselves are
provisioning.fleet.drift's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from common.actors import Actor
from provisioning.fleet.drift import (
    ORPHAN_KINDS,
    REPAIR_ADOPT,
    REPAIR_BUILD,
    REPAIR_DELETE,
    REPAIR_NAMES,
    REPAIR_SUSPENSION,
    SUSPENSION_KINDS,
    chunked,
    fleet_batch_size,
    open_items_q,
    repair_for,
)
from provisioning.fleet.operations import OperationRequest, panel_operations_request
from provisioning.models import (
    OPEN_OPERATION_STATUSES,
    DriftItem,
    DriftKind,
    PanelOperation,
    PanelOperationKind,
    PanelOperationStatus,
)
from servers.services import PanelServerLink, deployments_relink_panel_servers

K = DriftKind
# The panel operation of each deployment repair (orphans: by their kind, `_operation_request`).
_OPERATION_KIND = {
    REPAIR_SUSPENSION: PanelOperationKind.REAPPLY_SUSPENSION,
    REPAIR_BUILD: PanelOperationKind.REAPPLY_BUILD,
}


@dataclass
class RepairRequestResult:
    requested: int = 0  # new panel operations
    adopted: int = 0  # orphan servers linked to their deployment (database only)
    already_open: int = 0  # a repair operation was open already
    not_repairable: int = 0  # kinds staff must handle (missing server, port conflict, review)
    not_enabled: int = 0  # repairable, but not among the allowed repairs


def drift_repairs_request(
    *,
    items: Iterable[DriftItem],
    actor: Actor,
    allowed: Iterable[str] | None = None,
    reason: str = "",
) -> RepairRequestResult:
    """Request the repair of each open item: a panel operation (re-apply suspension, re-apply
    build, delete an orphan server or user), or for an adoptable orphan server a database-only
    link to its deployment. `allowed` limits the repairs (RECONCILE_REPAIRS names; None = every
    repair, for staff who chose the items). Constant statements per FLEET_BATCH_SIZE items."""
    allowed_set = set(REPAIR_NAMES if allowed is None else allowed)
    result = RepairRequestResult()
    for chunk in chunked((i for i in items if i.is_open), fleet_batch_size()):
        _repair_chunk(chunk, actor=actor, allowed=allowed_set, reason=reason, result=result)
    return result


def _repair_chunk(
    chunk: list[DriftItem],
    *,
    actor: Actor,
    allowed: set[str],
    reason: str,
    result: RepairRequestResult,
) -> None:
    open_operations = set(
        PanelOperation.objects.filter(
            pk__in=[i.repair_operation_id for i in chunk if i.repair_operation_id],
            status__in=OPEN_OPERATION_STATUSES,
        ).values_list("pk", flat=True)
    )
    requests: list[OperationRequest] = []
    requested_items: list[DriftItem] = []
    adoptions: list[DriftItem] = []
    planned: set[tuple[str, int | None]] = set()
    for item in chunk:
        repair = repair_for(kind=item.kind, details=item.details)
        if not repair:
            result.not_repairable += 1
            continue
        if repair not in allowed:
            result.not_enabled += 1
            continue
        if item.repair_operation_id in open_operations:
            result.already_open += 1
            continue
        if repair == REPAIR_ADOPT:
            adoptions.append(item)
            continue
        request = _operation_request(item, repair, reason or f"Drift repair: {item}")
        # One open operation per deployment: the first repair wins, the next run does the rest.
        target = (
            ("deployment", request.deployment_id)
            if request.deployment_id
            else (str(request.kind), request.panel_server_id or request.panel_user_id)
        )
        if target in planned:
            continue
        planned.add(target)
        requests.append(request)
        requested_items.append(item)
    if adoptions:
        result.adopted += _adopt(adoptions, actor=actor)
    if requests:
        with transaction.atomic():
            result.requested += panel_operations_request(requests=requests, actor=actor)
            _link_operations(requested_items)


def _operation_request(item: DriftItem, repair: str, reason: str) -> OperationRequest:
    params = {"drift_kind": item.kind, "drift_item_id": item.pk}
    if repair in _OPERATION_KIND:
        return OperationRequest(
            kind=_OPERATION_KIND[repair],
            reason=reason[:1000],
            deployment_id=item.deployment_id,
            params=params,
        )
    external_id = str(item.details.get("external_id", ""))
    if item.kind == K.ORPHAN_SERVER:
        # Orphan operations target the panel object, never the deployment its external id names
        # (that deployment's own operations must not wait behind, or be confused with, this).
        return OperationRequest(
            kind=PanelOperationKind.DELETE_ORPHAN_SERVER,
            reason=reason[:1000],
            panel_server_id=item.panel_server_id,
            params={**params, "external_id": external_id},
        )
    return OperationRequest(
        kind=PanelOperationKind.DELETE_ORPHAN_USER,
        reason=reason[:1000],
        panel_user_id=item.panel_user_id,
        params={**params, "external_id": external_id},
    )


def _link_operations(chunk: list[DriftItem]) -> None:
    """Point each item at its open repair operation: one UPDATE per operation kind. An item
    whose operation could not be inserted (another operation of that server is open) keeps its
    previous link."""
    ids_by_kind: dict[str, list[int]] = defaultdict(list)
    for item in chunk:
        ids_by_kind[item.kind].append(item.pk)
    opened = PanelOperation.objects.filter(status__in=OPEN_OPERATION_STATUSES)
    deployment_kinds = {
        PanelOperationKind.REAPPLY_SUSPENSION: SUSPENSION_KINDS,
        PanelOperationKind.REAPPLY_BUILD: (K.LIMITS_MISMATCH,),
    }
    for operation_kind, kinds in deployment_kinds.items():
        ids = [pk for kind in kinds for pk in ids_by_kind.get(kind, [])]
        if ids:
            DriftItem.objects.filter(pk__in=ids).update(
                repair_operation=Coalesce(
                    Subquery(
                        opened.filter(
                            kind=operation_kind, deployment_id=OuterRef("deployment_id")
                        ).values("pk")[:1]
                    ),
                    F("repair_operation"),
                )
            )
    orphan_targets = (
        (K.ORPHAN_SERVER, PanelOperationKind.DELETE_ORPHAN_SERVER, "panel_server_id"),
        (K.ORPHAN_USER, PanelOperationKind.DELETE_ORPHAN_USER, "panel_user_id"),
    )
    for kind, operation_kind, column in orphan_targets:
        ids = ids_by_kind.get(kind, [])
        if ids:
            DriftItem.objects.filter(pk__in=ids).update(
                repair_operation=Coalesce(
                    Subquery(
                        opened.filter(
                            kind=operation_kind,
                            deployment__isnull=True,
                            **{column: OuterRef(column)},
                        ).values("pk")[:1]
                    ),
                    F("repair_operation"),
                )
            )


def _adopt(items: list[DriftItem], *, actor: Actor) -> int:
    """Link orphan servers to the live deployments whose external id they carry, when the
    server recorded for that deployment is gone from the panel (re-created by hand, restored
    from a backup). Database only, through servers' relink service (compare-and-set on the
    recorded id, a history row on each deployment)."""
    links = []
    for item in items:
        if not item.deployment_id:
            continue
        details = item.details
        port = details.get("port")
        links.append(
            PanelServerLink(
                deployment_id=item.deployment_id,
                recorded_panel_server_id=details.get("recorded_panel_server_id"),
                panel_server_id=item.panel_server_id,
                uuid=str(details.get("uuid", "")),
                identifier=str(details.get("identifier", "")),
                ip_address=str(details.get("ip") or ""),
                port=int(port) if details.get("ip") and port else None,
                reason=f"Drift repaired: adopted panel server #{item.panel_server_id} "
                f"(external id {details.get('external_id')}) in place of missing "
                f"#{details.get('recorded_panel_server_id')}",
            )
        )
    now = timezone.now()
    with transaction.atomic():
        linked = deployments_relink_panel_servers(links=links, actor=actor)
        if not linked:
            return 0
        DriftItem.objects.filter(
            open_items_q(), deployment_id__in=linked, kind=K.ORPHAN_SERVER
        ).filter(pk__in=[i.pk for i in items]).update(
            resolved_at=now,
            resolution="adopted: linked to its deployment (database only)",
            resolved_by=actor.label[:200],
        )
        # The server recorded before is gone: its "missing" item (if any) is answered too.
        DriftItem.objects.filter(
            open_items_q(), kind=K.MISSING_ON_PANEL, deployment_id__in=linked
        ).update(
            resolved_at=now,
            resolution="adopted: the deployment's panel server was found by external id",
            resolved_by=actor.label[:200],
        )
    return len(linked)


def drift_items_for_automatic_repair(*, seen_at: datetime, allowed: Iterable[str]) -> Any:
    """Open items refreshed by the read at `seen_at` whose repair the operator enabled, except
    those whose last repair failed or did not hold (staff look at those; the job does not
    request the same failing operation every hour)."""
    allowed = set(allowed)
    kinds: set[str] = set()
    scope = Q(pk__in=[])
    if REPAIR_SUSPENSION in allowed:
        kinds |= set(SUSPENSION_KINDS)
    if REPAIR_BUILD in allowed:
        kinds.add(K.LIMITS_MISMATCH)
    if kinds:
        scope |= Q(kind__in=kinds)
    for repair, name in ((REPAIR_ADOPT, "adopt"), (REPAIR_DELETE, "delete")):
        if repair in allowed:
            scope |= Q(kind__in=ORPHAN_KINDS, details__repair=name)
    return (
        DriftItem.objects.filter(open_items_q(), scope, last_seen_at__gte=seen_at)
        .exclude(repair_operation__status=PanelOperationStatus.FAILED)
        .exclude(repair_operation__verified=False)
        .order_by("pk")
    )
