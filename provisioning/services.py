"""Provisioning services: the hand-off from billing, starting and steering saga runs."""

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.actors import Actor
from common.errors import ConflictError, NotFoundError
from provisioning import listeners, notify
from provisioning.errors import ProvisioningErrorCode as Code
from provisioning.models import (
    ACTIVE_RUN_STATUSES,
    FAILED_RUN_STATUSES,
    PROVISIONING_REQUEST_STATES,
    AllocationClaim,
    ProvisioningRequest,
    ProvisioningRequestStatus,
    ProvisioningRun,
    RunStatus,
    run_move,
)
from provisioning.saga import engine
from provisioning.saga.steps import STEP_NAMES
from servers.models import Deployment, DeploymentStatus
from servers.services import deployment_transition

logger = logging.getLogger(__name__)


def provisioning_request_create(
    *, deployment_id: int, order_reference: str, actor: Actor
) -> ProvisioningRequest:
    """Record that this deployment must be provisioned, and start the saga when enabled.

    At most one request per deployment: uniqueness is the database's job (one-to-one on
    deployment, INSERT .. ON CONFLICT DO NOTHING), so a duplicate webhook or a second
    confirmation racing this one adds nothing. Call it inside the confirming transaction: the
    request commits or rolls back with it, and the first step is queued only after commit.
    """
    automatic = settings.PROVISIONING_ENABLED
    with transaction.atomic():
        ProvisioningRequest.objects.bulk_create(
            [
                ProvisioningRequest(
                    deployment_id=deployment_id,
                    order_reference=order_reference,
                    requested_by=actor.label,
                    automatic=automatic,
                )
            ],
            ignore_conflicts=True,
        )
        request = ProvisioningRequest.objects.select_for_update().get(deployment_id=deployment_id)
        if request.events.exists():
            return request
        # The new row is pending: its first history row goes from nothing to pending.
        PROVISIONING_REQUEST_STATES.record_created(
            request,
            actor=actor,
            reason=(
                f"{order_reference} confirmed"
                if automatic
                else f"{order_reference} confirmed; PROVISIONING_ENABLED is off, waiting "
                "for manual provisioning"
            ),
        )
        if automatic and _active_run_count() < settings.PROVISIONING_QUEUE_SIZE:
            provisioning_start(request_id=request.pk, actor=actor)
    logger.info(
        "provisioning requested for deployment %s (%s), automatic=%s",
        deployment_id,
        order_reference,
        automatic,
    )
    return request


def _active_run_count() -> int:
    """Runs holding a queue slot: a run waiting for capacity does not (it makes no requests
    until room appears, and must not keep orders for other locations waiting)."""
    return ProvisioningRun.objects.filter(
        status__in=ACTIVE_RUN_STATUSES, waiting_for_capacity_since__isnull=True
    ).count()


def provisioning_start(*, request_id: int, actor: Actor, from_step: int = 0) -> ProvisioningRun:
    """Start a run for the request (idempotent: an active run is returned as it is).

    The partial unique index on (deployment) for active runs makes two concurrent starts
    produce one run, whatever the callers checked before.
    """
    if not 0 <= from_step < len(STEP_NAMES):
        raise ConflictError(f"There is no step {from_step}.", code=Code.INVALID_STEP)
    with transaction.atomic():
        request = ProvisioningRequest.objects.select_for_update().get(pk=request_id)
        active = ProvisioningRun.objects.filter(
            deployment_id=request.deployment_id, status__in=ACTIVE_RUN_STATUSES
        ).first()
        if active is not None:
            return active
        if request.status in (
            ProvisioningRequestStatus.SUCCEEDED,
            ProvisioningRequestStatus.CANCELLED,
        ):
            raise ConflictError(
                f"Provisioning of {request.order_reference} is {request.status}; nothing to start.",
                code=Code.PROVISIONING_FINISHED,
            )
        inherited = _outputs_to_resume(request.deployment_id, from_step)
        now = timezone.now()
        try:
            with transaction.atomic():
                run = ProvisioningRun.objects.create(
                    request=request,
                    deployment_id=request.deployment_id,
                    status=RunStatus.RUNNING,
                    step_index=from_step,
                    started_at=now,
                    deadline_at=now + dt.timedelta(seconds=settings.PROVISIONING_TIMEOUT),
                    next_run_at=now,
                    triggered_by=actor.label,
                    **inherited,
                )
        except IntegrityError:
            return ProvisioningRun.objects.get(
                deployment_id=request.deployment_id, status__in=ACTIVE_RUN_STATUSES
            )
        if from_step:
            # The ports the stuck run holds move to the new run with everything else it made.
            AllocationClaim.objects.filter(deployment_id=request.deployment_id).update(run=run)
        PROVISIONING_REQUEST_STATES.move(
            request,
            ProvisioningRequestStatus.IN_PROGRESS,
            actor=actor,
            reason=f"Run #{run.pk} started"
            + (f" from step {STEP_NAMES[from_step]}" if from_step else ""),
        )
        deployment = Deployment.objects.get(pk=request.deployment_id)
        if deployment.status != DeploymentStatus.PROVISIONING:
            deployment_transition(
                deployment_id=deployment.pk,
                to_status=DeploymentStatus.PROVISIONING,
                actor=actor,
                reason=f"Provisioning run #{run.pk} started",
            )
        listeners.notify_started(deployment_id=request.deployment_id, actor=actor)
        notify.notify_provisioning_started(run)
        engine.schedule(run.pk)
    return run


