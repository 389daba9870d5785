"""The drain: works pending panel operations off, most urgent first, inside their budget.

Each operation is claimed in a short transaction (SKIP LOCKED, a lease), its panel calls run
with no transaction open, and the outcome is written back. The operations draw on the fleet
share of the panel budget (PANEL_OPERATIONS_RATE_LIMIT_PER_MINUTE, provisioning.fleet.budget), and
take twice the share per call while provisioning runs are in flight, so a backlog of 10,000
suspensions never slows a customer's new server. Workers never sleep: when
the share is used up the drain hands over to a task scheduled for when it is free again.

A worker killed mid-operation leaves a lease that expires; the next drain claims the row again
and its executor checks the server's state first, so nothing is done twice.
"""

import logging
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from common.actors import Actor
from common.errors import ApplicationError
from common.jobs import job_lock
from common.logging import redact
from notifications.services import notification_send
from provisioning.errors import ProvisioningErrorCode as Code
from provisioning.fleet.budget import operations_share_limiter
from provisioning.fleet.operations import (
    OperationResult,
    follow_up_of,
    operation_executor_for,
    panel_operations_request,
)
from provisioning.models import (
    ACTIVE_RUN_STATUSES,
    PanelOperation,
    PanelOperationKind,
    PanelOperationStatus,
    ProvisioningRequest,
    ProvisioningRequestStatus,
    ProvisioningRun,
)
from provisioning.pterodactyl import PanelError, PanelRateLimited, PterodactylClient
from servers.health import (
    health_incident_panel_close,
    health_incident_panel_is_open,
    health_incident_panel_open,
    health_incidents_alert,
)
from servers.models import HealthIncidentKind

logger = logging.getLogger(__name__)

S = PanelOperationStatus
K = PanelOperationKind
# Application-API requests an operation makes (action + read-back; terminate may remove the
# panel user too). Its share of the budget is taken before it starts.
CALLS_PER_OPERATION = {
    K.SUSPEND: 2,
    K.UNSUSPEND: 2,
    K.TERMINATE: 3,
    K.RESTART: 1,
    K.REAPPLY_SUSPENSION: 3,
    K.REAPPLY_BUILD: 3,
    K.DELETE_ORPHAN_SERVER: 3,
    K.DELETE_ORPHAN_USER: 3,
}
# Above the worst case of one operation (3 calls, each up to 30 s read timeout with retries).
LEASE_SECONDS = 600
# Retryable failures in a row that open the circuit, and how often a probe tests the panel.
CIRCUIT_FAILURES = 3
PROBE_SECONDS = 60
CIRCUIT = HealthIncidentKind.PANEL_OPERATIONS_FAILING
ATTEMPT_LOG_LENGTH = 10


@dataclass(frozen=True)
class _Failure:
    message: str
    retryable: bool
    retry_after: float | None = None
    # A 429 or our own budget: says nothing about the panel's health.
    throttled: bool = False


def _operations_limiter() -> Any:
    """The operations' share, taken without waiting (the drain hands over instead)."""
    return operations_share_limiter()


def _provisioning_busy() -> bool:
    """A customer is waiting for a new server: provisioning comes first."""
    return (
        ProvisioningRun.objects.filter(status__in=ACTIVE_RUN_STATUSES).exists()
        or ProvisioningRequest.objects.filter(status=ProvisioningRequestStatus.PENDING).exists()
    )


def _take_budget(limiter: Any, calls: int) -> float:
    """Take `calls` slots; 0 when all were taken, else the seconds to wait for the rest."""
    for _ in range(calls):
        wait = limiter.try_acquire()
        if wait > 0:
            return wait
    return 0.0


def panel_operations_drain(*, max_seconds: float | None = None) -> dict[str, int]:
    """Run due operations until none is left, the time is up or the budget is used up.

    One drain at a time (a lock, like the jobs'): a second one returns at once, so beat, the
    requests' own kicks and hand-overs never pile up. While the panel keeps failing (the
    circuit, one panel-wide incident) operations are put back without spending an attempt and
    one probe a minute tests the panel, so an outage neither burns every retry nor floods staff.
    """
    with job_lock("panel-operations-drain", lease_seconds=LEASE_SECONDS) as held:
        if not held:
            return {"another_drain_running": 1}
        return _drain(max_seconds=max_seconds)


