"""The saga engine: one step per Celery task, prepare -> call -> finalize, fenced and leased.

- prepare: a short locked transaction claims the run (fence + 1, lease) and records the attempt;
- call: the step talks to the panel with no transaction or lock open;
- finalize: a new locked transaction records the outcome only if the fence is still ours.
This is the only retry layer: the panel client a step uses tries each request once and never
sleeps (PterodactylClient.for_workers), so a retryable error ends the task and the engine queues
the next try with a countdown (exponential backoff with jitter, at least the panel's
Retry-After), up to PROVISIONING_RETRY_ATTEMPTS. A rate-limit wait (ours or the panel's 429) is
not a failure and spends no try. Terminal errors, spent retries or the PROVISIONING_TIMEOUT
deadline start compensation, which undoes the steps in reverse order. A compensation that keeps
failing ends in "needs attention".

A step holds its run with a short lease (PROVISIONING_STEP_LEASE) that a heartbeat thread renews
while the step runs (provisioning.saga.lease), so the step of a killed worker is free again
within seconds, not after the task's time limit.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from common.actors import Actor
from common.logging import redact
from provisioning import listeners, notify
from provisioning.models import (
    AllocationClaim,
    ProvisioningRequestStatus,
    ProvisioningRun,
    ProvisioningStepAttempt,
    RunStatus,
    StepAttemptStatus,
    StepDirection,
    run_move,
)
from provisioning.pterodactyl import PanelError, PanelRateLimited, PterodactylClient
from provisioning.saga.capacity_wait import capacity_wait_begin_or_continue, request_status_set
from provisioning.saga.lease import LeaseKeeper, lease_seconds
from provisioning.saga.steps import (
    STEP_NAMES,
    STEPS,
    StepContext,
    StepFailed,
    StepOutcome,
    StepRewind,
)
from servers.capacity import capacity_hold_release
from servers.models import Deployment, DeploymentStatus
from servers.services import deployment_transition

logger = logging.getLogger(__name__)


class StepResult(StrEnum):
    """What one `run_step` call did: the Celery task's return value (tasks.py starts queued
    requests after the finished ones)."""

    SKIPPED = "skipped"  # nothing to do: finished run, lease held, too early
    SUPERSEDED = "superseded"  # a newer worker took the run over; our result was dropped
    ADVANCED = "advanced"
    WAITING = "waiting"
    WAITING_FOR_CAPACITY = "waiting_for_capacity"
    RETRYING = "retrying"
    REWOUND = "rewound"
    COMPENSATING = "compensating"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NEEDS_ATTENTION = "needs_attention"


FINISHED_RESULTS = frozenset({StepResult.SUCCEEDED, StepResult.FAILED, StepResult.NEEDS_ATTENTION})

COMPENSATION_ATTEMPTS = 5
# A step sent back to an earlier one (the panel said what it had changed) at most this often a
# run, so a panel that keeps contradicting itself ends in a rollback, not a loop.
MAX_REWINDS = 3

# The function that queues `run_step` for a run (set by provisioning.tasks, so the engine does
# not import Celery tasks). Always called through transaction.on_commit.
_dispatch: Callable[[int, float], None] | None = None


def set_dispatcher(dispatch: Callable[[int, float], None]) -> None:
    global _dispatch
    _dispatch = dispatch


def schedule(run_id: int, delay: float = 0.0) -> None:
    """Queue the run's next step after the current transaction commits."""
    if _dispatch is None:
        raise RuntimeError("provisioning.tasks is not loaded: no dispatcher for saga steps")
    dispatch = _dispatch
    transaction.on_commit(lambda: dispatch(run_id, delay))


def backoff_seconds(attempt: int, *, retry_after: float | None = None) -> float:
    """Exponential backoff with "equal" jitter (half fixed, half random, so runs that failed
    together spread out but none retries at once), capped at PROVISIONING_RETRY_MAX_BACKOFF;
    a panel Retry-After wins if longer."""
    base = settings.PROVISIONING_RETRY_BACKOFF
    if base > 0:
        ceiling = min(settings.PROVISIONING_RETRY_MAX_BACKOFF, base * 2 ** max(0, attempt - 1))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311
    else:
        delay = 0.0
    return max(delay, retry_after or 0.0)


def rate_wait_seconds(error: PanelRateLimited) -> float:
    """When to try again after a rate-limit wait: the wait, plus up to a second of jitter so
    the runs that waited together do not all come back in the same instant."""
    return (error.retry_after if error.retry_after is not None else 60.0) + random.uniform(  # noqa: S311
        0, 1
    )