# What a run records as it goes; a run resumed from a later step starts from these.
_RESUMABLE_FIELDS = (
    "panel_user_id",
    "panel_user_created",
    "server_payload",
    "node_id",
    "reserved_memory_mb",
    "reserved_disk_mb",
    "placement_reason",
    "panel_server_id",
    "panel_server_uuid",
    "panel_identifier",
    "server_created_at",
)


def _outputs_to_resume(deployment_id: int, from_step: int) -> dict:
    """For a start from a later step: the outputs of the run that stopped half way.

    Only a run left in "needs attention" still has what it created (a failed run was rolled
    back), so only it can be resumed; the outputs move over (the old run keeps its history).
    """
    if from_step == 0:
        return {}
    previous = ProvisioningRun.objects.filter(deployment_id=deployment_id).order_by("-pk").first()
    if previous is None or previous.status != RunStatus.NEEDS_ATTENTION:
        raise ConflictError(
            "Only a run left in 'needs attention' can be resumed from a later step; the last run "
            "was rolled back, so start again from the first step.",
            code=Code.CANNOT_RESUME,
        )
    outputs = {name: getattr(previous, name) for name in _RESUMABLE_FIELDS}
    ProvisioningRun.objects.filter(pk=previous.pk).update(
        panel_server_id=None, reserved_memory_mb=0, reserved_disk_mb=0
    )
    return outputs


def provisioning_retry(*, deployment_id: int, actor: Actor, from_step: int = 0) -> ProvisioningRun:
    """Staff: start again after a failure (a new run; the failed one stays in the history)."""
    request = ProvisioningRequest.objects.filter(deployment_id=deployment_id).first()
    if request is None:
        raise ConflictError(
            "This deployment was never handed to provisioning.", code=Code.NO_REQUEST
        )
    if request.status == ProvisioningRequestStatus.SUCCEEDED:
        raise ConflictError("This server is already provisioned.", code=Code.PROVISIONING_FINISHED)
    last = ProvisioningRun.objects.filter(deployment_id=deployment_id).order_by("-pk").first()
    if from_step == 0 and last is not None and last.status == RunStatus.NEEDS_ATTENTION:
        raise ConflictError(
            f"Run #{last.pk} still holds what it created (its rollback did not finish): roll it "
            "back again, or resume it from a later step.",
            code=Code.NEEDS_ATTENTION,
        )
    return provisioning_start(request_id=request.pk, actor=actor, from_step=from_step)