def _drain(*, max_seconds: float | None) -> dict[str, int]:
    budget_seconds = settings.PANEL_OPERATIONS_DRAIN_SECONDS if max_seconds is None else max_seconds
    deadline = time.monotonic() + budget_seconds
    counts: Counter[str] = Counter()
    limiter = _operations_limiter()
    busy = _provisioning_busy()
    circuit_open = health_incident_panel_is_open(kind=CIRCUIT)
    # Operations (distinct ones: one retried at once is one server's trouble) that failed in
    # a row with retryable errors.
    failing: set[int] = set()
    client: PterodactylClient | None = None
    while True:
        operation = _claim()
        if operation is None:
            break
        wait = _take_budget(
            limiter, CALLS_PER_OPERATION.get(operation.kind, 2) * (2 if busy else 1)
        )
        if wait > 0:
            _release(operation, wait)
            _hand_over(countdown=wait)
            counts["deferred_for_budget"] += 1
            break
        if client is None:
            try:
                client = PterodactylClient.for_workers()
            except ImproperlyConfigured as exc:
                _release(operation, 60)
                logger.error("panel operations wait: %s", exc)
                counts["panel_not_configured"] += 1
                break
        outcome, failure = _execute(operation, client, spend_attempt=not circuit_open)
        if failure is not None and failure.retryable and not failure.throttled:
            failing.add(operation.pk)
            if circuit_open or len(failing) >= CIRCUIT_FAILURES:
                if circuit_open:
                    counts["probe_failed"] += 1
                else:
                    _circuit_open(failure.message)
                    counts["circuit_opened"] += 1
                _hand_over(countdown=PROBE_SECONDS)
                counts[outcome] += 1
                break
        elif failure is None:
            failing.clear()
            if circuit_open:
                health_incident_panel_close(kind=CIRCUIT, now=timezone.now())
                circuit_open = False
                counts["circuit_closed"] += 1
        counts[outcome] += 1
        # At least one operation a task, so a short deadline still makes progress.
        if time.monotonic() >= deadline:
            _hand_over(countdown=0)
            counts["handed_over"] += 1
            break
    return dict(counts)


def _circuit_open(message: str) -> None:
    """One panel-wide incident (alerted once) while operations keep failing."""
    now = timezone.now()
    health_incident_panel_open(
        kind=CIRCUIT,
        detail=f"{CIRCUIT_FAILURES} panel operations in a row failed with retryable errors "
        f"(last: {redact(message)[:500]}); operations are paused and retried once a minute "
        "without spending their attempts.",
        now=now,
    )
    health_incidents_alert(now=now)


def _claim() -> PanelOperation | None:
    """The most urgent due operation, or one whose worker died (lease run out). Two indexed
    queries (the pending index, then the running-lease index), not one OR over the table."""
    now = timezone.now()
    with transaction.atomic():
        operation = (
            PanelOperation.objects.select_for_update(skip_locked=True)
            .filter(status=S.PENDING, next_attempt_at__lte=now)
            .order_by("priority", "next_attempt_at", "pk")
            .first()
        ) or (
            PanelOperation.objects.select_for_update(skip_locked=True)
            .filter(status=S.RUNNING, lease_expires_at__lt=now)
            .order_by("lease_expires_at", "pk")
            .first()
        )
        if operation is None:
            return None
        operation.status = S.RUNNING
        operation.attempts += 1
        operation.lease_expires_at = now + timedelta(seconds=LEASE_SECONDS)
        operation.started_at = operation.started_at or now
        operation.save(
            update_fields=["status", "attempts", "lease_expires_at", "started_at", "updated_at"]
        )
    return operation


def _ours(operation: PanelOperation):
    """The row while this drain's claim holds: a worker whose lease ran out (and whose row was
    claimed again) writes nothing."""
    return PanelOperation.objects.filter(
        pk=operation.pk, status=S.RUNNING, attempts=operation.attempts
    )


def _release(operation: PanelOperation, wait: float) -> None:
    """Give a claimed operation back without spending an attempt (budget, circuit)."""
    _ours(operation).update(
        status=S.PENDING,
        attempts=max(0, operation.attempts - 1),
        lease_expires_at=None,
        next_attempt_at=timezone.now() + timedelta(seconds=wait),
        updated_at=timezone.now(),
    )