@dataclass(frozen=True)
class Claim:
    run_id: int
    fence: int
    direction: str
    index: int
    attempt: int
    attempt_row_id: int
    started: float


def run_step(
    run_id: int, *, client_factory: Callable[[], PterodactylClient] | None = None
) -> StepResult:
    """Execute the run's current step (forward or compensating). Safe to call any number of
    times: a call that finds nothing to do (finished run, lease held, too early) does nothing."""
    claim = _prepare(run_id)
    if claim is None:
        return StepResult.SKIPPED
    run = ProvisioningRun.objects.select_related(
        "deployment__customer", "deployment__location"
    ).get(pk=run_id)
    step = STEPS[claim.index]
    ctx = StepContext(
        run=run,
        deployment=run.deployment,
        attempt=claim.attempt,
        client_factory=client_factory or PterodactylClient.for_workers,
    )
    outcome: StepOutcome | None = None
    error: BaseException | None = None
    with LeaseKeeper(claim.run_id, claim.fence):
        try:
            if claim.direction == StepDirection.FORWARD:
                outcome = step.execute(ctx)
            else:
                outcome = step.compensate(ctx)
        except (
            PanelError,
            StepFailed,
            StepRewind,
            ImproperlyConfigured,
            SoftTimeLimitExceeded,
        ) as exc:
            error = exc
        except Exception as exc:
            logger.exception("provisioning step %s of run %s crashed", step.name, run_id)
            error = exc
    return _finalize(claim, outcome, error)


def _prepare(run_id: int) -> Claim | None:
    now = timezone.now()
    with transaction.atomic():
        run = ProvisioningRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or not run.is_active:
            return None
        if run.lease_expires_at and run.lease_expires_at > now:
            return None  # another worker holds the step
        if run.next_run_at and run.next_run_at > now + dt.timedelta(seconds=1):
            return None  # a duplicate or early message; the scheduled one will come
        if run.status == RunStatus.RUNNING and run.abort_requested:
            _start_compensation(
                run,
                run.last_error or "rollback requested by staff",
                failed_step=STEPS[run.step_index].name,
            )
        elif run.status == RunStatus.RUNNING and now >= run.deadline_at:
            _start_compensation(
                run,
                f"Timed out after {settings.PROVISIONING_TIMEOUT} s at step "
                f"{STEPS[run.step_index].name}",
                failed_step=STEPS[run.step_index].name,
            )
        forward = run.status == RunStatus.RUNNING
        index = run.step_index if forward else run.compensate_index
        run.fence += 1
        run.lease_expires_at = now + dt.timedelta(seconds=lease_seconds())
        run.next_run_at = None
        run.save(
            update_fields=[
                "fence",
                "lease_expires_at",
                "next_run_at",
                "status",
                "compensate_index",
                "last_error",
                "failed_step",
                "attempt",
                "updated_at",
            ]
        )
        attempt = ProvisioningStepAttempt.objects.create(
            run=run,
            step=STEPS[index].name,
            direction=StepDirection.FORWARD if forward else StepDirection.COMPENSATE,
            attempt=run.attempt + 1,
            fence=run.fence,
            status=StepAttemptStatus.RUNNING,
            started_at=now,
        )
    return Claim(
        run_id=run.pk,
        fence=run.fence,
        direction=attempt.direction,
        index=index,
        attempt=run.attempt,
        attempt_row_id=attempt.pk,
        started=time.monotonic(),
    )


def _error_text(error: BaseException) -> str:
    if isinstance(error, PanelError | StepFailed | StepRewind | ImproperlyConfigured):
        text = str(error)
    elif isinstance(error, SoftTimeLimitExceeded):
        text = "the step ran past its time limit"
    else:
        text = f"unexpected {type(error).__name__}: {error}"
    return redact(text)[:2000]


def _is_retryable(error: BaseException) -> bool:
    if isinstance(error, PanelError):
        return error.retryable
    # Time limits, DB hiccups, bugs: retry (bounded), then compensate.
    return not isinstance(error, StepFailed | StepRewind | ImproperlyConfigured)


