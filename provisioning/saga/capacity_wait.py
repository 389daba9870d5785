"""A paid run whose location is full: it waits (visible, told, retried) instead of failing.

Called by the engine and the placement step inside the engine's fenced transaction. While a run
waits it holds no PROVISIONING_QUEUE_SIZE slot and its PROVISIONING_TIMEOUT clock is stopped:
the full time starts again once room appears.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from common.actors import Actor
from common.state import apply_transition
from provisioning import notify
from provisioning.models import (
    PROVISIONING_REQUEST_TRANSITIONS,
    ProvisioningRequest,
    ProvisioningRequestEvent,
    ProvisioningRequestStatus,
    ProvisioningRun,
)

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
    apply_transition(
        request,
        table=PROVISIONING_REQUEST_TRANSITIONS,
        to_status=status,
        actor=actor,
        reason=reason[:1000],
        event_model=ProvisioningRequestEvent,
        event_fk="request",
        extra_updates={
            "last_error": "" if status in ("succeeded", "in_progress") else reason[:2000]
        },
    )