def _hand_over(*, countdown: float) -> None:
    """Continue in a fresh task (no worker holds on to a long drain, none sleeps)."""
    from celery import current_app

    from provisioning.tasks import drain_panel_operations

    if current_app.conf.task_always_eager:
        return  # eager mode runs countdowns at once: beat's next drain continues instead
    drain_panel_operations.apply_async(countdown=max(0.0, countdown))


def _execute(
    operation: PanelOperation, client: PterodactylClient, *, spend_attempt: bool = True
) -> tuple[str, _Failure | None]:
    """Run one claimed operation and record its outcome: (counter name, failure or None)."""
    try:
        result = _dispatch(operation, client)
    except SoftTimeLimitExceeded:
        # The task's time is up inside a panel call: the call may or may not have landed, so
        # this is a retry (executors check the state first), and the task ends here.
        _fail(operation, _Failure("the drain task's time limit was reached", True))
        raise
    except PanelRateLimited as exc:
        failure = _Failure(str(exc), True, getattr(exc, "retry_after", None), throttled=True)
    except PanelError as exc:
        failure = _Failure(str(exc), exc.retryable)
    except ApplicationError as exc:
        cause = exc.__cause__
        retryable = isinstance(cause, PanelError) and cause.retryable
        throttled = isinstance(cause, PanelRateLimited)
        failure = _Failure(exc.message, retryable, throttled=throttled)
    except Exception as exc:  # a defect: record it, tell staff, never loop on it
        logger.exception("panel operation %s failed unexpectedly", operation.pk)
        failure = _Failure(f"{type(exc).__name__}: {exc}", False)
    else:
        if result.retry_in is not None:
            _wait(operation, result)
            return "waiting", None
        _finish(operation, result)
        name = "skipped" if result.skipped else ("failed" if result.failed else "succeeded")
        return name, None
    if failure.retryable and not spend_attempt and not failure.throttled:
        _release(operation, PROBE_SECONDS)  # the circuit is open: this was a probe
        return "paused", failure
    return _fail(operation, failure), failure


def _dispatch(operation: PanelOperation, client: PterodactylClient) -> OperationResult:
    source = operation.params.get("source", "")
    executor = operation_executor_for(source) if source else None
    if executor is not None:
        return executor(operation=operation, client=client)
    if operation.kind in (
        K.REAPPLY_SUSPENSION,
        K.REAPPLY_BUILD,
        K.DELETE_ORPHAN_SERVER,
        K.DELETE_ORPHAN_USER,
    ):
        from provisioning.fleet.repairs import repair_execute

        return repair_execute(operation=operation, client=client)
    return _lifecycle_execute(operation, client)


def _lifecycle_execute(operation: PanelOperation, client: PterodactylClient) -> OperationResult:
    """Operations requested by staff or the health job, without billing's checks."""
    from provisioning import operations as ops
    from servers.models import Deployment, DeploymentStatus
    from servers.services import deployment_record

    actor = Actor(label=operation.requested_by)
    deployment = Deployment.objects.get(pk=operation.deployment_id)
    if operation.kind == K.RESTART:
        if deployment.status != DeploymentStatus.ACTIVE or not deployment.panel_identifier:
            return OperationResult(outcome=f"not restarted: {deployment.status}", skipped=True)
        from provisioning.pterodactyl import PterodactylClientAPI

        PterodactylClientAPI.from_settings().send_power_signal(deployment.panel_identifier, "start")
        deployment_record(
            deployment_id=deployment.pk,
            actor=actor,
            reason=f"Started automatically: {operation.reason}"[:1000],
        )
        # The panel caches live state for 20 s: the next health run reads the result.
        return OperationResult(outcome="start signal sent")
    actions = {
        K.SUSPEND: lambda: ops.deployment_suspend(
            deployment_id=deployment.pk,
            actor=actor,
            reason=operation.reason,
            cause=operation.params.get("cause", "staff"),
            client=client,
        ),
        K.UNSUSPEND: lambda: ops.deployment_unsuspend(
            deployment_id=deployment.pk, actor=actor, reason=operation.reason, client=client
        ),
        K.TERMINATE: lambda: ops.deployment_terminate(
            deployment_id=deployment.pk, actor=actor, reason=operation.reason, client=client
        ),
    }
    try:
        done = actions[operation.kind]()
    except ApplicationError as exc:
        if exc.code in (Code.INVALID_STATE, Code.INVALID_TRANSITION):
            return OperationResult(outcome=f"not needed: {exc.message}", skipped=True)
        raise
    return OperationResult(outcome=f"{operation.kind} done", verified=done.panel_verified)


