"""Reads for provisioning: run timelines, queue figures, the dry-run plan."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, QuerySet
from django.utils import timezone

from provisioning.models import (
    ACTIVE_RUN_STATUSES,
    ProvisioningRequest,
    ProvisioningRequestStatus,
    ProvisioningRun,
    RunStatus,
)


def runs_for_deployment(*, deployment_id: int) -> QuerySet[ProvisioningRun]:
    return (
        ProvisioningRun.objects.filter(deployment_id=deployment_id)
        .prefetch_related("steps")
        .order_by("-created_at")
    )


@dataclass(frozen=True)
class ProvisioningStatus:
    queued: int
    running: int
    compensating: int
    needs_attention: int
    succeeded_24h: int
    failed_24h: int
    waiting_manual: int

    @property
    def success_rate_24h(self) -> float | None:
        finished = self.succeeded_24h + self.failed_24h
        return None if finished == 0 else self.succeeded_24h / finished


def provisioning_status(*, now: dt.datetime | None = None) -> ProvisioningStatus:
    now = now or timezone.now()
    since = now - dt.timedelta(hours=24)
    by_status = dict(
        ProvisioningRun.objects.values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    recent = dict(
        ProvisioningRun.objects.filter(finished_at__gte=since)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    pending = ProvisioningRequest.objects.filter(status=ProvisioningRequestStatus.PENDING)
    return ProvisioningStatus(
        queued=pending.filter(automatic=True).count(),
        running=by_status.get(RunStatus.RUNNING, 0),
        compensating=by_status.get(RunStatus.COMPENSATING, 0),
        needs_attention=by_status.get(RunStatus.NEEDS_ATTENTION, 0),
        succeeded_24h=recent.get(RunStatus.SUCCEEDED, 0),
        failed_24h=recent.get(RunStatus.FAILED, 0) + recent.get(RunStatus.NEEDS_ATTENTION, 0),
        waiting_manual=pending.filter(automatic=False).count()
        + ProvisioningRequest.objects.filter(status=ProvisioningRequestStatus.FAILED).count(),
    )


def run_timeline(run: ProvisioningRun) -> list[dict[str, Any]]:
    return [
        {
            "step": s.step,
            "direction": s.direction,
            "attempt": s.attempt,
            "status": s.status,
            "started_at": s.started_at,
            "finished_at": s.finished_at,
            "duration_ms": s.duration_ms,
            "summary": s.summary,
            "error": s.error,
        }
        for s in run.steps.all()
    ]


def active_run_for_deployment(*, deployment_id: int) -> ProvisioningRun | None:
    return ProvisioningRun.objects.filter(
        deployment_id=deployment_id, status__in=ACTIVE_RUN_STATUSES
    ).first()
