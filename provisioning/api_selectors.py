"""Reads for the staff provisioning API (provisioning.apis): runs, failed runs, queue figures.

The figures are aggregate SQL with a constant number of queries whatever the number of runs:
one over runs (counts and, on PostgreSQL, percentile_cont of the time to active), one over
requests; SQLite (the local demo) computes the percentiles from one more query.
"""

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
)
from django.utils import timezone

from common.errors import NotFoundError
from provisioning.models import (
    FAILED_RUN_STATUSES,
    ProvisioningRequest,
    ProvisioningRequestStatus,
    ProvisioningRun,
    RunStatus,
)

PERIODS: dict[str, dt.timedelta] = {
    "last_24h": dt.timedelta(hours=24),
    "last_7d": dt.timedelta(days=7),
}
# Outcomes counted per period, by the time the run ended (started: by its start).
OUTCOMES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.NEEDS_ATTENTION)
PERCENTILES = {"p50": 0.5, "p95": 0.95}
# Time to active measured from the run's start, or from payment (the request is written in
# the confirming transaction, so its creation is when the order was paid).
TIME_ORIGINS = {"from_run_start": "started_at", "from_paid": "request__created_at"}


def run_list() -> QuerySet[ProvisioningRun]:
    """Every run, newest first (a stable order for pages), with what a list row shows."""
    return ProvisioningRun.objects.select_related(
        "request", "deployment__customer", "deployment__node", "node"
    ).order_by("-created_at", "-pk")


def run_list_failed() -> QuerySet[ProvisioningRun]:
    """Failed runs (rolled back, or stuck half way) staff have not dismissed."""
    return run_list().filter(status__in=FAILED_RUN_STATUSES, dismissed_at__isnull=True)


def run_get(*, run_id: int) -> ProvisioningRun:
    """One run with its step attempts (the admin timeline's rows, in order)."""
    run = run_list().prefetch_related("steps").filter(pk=run_id).first()
    if run is None:
        raise NotFoundError(f"There is no provisioning run #{run_id}.")
    return run


class PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate: the continuous percentile of an interval."""

    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()

    def __init__(self, expression: Any, *, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must be between 0 and 1")
        super().__init__(expression, fraction=float(fraction), **extra)


@dataclass(frozen=True)
class Percentiles:
    p50_seconds: float | None
    p95_seconds: float | None


@dataclass(frozen=True)
class PeriodFigures:
    started: int
    succeeded: int
    failed: int
    needs_attention: int
    time_to_active: dict[str, Percentiles]  # by TIME_ORIGINS key


@dataclass(frozen=True)
class ProvisioningApiStats:
    queued: int  # automatic requests waiting for a queue slot
    waiting_manual: int  # requests waiting for staff (automatic provisioning off)
    running: int  # runs inside their steps (holding a queue slot)
    waiting_capacity: int  # runs waiting for room on a node (no queue slot)
    compensating: int  # runs rolling back
    failed: int  # failed or needs attention, not dismissed (the failed list)
    needs_attention: int  # of which stuck half way (still hold what they created)
    periods: dict[str, PeriodFigures]  # by PERIODS key
    generated_at: dt.datetime

    @property
    def queue_depth(self) -> int:
        return self.queued + self.waiting_capacity


def _duration(origin: str) -> ExpressionWrapper:
    return ExpressionWrapper(F("finished_at") - F(origin), output_field=DurationField())


def provisioning_api_stats(*, now: dt.datetime | None = None) -> ProvisioningApiStats:
    now = now or timezone.now()
    since = {name: now - length for name, length in PERIODS.items()}
    running = Q(status=RunStatus.RUNNING)
    aggregates: dict[str, Any] = {
        "running": Count("pk", filter=running & Q(waiting_for_capacity_since__isnull=True)),
        "waiting_capacity": Count(
            "pk", filter=running & Q(waiting_for_capacity_since__isnull=False)
        ),
        "compensating": Count("pk", filter=Q(status=RunStatus.COMPENSATING)),
        "failed": Count("pk", filter=Q(status__in=FAILED_RUN_STATUSES, dismissed_at__isnull=True)),
        # Dismissed or not: such a run still holds what it created on the panel.
        "needs_attention": Count("pk", filter=Q(status=RunStatus.NEEDS_ATTENTION)),
    }
    postgres = connection.vendor == "postgresql"
    for period, start in since.items():
        aggregates[f"{period}:started"] = Count("pk", filter=Q(started_at__gte=start))
        for outcome in OUTCOMES:
            aggregates[f"{period}:{outcome}"] = Count(
                "pk", filter=Q(status=outcome, finished_at__gte=start)
            )
        if postgres:
            done = Q(status=RunStatus.SUCCEEDED, finished_at__gte=start)
            for origin, field in TIME_ORIGINS.items():
                for name, fraction in PERCENTILES.items():
                    aggregates[f"{period}:{origin}:{name}"] = PercentileCont(
                        _duration(field), fraction=fraction, filter=done
                    )
    figures = ProvisioningRun.objects.aggregate(**aggregates)
    if not postgres:
        figures.update(_percentiles_in_python(since))
    requests = ProvisioningRequest.objects.filter(
        status=ProvisioningRequestStatus.PENDING
    ).aggregate(
        queued=Count("pk", filter=Q(automatic=True)),
        waiting_manual=Count("pk", filter=Q(automatic=False)),
    )
    return ProvisioningApiStats(
        queued=requests["queued"],
        waiting_manual=requests["waiting_manual"],
        running=figures["running"],
        waiting_capacity=figures["waiting_capacity"],
        compensating=figures["compensating"],
        failed=figures["failed"],
        needs_attention=figures["needs_attention"],
        periods={
            period: PeriodFigures(
                started=figures[f"{period}:started"],
                succeeded=figures[f"{period}:{RunStatus.SUCCEEDED}"],
                failed=figures[f"{period}:{RunStatus.FAILED}"],
                needs_attention=figures[f"{period}:{RunStatus.NEEDS_ATTENTION}"],
                time_to_active={
                    origin: Percentiles(
                        p50_seconds=_seconds(figures.get(f"{period}:{origin}:p50")),
                        p95_seconds=_seconds(figures.get(f"{period}:{origin}:p95")),
                    )
                    for origin in TIME_ORIGINS
                },
            )
            for period in PERIODS
        },
        generated_at=now,
    )


def _seconds(value: dt.timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds(), 3)


def _percentiles_in_python(since: dict[str, dt.datetime]) -> dict[str, dt.timedelta | None]:
    """Without percentile_cont (SQLite): the same interpolation over one query's durations."""
    oldest = min(since.values())
    rows = list(
        ProvisioningRun.objects.filter(status=RunStatus.SUCCEEDED, finished_at__gte=oldest)
        .values_list("finished_at", *TIME_ORIGINS.values())
        .order_by()
    )
    result: dict[str, dt.timedelta | None] = {}
    for period, start in since.items():
        for index, origin in enumerate(TIME_ORIGINS, start=1):
            durations = sorted(row[0] - row[index] for row in rows if row[0] >= start)
            for name, fraction in PERCENTILES.items():
                result[f"{period}:{origin}:{name}"] = _interpolate(durations, fraction)
    return result


def _interpolate(values: list[dt.timedelta], fraction: float) -> dt.timedelta | None:
    """percentile_cont's definition: linear between the two nearest ranks."""
    if not values:
        return None
    position = fraction * (len(values) - 1)
    low, high = math.floor(position), math.ceil(position)
    return values[low] + (values[high] - values[low]) * (position - low)
