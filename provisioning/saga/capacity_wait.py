"""A paid run whose location is full: it waits (visible, told, retried) instead of failing.

Called by the engine and the placement step inside the engine's fenced transaction. While a run
waits it holds no PROVISIONING_QUEUE_SIZE slot and its PROVISIONING_TIMEOUT clock is stopped:
the full time starts again once room appears. Staff may move a waiting order to another
location (`provisioning_waiting_move`) or end it for a refund (`provisioning_waiting_cancel`,
called by billing's refund).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from common.actors import Actor
from common.errors import ConflictError
from provisioning import notify
from provisioning.errors import ProvisioningErrorCode as Code
from provisioning.models import (
    ACTIVE_RUN_STATUSES,
    PROVISIONING_REQUEST_STATES,
    ProvisioningRequest,
    ProvisioningRequestStatus,
    ProvisioningRun,
    RunStatus,
    run_move,
)
from servers.capacity import capacity_hold_keep, capacity_hold_release, capacity_hold_take
from servers.models import Deployment, Location
from servers.services import deployment_record

logger = logging.getLogger(__name__)


def capacity_wait_begin_or_continue(run: ProvisioningRun, *, reason: str, actor: Actor) -> bool:
    """Record that the run waits for room. The first time: the request moves to "waiting for
    capacity" (with the reason), the customer is told and staff alerted. Returns whether this
    was the first time."""
    now = timezone.now()
    run.deadline_at = now + dt.timedelta(seconds=settings.PROVISIONING_TIMEOUT)
    run.attempt = 0
    run.last_error = reason[:2000]
    if run.waiting_for_capacity_since is not None:
        return False
    run.waiting_for_capacity_since = now
    request_status_set(run, ProvisioningRequestStatus.WAITING_CAPACITY, reason, actor)
    notify.notify_waiting_for_capacity(run)
    logger.warning("run %s waits for capacity: %s", run.pk, reason)
    return True


def capacity_wait_end(run: ProvisioningRun, *, actor: Actor) -> None:
    """Room was found: the request is in progress again, the wait recorded in its history."""
    waited = timezone.now() - run.waiting_for_capacity_since
    run.waiting_for_capacity_since = None
    run.last_error = ""
    request_status_set(
        run,
        ProvisioningRequestStatus.IN_PROGRESS,
        f"Room found after waiting {int(waited.total_seconds() // 60)} min: "
        f"{run.placement_reason[:500]}",
        actor,
    )


def request_status_set(run: ProvisioningRun, status: str, reason: str, actor: Actor) -> None:
    """Move the run's provisioning request to `status` (recorded with who and why), if it is
    not there already; the engine uses it for the run's end too."""
    request = ProvisioningRequest.objects.select_for_update().get(pk=run.request_id)
    if request.status == status:
        return
    cleared = status in (ProvisioningRequestStatus.SUCCEEDED, ProvisioningRequestStatus.IN_PROGRESS)
    PROVISIONING_REQUEST_STATES.move(
        request,
        status,
        actor=actor,
        reason=reason[:1000],
        extra_updates={"last_error": "" if cleared else reason[:2000]},
    )


def _waiting_run_locked(deployment_id: int) -> ProvisioningRun:
    """The deployment's run waiting for capacity, locked, with no worker inside a step."""
    run = (
        ProvisioningRun.objects.select_for_update()
        .filter(deployment_id=deployment_id, status__in=ACTIVE_RUN_STATUSES)
        .first()
    )
    if run is None or run.status != RunStatus.RUNNING or run.waiting_for_capacity_since is None:
        raise ConflictError(
            "This order is not waiting for capacity (its provisioning is running, finished "
            "or not started).",
            code=Code.NOT_WAITING_FOR_CAPACITY,
        )
    if run.lease_expires_at and run.lease_expires_at > timezone.now():
        raise ConflictError(
            "A worker is checking for room for this order right now; try again in a minute.",
            code=Code.RUN_BUSY,
        )
    return run


def provisioning_waiting_move(
    *, deployment_id: int, location: Location, actor: Actor, reason: str
) -> ProvisioningRun:
    """Staff: move an order waiting for capacity to another location that has room now.

    The room is taken at once (a hold on the new location's least loaded node, kept until the
    server exists), the old location's hold is given back, and the run tries placement
    straight away. Raises SoldOutError (nothing changed) when the new location is full too.
    """
    from provisioning.saga import engine

    with transaction.atomic():
        run = _waiting_run_locked(deployment_id)
        deployment = Deployment.objects.select_for_update().get(pk=deployment_id)
        old = deployment.location
        if old is not None and old.pk == location.pk:
            raise ConflictError(f"The order is already in {location}.", code=Code.SAME_LOCATION)
        limits = run.server_payload.get("limits", {})
        memory, disk = int(limits.get("memory") or 0), int(limits.get("disk") or 0)
        capacity_hold_release(
            deployment_id=deployment_id, reason=f"moved to {location.short_code}", actor=actor
        )
        deployment.location = location
        deployment.save(update_fields=["location", "updated_at"])
        # Binding check under the node locks; SoldOutError rolls the whole move back.
        capacity_hold_take(
            deployment=deployment, location=location, memory_mb=memory, disk_mb=disk, actor=actor
        )
        capacity_hold_keep(deployment_id=deployment_id, actor=actor)
        note = f"Moved from {old or 'no location'} to {location} while waiting for capacity"
        deployment_record(
            deployment_id=deployment_id, actor=actor, reason=f"{note}: {reason}"[:2000]
        )
        # The request stays waiting for capacity; its history says where the order went.
        PROVISIONING_REQUEST_STATES.note(
            ProvisioningRequest.objects.get(pk=run.request_id),
            actor=actor,
            reason=f"{note}: {reason}"[:1000],
        )
        run.next_run_at = timezone.now()
        run.save(update_fields=["next_run_at", "updated_at"])
        engine.schedule(run.pk)
    logger.info("waiting run %s moved to %s by %s", run.pk, location.short_code, actor)
    return run


def provisioning_waiting_cancel(*, deployment_id: int, actor: Actor, reason: str) -> None:
    """End a run waiting for capacity without a server (billing's refund calls this).

    Nothing of the order exists on the panel yet but, for a new customer, the panel user:
    that is their panel account (recorded in PanelAccount, reused by their next order), so it
    stays. The run ends failed with the reason, its request cancelled, its room released.
    Call inside the refund's transaction; the deployment's own status is the caller's.
    """
    run = _waiting_run_locked(deployment_id)
    now = timezone.now()
    run_move(run, RunStatus.FAILED)
    run.finished_at = now
    run.fence += 1  # a worker that picks up a stale message can no longer write
    run.next_run_at = None
    run.lease_expires_at = None
    run.waiting_for_capacity_since = None
    run.last_error = f"Cancelled by {actor.label} while waiting for capacity: {reason}"[:2000]
    run.save()
    request_status_set(run, ProvisioningRequestStatus.CANCELLED, run.last_error, actor)
    capacity_hold_release(deployment_id=deployment_id, reason="order refunded", actor=actor)