def _log_entry(operation: PanelOperation, result: str) -> list[dict]:
    entry = {"at": timezone.now().isoformat(), "attempt": operation.attempts, "result": result}
    return [*operation.attempt_log, entry][-ATTEMPT_LOG_LENGTH:]


def _wait(operation: PanelOperation, result: OperationResult) -> None:
    """Put an operation that is waiting for the panel (not failing) back, attempt not spent."""
    outcome = redact(result.outcome)[:2000]
    now = timezone.now()
    _ours(operation).update(
        status=S.PENDING,
        attempts=max(0, operation.attempts - 1),
        lease_expires_at=None,
        next_attempt_at=now + timedelta(seconds=max(1.0, result.retry_in or 0.0)),
        outcome=outcome,
        attempt_log=_log_entry(operation, f"waiting: {outcome}"),
        updated_at=now,
    )


def _finish(operation: PanelOperation, result: OperationResult) -> None:
    status = S.SKIPPED if result.skipped else (S.FAILED if result.failed else S.SUCCEEDED)
    outcome = redact(result.outcome)[:2000]
    with transaction.atomic():
        if not _ours(operation).update(
            status=status,
            outcome=outcome,
            verified=result.verified,
            finished_at=timezone.now(),
            lease_expires_at=None,
            last_error=outcome if result.failed else operation.last_error,
            attempt_log=_log_entry(operation, outcome),
            updated_at=timezone.now(),
        ):
            logger.warning("panel operation %s was claimed again meanwhile", operation.pk)
            return
        follow_ups = [r for r in (result.follow_up, follow_up_of(operation.pk)) if r]
        if follow_ups:
            panel_operations_request(
                requests=follow_ups[:1], actor=Actor(label=operation.requested_by)
            )


def _fail(operation: PanelOperation, failure: _Failure) -> str:
    message = redact(failure.message)[:2000]
    now = timezone.now()
    if failure.retryable and operation.attempts < settings.PANEL_OPERATIONS_MAX_ATTEMPTS:
        backoff = settings.PANEL_OPERATIONS_RETRY_BACKOFF * 2 ** (operation.attempts - 1)
        delay = max(failure.retry_after or 0.0, backoff * random.uniform(0.5, 1.0))  # noqa: S311
        _ours(operation).update(
            status=S.PENDING,
            next_attempt_at=now + timedelta(seconds=delay),
            lease_expires_at=None,
            last_error=message,
            attempt_log=_log_entry(operation, f"retry in {delay:.0f} s: {message}"),
            updated_at=now,
        )
        return "retrying"
    with transaction.atomic():
        if not _ours(operation).update(
            status=S.FAILED,
            finished_at=now,
            lease_expires_at=None,
            last_error=message,
            outcome=f"failed after {operation.attempts} attempt(s)",
            attempt_log=_log_entry(operation, f"failed: {message}"),
            updated_at=now,
        ):
            return "superseded"
        _alert_staff(operation, message)
        follow_up = follow_up_of(operation.pk)
        if follow_up is not None:  # e.g. a payment's unsuspension waiting for this one
            panel_operations_request(requests=[follow_up], actor=Actor.system("drain"))
    return "failed"


def _alert_staff(operation: PanelOperation, message: str) -> None:
    """One message per kind of operation per hour that failed for good (the event key): a
    failing node does not send one message per server; the admin list has them all."""
    from servers.models import Deployment

    deployment = (
        Deployment.objects.select_related("customer").filter(pk=operation.deployment_id).first()
    )
    context: dict[str, object] = {
        "title": f"Panel operation failed: {operation.get_kind_display()}",
        "detail": f"{operation} failed after {operation.attempts} attempt(s): {message}. "
        "Other operations of this kind failing within the hour are not announced again: see "
        "the failed operations in the admin.",
        "admin_url": settings.PORTAL_BASE_URL.rstrip("/")
        + reverse("admin:provisioning_paneloperation_changelist")
        + f"?status__exact=failed&kind__exact={operation.kind}",
    }
    if deployment is not None:
        context |= {
            "deployment_id": deployment.pk,
            "server_name": deployment.name,
            "customer_email": deployment.customer.email,
        }
    notification_send(
        event="fleet_alert_staff",
        staff=True,
        context=context,
        event_key=f"panel-operations-failed:{operation.kind}:{timezone.now():%Y-%m-%dT%H}",
    )
