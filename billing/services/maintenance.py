"""Scheduled billing jobs. Each is safe to run twice or concurrently."""

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from billing.models import Order, OrderStatus
from billing.services.orders import order_cancel
from common.actors import Actor
from common.errors import ConflictError
from servers.capacity import capacity_holds_release_expired

logger = logging.getLogger(__name__)


def orders_cancel_stale_unpaid(*, now: dt.datetime | None = None) -> int:
    """Cancel orders still unpaid BILLING_UNPAID_ORDER_CANCEL_DAYS after they were placed, and
    mark the capacity holds of unpaid checkouts that expired released (they stopped counting
    at their expiry already; one UPDATE for all)."""
    capacity_holds_release_expired(now=now)
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.BILLING_UNPAID_ORDER_CANCEL_DAYS)
    stale_ids = list(
        Order.objects.filter(status=OrderStatus.PENDING, created_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    cancelled = 0
    actor = Actor.system("beat")
    for order_id in stale_ids:
        try:
            order_cancel(order_id=order_id, actor=actor, reason="Unpaid past the payment deadline")
            cancelled += 1
        except ConflictError:
            continue  # paid or cancelled meanwhile (or by a concurrent run)
    if cancelled:
        logger.info("cancelled %s stale unpaid orders", cancelled)
    return cancelled
