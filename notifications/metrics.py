"""Notification metrics for /metrics (common.metrics, settings.METRICS_COLLECTORS): deliveries
by channel and status, read from the database at scrape time. One query."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from notifications.models import Delivery


class DeliveryMetricsCollector:
    def collect(self) -> Iterator[Metric]:
        deliveries = GaugeMetricFamily(
            "portal_notification_deliveries",
            "Notification deliveries by channel and status (queued, sent, delivered, read, "
            "failed).",
            labels=["channel", "status"],
        )
        rows = Delivery.objects.order_by().values("channel", "status").annotate(n=Count("id"))
        for row in rows:
            deliveries.add_metric([row["channel"], row["status"]], row["n"])
        yield deliveries