def _finalize(claim: Claim, outcome: StepOutcome | None, error: BaseException | None) -> StepResult:
    now = timezone.now()
    duration_ms = int((time.monotonic() - claim.started) * 1000)
    step = STEPS[claim.index]
    with transaction.atomic():
        run = ProvisioningRun.objects.select_for_update().get(pk=claim.run_id)
        attempt_row = ProvisioningStepAttempt.objects.get(pk=claim.attempt_row_id)
        attempt_row.finished_at = now
        attempt_row.duration_ms = duration_ms
        if outcome is not None:
            attempt_row.summary = outcome.summary
        if error is not None:
            attempt_row.error = _error_text(error)
        if run.fence != claim.fence:
            # A newer worker took over (our lease expired or staff intervened): drop our result.
            attempt_row.status = StepAttemptStatus.SUPERSEDED
            attempt_row.save()
            logger.warning("run %s step %s: stale worker result dropped", run.pk, step.name)
            return StepResult.SUPERSEDED
        run.lease_expires_at = None
        if outcome is not None:
            for field_name, value in outcome.updates.items():
                setattr(run, field_name, value)
        if claim.direction == StepDirection.FORWARD:
            result = _finalize_forward(run, step, attempt_row, outcome, error)
        else:
            result = _finalize_compensation(run, step, attempt_row, error)
        attempt_row.save()
        run.save()
    return result


def _finalize_forward(
    run: ProvisioningRun,
    step: Any,
    attempt_row: ProvisioningStepAttempt,
    outcome: StepOutcome | None,
    error: BaseException | None,
) -> StepResult:
    actor = Actor.system("provisioning")
    if run.abort_requested:
        # Staff asked to roll back while this step ran: its outcome (say, the server it created)
        # is recorded above, so the rollback knows what to undo.
        attempt_row.status = (
            StepAttemptStatus.SUCCEEDED if error is None else StepAttemptStatus.FAILED
        )
        _start_compensation(run, run.last_error or "rollback requested", failed_step=step.name)
        _schedule_later(run, 0)
        return StepResult.COMPENSATING
    if error is None and outcome is not None:
        if outcome.waiting_for_capacity is not None:
            attempt_row.status = StepAttemptStatus.WAITING
            capacity_wait_begin_or_continue(run, reason=outcome.waiting_for_capacity, actor=actor)
            _schedule_later(
                run, outcome.poll_after or settings.PROVISIONING_CAPACITY_RETRY_INTERVAL
            )
            return StepResult.WAITING_FOR_CAPACITY
        if outcome.poll_after is not None:
            attempt_row.status = StepAttemptStatus.WAITING
            _schedule_later(run, outcome.poll_after)
            return StepResult.WAITING
        attempt_row.status = StepAttemptStatus.SUCCEEDED
        step.finalize(run, outcome, actor)
        run.attempt = 0
        if run.step_index + 1 >= len(STEPS):
            _succeed(run, actor)
            return StepResult.SUCCEEDED
        run.step_index += 1
        _schedule_later(run, 0)
        return StepResult.ADVANCED
    assert error is not None  # noqa: S101
    text = _error_text(error)
    run.last_error = f"{step.name}: {text}"
    if isinstance(error, PanelRateLimited):
        # Waiting for the budget (ours, or the panel's Retry-After) is not the step failing.
        attempt_row.status = StepAttemptStatus.RETRYING
        _schedule_later(run, rate_wait_seconds(error))
        logger.info("run %s step %s waits for the panel budget: %s", run.pk, step.name, text)
        return StepResult.RETRYING
    if isinstance(error, StepRewind) and run.rewinds < MAX_REWINDS:
        attempt_row.status = StepAttemptStatus.FAILED
        run.rewinds += 1
        run.attempt = 0
        run.step_index = STEP_NAMES.index(error.to_step)
        _schedule_later(run, 0)
        logger.warning("run %s: back from %s to %s: %s", run.pk, step.name, error.to_step, text)
        return StepResult.REWOUND
    if _is_retryable(error) and run.attempt + 1 < settings.PROVISIONING_RETRY_ATTEMPTS:
        run.attempt += 1
        attempt_row.status = StepAttemptStatus.RETRYING
        retry_after = getattr(error, "retry_after", None)
        _schedule_later(run, backoff_seconds(run.attempt, retry_after=retry_after))
        logger.warning("run %s step %s failed (retry %s): %s", run.pk, step.name, run.attempt, text)
        return StepResult.RETRYING
    attempt_row.status = StepAttemptStatus.FAILED
    spent = " (retries spent)" if _is_retryable(error) else ""
    logger.error("run %s step %s failed%s: %s", run.pk, step.name, spent, text)
    _start_compensation(run, f"{step.name}: {text}{spent}", failed_step=step.name)
    _schedule_later(run, 0)
    return StepResult.COMPENSATING