def provisioning_abort(*, run_id: int, actor: Actor, reason: str) -> ProvisioningRun:
    """Staff: stop a run and undo what it created (compensation), or retry a stuck rollback."""
    with transaction.atomic():
        run = ProvisioningRun.objects.select_for_update().get(pk=run_id)
        if (
            run.status == RunStatus.RUNNING
            and run.lease_expires_at
            and run.lease_expires_at > timezone.now()
        ):
            # A worker is inside a step (maybe creating the server): let it record what it made,
            # then roll back. Its finalize sees the flag; if it died, the sweeper resumes it.
            run.abort_requested = True
            run.last_error = f"rollback requested by {actor.label}: {reason}"
            run.save(update_fields=["abort_requested", "last_error", "updated_at"])
            return run
        if run.status not in (RunStatus.RUNNING, RunStatus.COMPENSATING, RunStatus.NEEDS_ATTENTION):
            raise ConflictError(
                f"Run #{run.pk} is {run.status}; nothing to undo.", code=Code.RUN_FINISHED
            )
        if run.status != RunStatus.COMPENSATING:
            run.compensate_index = min(run.step_index, len(STEP_NAMES) - 1)
            run_move(run, RunStatus.COMPENSATING)
        run.fence += 1  # a worker still inside a step can no longer write its result
        run.lease_expires_at = None
        run.next_run_at = timezone.now()
        run.attempt = 0
        run.finished_at = None
        run.last_error = f"{run.last_error} | rollback requested by {actor.label}: {reason}".strip(
            " |"
        )
        run.save()
        engine.schedule(run.pk)
    return run


def provisioning_start_queued(*, actor: Actor | None = None) -> int:
    """Start waiting automatic requests, oldest first, while fewer than
    PROVISIONING_QUEUE_SIZE runs are active. Returns how many started."""
    room = settings.PROVISIONING_QUEUE_SIZE - _active_run_count()
    if room <= 0:
        return 0
    waiting = ProvisioningRequest.objects.filter(
        status=ProvisioningRequestStatus.PENDING, automatic=True
    ).order_by("created_at")[:room]
    started = 0
    for request in waiting:
        try:
            provisioning_start(request_id=request.pk, actor=actor or Actor.system("queue"))
            started += 1
        except ConflictError:
            continue
    return started


