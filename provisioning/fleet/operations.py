"""Pending panel operations: requested in sets by the fleet jobs, worked off by a drain task.

A job decides "suspend these 10,000 servers" with one INSERT .. ON CONFLICT DO NOTHING: the
partial unique index (one open operation per server) makes a re-run insert nothing and enqueue
nothing. The drain (`panel_operations_drain`) claims due rows in priority order with
SKIP LOCKED, runs each one's panel call with no transaction open, reads the panel state back
(verified or drift), and records the outcome on the row; retryable failures come back later
with backoff, and an operation that keeps failing alerts staff once.
"""

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import transaction
from django.utils import timezone

from common.actors import Actor
from common.bulk import copy_insert_ignore_conflicts
from provisioning.models import (
    OPEN_OPERATION_STATUSES,
    OPERATION_PRIORITY,
    PanelOperation,
    PanelOperationKind,
    PanelOperationStatus,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OperationRequest:
    """One wanted panel operation; exactly one of the targets is set."""

    kind: PanelOperationKind
    reason: str
    deployment_id: int | None = None
    panel_server_id: int | None = None
    panel_user_id: int | None = None
    params: dict[str, Any] = field(default_factory=dict)


def panel_operations_request(
    *,
    requests: Iterable[OperationRequest],
    actor: Actor,
    not_before: dt.datetime | None = None,
    supersede: bool = False,
) -> int:
    """Insert the operations that are not already open; returns how many were new.

    A constant number of statements whatever the count (COPY into a staging table, then
    INSERT .. ON CONFLICT DO NOTHING RETURNING against the one-open-operation constraints), so
    a job may call it with a whole batch. `supersede` (a paying customer's unsuspension): a
    less urgent operation still pending on the same server gives way; one already running gets
    this request as its follow-up, requested as soon as it ends.
    """
    requests = list(requests)
    if not requests:
        return 0
    now = timezone.now()
    rows = [
        {
            "deployment_id": request.deployment_id,
            "panel_server_id": request.panel_server_id,
            "panel_user_id": request.panel_user_id,
            "kind": request.kind,
            "priority": OPERATION_PRIORITY.get(request.kind, 50),
            "requested_by": actor.label[:200],
            "reason": request.reason,
            "params": request.params,
            "next_attempt_at": not_before or now,
        }
        for request in requests
    ]
    with transaction.atomic():
        if supersede:
            _supersede(requests, actor=actor, now=now)
        created = copy_insert_ignore_conflicts(PanelOperation, rows, returning="deployment_id")
        if supersede:
            inserted = {deployment_id for _pk, deployment_id in created}
            _follow_up_on_running(
                [r for r in requests if r.deployment_id and r.deployment_id not in inserted]
            )
    if created:
        from provisioning.tasks import drain_panel_operations

        drain_panel_operations.delay_on_commit()
    return len(created)


def _supersede(requests: list[OperationRequest], *, actor: Actor, now: dt.datetime) -> None:
    for request in requests:
        if request.deployment_id is None:
            continue
        PanelOperation.objects.filter(
            deployment_id=request.deployment_id,
            status=PanelOperationStatus.PENDING,
            priority__gt=OPERATION_PRIORITY.get(request.kind, 50),
        ).update(
            status=PanelOperationStatus.SKIPPED,
            outcome=f"superseded by a {request.kind} requested by {actor.label}"[:2000],
            finished_at=now,
            updated_at=now,
        )


def _follow_up_on_running(requests: list[OperationRequest]) -> None:
    """Record each request on the operation running on its server (the drain requests it when
    that one ends), so it is neither dropped nor left to the next hourly job."""
    for request in requests:
        running = (
            PanelOperation.objects.select_for_update()
            .filter(deployment_id=request.deployment_id, status__in=OPEN_OPERATION_STATUSES)
            .first()
        )
        if running is None or running.kind == request.kind:
            continue
        running.params = {
            **running.params,
            "follow_up": {
                "kind": request.kind,
                "reason": request.reason,
                "params": request.params,
            },
        }
        running.save(update_fields=["params", "updated_at"])
        logger.info(
            "panel operation %s requested after operation %s on deployment %s",
            request.kind,
            running.pk,
            request.deployment_id,
        )


def follow_up_of(operation_id: int) -> OperationRequest | None:
    """The request recorded on an operation while it was running (see `supersede`)."""
    row = PanelOperation.objects.filter(pk=operation_id).values("params", "deployment_id").first()
    wanted = ((row or {}).get("params") or {}).get("follow_up")
    if not wanted:
        return None
    return OperationRequest(
        kind=wanted["kind"],
        reason=wanted["reason"],
        deployment_id=row["deployment_id"],
        params=wanted.get("params", {}),
    )


@dataclass(frozen=True)
class OperationResult:
    """What one panel operation did, as its executor reports it to the drain.

    Executors raise the panel client's errors (provisioning.pterodactyl.PanelError): the drain
    retries `retryable` ones with backoff and fails the others (staff alerted once).
    """

    outcome: str
    # The panel state read back after the action: True as intended, False not (a drift item is
    # raised by the executor), None when nothing was read back (e.g. skipped).
    verified: bool | None = None
    # Checked again when its turn came and no longer wanted: nothing was sent to the panel.
    skipped: bool = False
    # A terminal failure the executor already reported to staff (no second alert).
    failed: bool = False
    # Work that became necessary meanwhile (e.g. paid during a pending termination: unsuspend),
    # requested once this operation is closed.
    follow_up: OperationRequest | None = None
    # Not done yet, nothing wrong (e.g. a termination waiting for the panel's final backup):
    # the operation stays open and comes back after this many seconds, attempts not spent.
    retry_in: float | None = None


class OperationExecutor(Protocol):
    def __call__(self, *, operation: PanelOperation, client: Any) -> OperationResult: ...


# Executors of operations decided outside provisioning, by params["source"] (billing registers
# "dunning" at startup, as with provisioning.listeners): provisioning never imports billing.
_executors: dict[str, OperationExecutor] = {}


def register_operation_executor(source: str, executor: OperationExecutor) -> None:
    _executors[source] = executor


def operation_executor_for(source: str) -> OperationExecutor | None:
    return _executors.get(source)
