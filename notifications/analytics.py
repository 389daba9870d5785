"""Notification figures for the admin's analytics page: aggregate queries only (2 queries).

A delivery counts in the period it was created in. It is delivered when it reached the end the
channel can tell us about: an e-mail once the mail server took it (status "sent": e-mail has no
receipts), a WhatsApp message once the phone got it ("delivered" or "read"). Latency runs from
creation to that moment (delivered_at, else read_at when the receipts came out of order, else
sent_at for e-mail).
"""

from dataclasses import dataclass

from django.db.models import Count, Q
from django.db.models.functions import Coalesce

from common.analytics import Period, duration_percentiles, rate
from notifications.models import Channel, Delivery, DeliveryStatus

S = DeliveryStatus
DELIVERED = Q(status__in=[S.DELIVERED, S.READ]) | Q(channel=Channel.EMAIL, status=S.SENT)


@dataclass(frozen=True)
class ChannelDeliveries:
    channel: str
    label: str
    total: int
    delivered: int
    failed: int
    latency_p50_s: float | None
    latency_p95_s: float | None

    @property
    def pending(self) -> int:
        """Queued, or sent and not confirmed yet (WhatsApp)."""
        return self.total - self.delivered - self.failed

    @property
    def delivery_rate(self) -> float | None:
        return rate(self.delivered, self.total)


def delivery_analytics(*, period: Period) -> list[ChannelDeliveries]:
    """One row per channel (every channel, even with no message in the period)."""
    created = Delivery.objects.filter(
        created_at__gte=period.start, created_at__lt=period.end
    ).order_by()
    counts = {
        row["channel"]: row
        for row in created.values("channel").annotate(
            total=Count("id"),
            delivered=Count("id", filter=DELIVERED),
            failed=Count("id", filter=Q(status=S.FAILED)),
        )
    }
    latencies = duration_percentiles(
        created.filter(DELIVERED),
        start_field="created_at",
        end_field=Coalesce("delivered_at", "read_at", "sent_at"),
        group_field="channel",
    )
    rows = []
    for channel in Channel:
        row = counts.get(channel.value, {})
        p50, p95 = latencies.get(channel.value, (None, None))
        rows.append(
            ChannelDeliveries(
                channel=channel.value,
                label=str(channel.label),
                total=row.get("total", 0),
                delivered=row.get("delivered", 0),
                failed=row.get("failed", 0),
                latency_p50_s=p50,
                latency_p95_s=p95,
            )
        )
    return rows
