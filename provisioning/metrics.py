"""Provisioning metrics for /metrics (common.metrics, settings.METRICS_COLLECTORS): read from the
database at scrape time, so they are the same whichever process did the work. Three queries."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Q, Sum
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from provisioning.models import (
    ProvisioningRequest,
    ProvisioningRequestStatus,
    ProvisioningRun,
    ProvisioningStepAttempt,
)

# Upper bounds (seconds) of the step latency buckets: from a quick lookup to an install poll.
STEP_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

# Requests waiting for a run to start or for a node with room.
QUEUED_REQUEST_STATUSES = (
    ProvisioningRequestStatus.PENDING,
    ProvisioningRequestStatus.WAITING_CAPACITY,
)


class ProvisioningMetricsCollector:
    def collect(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily(
            "portal_provisioning_runs",
            "Provisioning saga runs by status (succeeded, failed, needs_attention are outcomes; "
            "running and compensating are in flight).",
            labels=["status"],
        )
        for row in ProvisioningRun.objects.order_by().values("status").annotate(n=Count("id")):
            runs.add_metric([row["status"]], row["n"])
        yield runs

        requests = GaugeMetricFamily(
            "portal_provisioning_requests",
            "Provisioning requests (one per deployment) by status.",
            labels=["status"],
        )
        queued = 0
        for row in ProvisioningRequest.objects.order_by().values("status").annotate(n=Count("id")):
            requests.add_metric([row["status"]], row["n"])
            if row["status"] in QUEUED_REQUEST_STATUSES:
                queued += row["n"]
        yield requests
        yield GaugeMetricFamily(
            "portal_provisioning_queued",
            "Provisioning requests waiting for a run or for capacity (pending, waiting_capacity).",
            value=queued,
        )

        yield self._step_durations()

    @staticmethod
    def _step_durations() -> Metric:
        # One query: per step, direction and outcome, the count at or under each bucket bound.
        bounds = {
            f"le_{index}": Count("id", filter=Q(duration_ms__lte=round(bound * 1000)))
            for index, bound in enumerate(STEP_DURATION_BUCKETS)
        }
        rows = (
            ProvisioningStepAttempt.objects.filter(duration_ms__isnull=False)
            .order_by()
            .values("step", "direction", "status")
            .annotate(n=Count("id"), total_ms=Sum("duration_ms"), **bounds)
        )
        histogram = HistogramMetricFamily(
            "portal_provisioning_step_duration_seconds",
            "Duration of finished saga step attempts, by step, direction and outcome.",
            labels=["step", "direction", "status"],
        )
        for row in rows:
            buckets = [
                (str(float(bound)), row[f"le_{index}"])
                for index, bound in enumerate(STEP_DURATION_BUCKETS)
            ]
            buckets.append(("+Inf", row["n"]))
            histogram.add_metric(
                [row["step"], row["direction"], row["status"]],
                buckets=buckets,
                sum_value=(row["total_ms"] or 0) / 1000,
            )
        return histogram