def _finalize_compensation(
    run: ProvisioningRun,
    step: Any,
    attempt_row: ProvisioningStepAttempt,
    error: BaseException | None,
) -> StepResult:
    if error is None:
        attempt_row.status = StepAttemptStatus.SUCCEEDED
        run.attempt = 0
        run.compensate_index -= 1
        if run.compensate_index < 0:
            _fail(run, Actor.system("provisioning"))
            return StepResult.FAILED
        _schedule_later(run, 0)
        return StepResult.COMPENSATING
    text = _error_text(error)
    if isinstance(error, PanelRateLimited):
        attempt_row.status = StepAttemptStatus.RETRYING
        _schedule_later(run, rate_wait_seconds(error))
        return StepResult.COMPENSATING
    if run.attempt + 1 < COMPENSATION_ATTEMPTS:
        run.attempt += 1
        attempt_row.status = StepAttemptStatus.RETRYING
        _schedule_later(run, backoff_seconds(run.attempt))
        return StepResult.COMPENSATING
    attempt_row.status = StepAttemptStatus.FAILED
    run_move(run, RunStatus.NEEDS_ATTENTION)
    run.finished_at = timezone.now()
    run.last_error = f"{run.last_error} | rollback of {step.name} failed: {text}"
    _end_request(run, ProvisioningRequestStatus.FAILED, run.last_error)
    _deployment_to(run.deployment_id, DeploymentStatus.FAILED, run.last_error)
    _capacity_hold_release(run, "provisioning failed")
    listeners.notify_failed(
        deployment_id=run.deployment_id,
        error=f"Provisioning failed and the rollback needs staff: {run.last_error}",
        actor=Actor.system("provisioning"),
    )
    notify.notify_provisioning_failed(run, needs_attention=True)
    logger.error("run %s needs attention: %s", run.pk, run.last_error)
    return StepResult.NEEDS_ATTENTION


def _schedule_later(run: ProvisioningRun, delay: float) -> None:
    run.next_run_at = timezone.now() + dt.timedelta(seconds=delay)
    schedule(run.pk, delay)


def _start_compensation(run: ProvisioningRun, reason: str, *, failed_step: str) -> None:
    run_move(run, RunStatus.COMPENSATING)
    run.compensate_index = run.step_index
    run.attempt = 0
    run.last_error = reason
    run.failed_step = failed_step


def _succeed(run: ProvisioningRun, actor: Actor) -> None:
    run_move(run, RunStatus.SUCCEEDED)
    run.finished_at = timezone.now()
    run.last_error = ""
    primary = AllocationClaim.objects.filter(run=run, is_primary=True).first()
    _deployment_to(
        run.deployment_id,
        DeploymentStatus.ACTIVE,
        "Provisioned",
        updates={
            "node_id": run.node_id,
            "panel_user_id": run.panel_user_id,
            "panel_server_id": run.panel_server_id,
            "panel_server_uuid": run.panel_server_uuid,
            "panel_identifier": run.panel_identifier,
            "ip_address": primary.ip if primary else "",
            "port": primary.port if primary else None,
        },
    )
    _end_request(run, ProvisioningRequestStatus.SUCCEEDED, "Server active")
    listeners.notify_succeeded(deployment_id=run.deployment_id, actor=actor)
    notify.notify_server_ready(run)


def _fail(run: ProvisioningRun, actor: Actor) -> None:
    run_move(run, RunStatus.FAILED)
    run.finished_at = timezone.now()
    _end_request(run, ProvisioningRequestStatus.FAILED, run.last_error)
    _deployment_to(run.deployment_id, DeploymentStatus.FAILED, run.last_error)
    _capacity_hold_release(run, "provisioning failed")
    listeners.notify_failed(deployment_id=run.deployment_id, error=run.last_error, actor=actor)
    notify.notify_provisioning_failed(run)


def _capacity_hold_release(run: ProvisioningRun, reason: str) -> None:
    # A run that failed before placement still holds the checkout's room: give it back.
    capacity_hold_release(
        deployment_id=run.deployment_id, reason=reason, actor=Actor.system("provisioning")
    )


def _deployment_to(
    deployment_id: int, status: str, reason: str, updates: dict[str, Any] | None = None
) -> None:
    current = Deployment.objects.only("status").get(pk=deployment_id).status
    if current != status:
        deployment_transition(
            deployment_id=deployment_id,
            to_status=status,
            actor=Actor.system("provisioning"),
            reason=reason[:1000],
            updates=updates,
        )


def _end_request(run: ProvisioningRun, status: str, reason: str) -> None:
    request_status_set(run, status, reason, Actor.system("provisioning"))
