"""Provisioning figures for the admin's analytics page: aggregate queries only (4 queries).

A run counts in the period it finished in. Time to active is the customer's wait: from the
provisioning request (the order was paid and handed over) to the end of the run that made the
server active, so a run retried by staff the next day shows as the day it really took.
"""

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q
from django.db.models.functions import TruncDate

from common.analytics import Period, duration_percentiles, rate
from common.dates import billing_tz
from provisioning.models import ProvisioningRun, RunStatus

FAILED_STATUSES = (RunStatus.FAILED, RunStatus.NEEDS_ATTENTION)
FINISHED_STATUSES = (RunStatus.SUCCEEDED, *FAILED_STATUSES)


@dataclass(frozen=True)
class StepFailures:
    step: str  # "" when the run failed outside a step (deadline, refund while waiting)
    failed: int
    needs_attention: int

    @property
    def total(self) -> int:
        return self.failed + self.needs_attention


@dataclass(frozen=True)
class RunsOnDay:
    day: dt.date
    succeeded: int
    failed: int

    @property
    def total(self) -> int:
        return self.succeeded + self.failed


@dataclass(frozen=True)
class ProvisioningAnalytics:
    succeeded: int
    failed: int  # failed and rolled back, or needing attention
    time_to_active_p50_s: float | None
    time_to_active_p95_s: float | None
    failures_by_step: list[StepFailures]
    per_day: list[RunsOnDay]

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed

    @property
    def success_rate(self) -> float | None:
        return rate(self.succeeded, self.finished)


def provisioning_analytics(*, period: Period) -> ProvisioningAnalytics:
    finished = ProvisioningRun.objects.filter(
        status__in=FINISHED_STATUSES, finished_at__gte=period.start, finished_at__lt=period.end
    ).order_by()
    totals = finished.aggregate(
        succeeded=Count("id", filter=Q(status=RunStatus.SUCCEEDED)),
        failed=Count("id", filter=Q(status__in=FAILED_STATUSES)),
    )
    (p50, p95) = duration_percentiles(
        finished.filter(status=RunStatus.SUCCEEDED),
        start_field="request__created_at",
        end_field="finished_at",
    )[None]
    by_step = [
        StepFailures(step=row["failed_step"], failed=row["failed"], needs_attention=row["na"])
        for row in finished.filter(status__in=FAILED_STATUSES)
        .values("failed_step")
        .annotate(
            failed=Count("id", filter=Q(status=RunStatus.FAILED)),
            na=Count("id", filter=Q(status=RunStatus.NEEDS_ATTENTION)),
        )
        .order_by("failed_step")
    ]
    by_step.sort(key=lambda s: (-s.total, s.step))
    days = {
        row["day"]: row
        for row in finished.annotate(day=TruncDate("finished_at", tzinfo=billing_tz()))
        .values("day")
        .annotate(
            succeeded=Count("id", filter=Q(status=RunStatus.SUCCEEDED)),
            failed=Count("id", filter=Q(status__in=FAILED_STATUSES)),
        )
        .order_by("day")
    }
    per_day = [
        RunsOnDay(
            day=day,
            succeeded=days[day]["succeeded"] if day in days else 0,
            failed=days[day]["failed"] if day in days else 0,
        )
        for day in period.days
    ]
    return ProvisioningAnalytics(
        succeeded=totals["succeeded"],
        failed=totals["failed"],
        time_to_active_p50_s=p50,
        time_to_active_p95_s=p95,
        failures_by_step=by_step,
        per_day=per_day,
    )
