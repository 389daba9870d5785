"""Pending panel operations: requested in sets by the fleet jobs, worked off by a drain task.

A job decides "suspend these 10,000 servers" with one INSERT .. ON CONFLICT DO NOTHING: the
partial unique index (one open operation per server) makes a re-run insert nothing and enqueue
nothing. The drain (`panel_operations_drain`) claims due rows in priority order with
SKIP LOCKED, runs each one's panel call with no transaction open, reads the panel state back
(verified or drift), and records the outcome on the row; retryable failures come back later
with backoff, and an operation that keeps failing alerts staff once.
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.db import transaction
from django.utils import timezone

from common.actors import Actor
from provisioning.models import (
    OPEN_OPERATION_STATUSES,
    OPERATION_PRIORITY,
    PanelOperation,
    PanelOperationKind,
)


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
    *, requests: Iterable[OperationRequest], actor: Actor, not_before: dt.datetime | None = None
) -> int:
    """Insert the operations that are not already open; returns how many were new.

    A constant number of statements whatever the count (bulk INSERT .. ON CONFLICT DO NOTHING
    against the one-open-operation constraints), so a job may call it with a whole batch.
    """
    now = timezone.now()
    rows = [
        PanelOperation(
            deployment_id=request.deployment_id,
            panel_server_id=request.panel_server_id,
            panel_user_id=request.panel_user_id,
            kind=request.kind,
            priority=OPERATION_PRIORITY.get(request.kind, 50),
            requested_by=actor.label[:200],
            reason=request.reason,
            params=request.params,
            next_attempt_at=not_before or now,
        )
        for request in requests
    ]
    if not rows:
        return 0
    with transaction.atomic():
        PanelOperation.objects.bulk_create(rows, ignore_conflicts=True)
        # ON CONFLICT DO NOTHING returns no ids: count what this call inserted by its stamp.
        created = PanelOperation.objects.filter(
            created_at__gte=now, requested_by=actor.label[:200], status__in=OPEN_OPERATION_STATUSES
        ).count()
    if created:
        from provisioning.tasks import drain_panel_operations

        transaction.on_commit(lambda: drain_panel_operations.delay())
    return created


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


class OperationExecutor(Protocol):
    def __call__(self, *, operation: PanelOperation, client: Any) -> OperationResult: ...


# Executors of operations decided outside provisioning, by params["source"] (billing registers
# "dunning" at startup, as with provisioning.listeners): provisioning never imports billing.
_executors: dict[str, OperationExecutor] = {}


def register_operation_executor(source: str, executor: OperationExecutor) -> None:
    _executors[source] = executor


def operation_executor_for(source: str) -> OperationExecutor | None:
    return _executors.get(source)