def provisioning_sweep(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Resume interrupted runs and start queued requests. Safe to run twice or concurrently."""
    now = now or timezone.now()
    lost_after = dt.timedelta(seconds=settings.PROVISIONING_SWEEP_GRACE)
    expired = list(
        ProvisioningRun.objects.filter(
            status__in=ACTIVE_RUN_STATUSES, lease_expires_at__lt=now
        ).values_list("pk", flat=True)
    )
    lost = list(
        ProvisioningRun.objects.filter(
            status__in=ACTIVE_RUN_STATUSES,
            lease_expires_at__isnull=True,
            next_run_at__lt=now - lost_after,
        ).values_list("pk", flat=True)
    )
    lease = dt.timedelta(seconds=engine.lease_seconds())
    longest = dt.timedelta(seconds=2 * settings.PROVISIONING_TIMEOUT)
    for run_id in expired:
        # Clear the dead worker's lease so the next claim can take the step (fence + 1 there).
        # next_run_at stays set: if this resume message is lost too, the next sweep finds the
        # run again as "lost". The time since the dead worker last renewed its lease is given
        # back to the run's PROVISIONING_TIMEOUT (a run killed late is not rolled back for
        # it), up to twice the timeout from its start, so a run that keeps killing workers
        # still ends.
        row = (
            ProvisioningRun.objects.filter(pk=run_id, lease_expires_at__lt=now)
            .values("lease_expires_at", "deadline_at", "started_at")
            .first()
        )
        # Gone, or resumed meanwhile (a lease the filter matched is never None: for the types).
        if row is None or row["lease_expires_at"] is None:
            continue
        lost_time = timezone.now() - (row["lease_expires_at"] - lease)
        # Never earlier than it was: a run that waited for capacity had its deadline restarted.
        deadline = max(
            row["deadline_at"],
            min(row["deadline_at"] + lost_time, row["started_at"] + longest),
        )
        resumed = ProvisioningRun.objects.filter(
            pk=run_id, lease_expires_at=row["lease_expires_at"]
        ).update(lease_expires_at=None, next_run_at=timezone.now(), deadline_at=deadline)
        if resumed:
            logger.warning(
                "provisioning run %s: its worker died; resumed, deadline moved by %s s",
                run_id,
                int((deadline - row["deadline_at"]).total_seconds()),
            )
    for run_id in expired + lost:
        with transaction.atomic():
            engine.schedule(run_id)
    started = provisioning_start_queued(actor=Actor.system("sweeper"))
    if expired or lost or started:
        logger.info(
            "provisioning sweep: %s expired leases, %s lost messages, %s queued requests started",
            len(expired),
            len(lost),
            started,
        )
    return {"expired": len(expired), "lost": len(lost), "started": started}


@dataclass(frozen=True)
class QueuedProvisioning:
    """What POST provision found or did: the run (None while the request waits for a queue
    slot) and whether this call started it."""

    request: ProvisioningRequest
    run: ProvisioningRun | None
    started: bool


def provisioning_queue(
    *, deployment_id: int, order_reference: str, actor: Actor
) -> QueuedProvisioning:
    """Staff: provision a paid order's deployment now. Idempotent: an active or succeeded run
    is returned as it is (never a second server); a pending request (automatic provisioning
    off, or the queue full) is started; a failed one is retried from the first step.

    The caller (billing, which knows orders) checks the order is paid; the request is created
    here as billing's confirmation would if it is missing, which INSERT .. ON CONFLICT makes
    harmless when it exists."""
    request = provisioning_request_create(
        deployment_id=deployment_id, order_reference=order_reference, actor=actor
    )
    request.refresh_from_db()
    runs = ProvisioningRun.objects.filter(deployment_id=deployment_id)
    existing = (
        runs.filter(status__in=ACTIVE_RUN_STATUSES).first()
        or runs.filter(status=RunStatus.SUCCEEDED).order_by("-pk").first()
    )
    if existing is not None:
        return QueuedProvisioning(request=request, run=existing, started=False)
    if request.status == ProvisioningRequestStatus.CANCELLED:
        raise ConflictError(
            f"Provisioning of {request.order_reference} was cancelled; nothing to start.",
            code=Code.PROVISIONING_FINISHED,
        )
    if request.status == ProvisioningRequestStatus.SUCCEEDED:
        # Linked by hand (no run): the server exists.
        return QueuedProvisioning(request=request, run=None, started=False)
    before = runs.order_by("-pk").values_list("pk", flat=True).first()
    if request.status == ProvisioningRequestStatus.FAILED:
        run = provisioning_retry(deployment_id=deployment_id, actor=actor)
    else:
        run = provisioning_start(request_id=request.pk, actor=actor)
    request.refresh_from_db()
    return QueuedProvisioning(request=request, run=run, started=run.pk != before)


def provisioning_retry_run(*, run_id: int, actor: Actor, from_step: int = 0) -> ProvisioningRun:
    """Staff: retry the deployment of this run (a new run; this one stays in the history).
    Only the deployment's latest run, and only once it failed, can be retried."""
    run = ProvisioningRun.objects.filter(pk=run_id).first()
    if run is None:
        raise NotFoundError(f"There is no provisioning run #{run_id}.")
    if run.status not in FAILED_RUN_STATUSES:
        raise ConflictError(
            f"Run #{run.pk} is {run.get_status_display().lower()}; only a failed run can be "
            "retried.",
            code=Code.NOT_RETRYABLE,
        )
    latest = (
        ProvisioningRun.objects.filter(deployment_id=run.deployment_id)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    if latest != run.pk:
        raise ConflictError(
            f"Run #{run.pk} was already retried (run #{latest} is newer).",
            code=Code.NOT_RETRYABLE,
        )
    return provisioning_retry(deployment_id=run.deployment_id, actor=actor, from_step=from_step)


def provisioning_runs_dismiss(*, actor: Actor, run_ids: list[int] | None = None) -> int:
    """Staff: take failed runs off the failed list (all of them, or those of `run_ids`); the
    runs and their steps stay. One UPDATE; a run dismissed already is not counted again.
    Returns how many were dismissed."""
    runs = ProvisioningRun.objects.filter(status__in=FAILED_RUN_STATUSES, dismissed_at__isnull=True)
    if run_ids is not None:
        runs = runs.filter(pk__in=run_ids)
    dismissed = runs.update(
        dismissed_at=timezone.now(), dismissed_by=actor.label[:200], updated_at=timezone.now()
    )
    if dismissed:
        logger.info("%s failed provisioning runs dismissed by %s", dismissed, actor.label)
    return dismissed
