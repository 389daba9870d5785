"""Sending again: staff put a failed delivery back in the queue, and the sweeper re-enqueues
queued deliveries whose task was lost."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from common.actors import Actor
from common.errors import ConflictError
from notifications.errors import NotificationErrorCode
from notifications.models import DELIVERY_STATES, Delivery
from notifications.services.delivery_rows import S, message_lock

logger = logging.getLogger(__name__)


def delivery_retry(*, delivery_id: int, actor: Actor) -> Delivery:
    """Staff put a failed delivery back in the queue (attempts start again)."""
    with transaction.atomic():
        locked = message_lock(delivery_id)
        if locked is None:
            raise ConflictError("No such delivery.", code=NotificationErrorCode.NOT_FOUND)
        delivery, _group_rows = locked
        if delivery.status != S.FAILED:
            raise ConflictError(
                f"Delivery {delivery_id} is {delivery.status}; only failed ones are retried.",
                code=NotificationErrorCode.NOT_FAILED,
            )
        DELIVERY_STATES.move(
            delivery,
            S.QUEUED,
            actor=actor,
            reason=f"retry requested after {delivery.attempts} attempts",
            extra_updates={
                "attempts": 0,
                "failed_at": None,
                "lease_until": None,
                "next_attempt_at": timezone.now(),
                # Receipts of the earlier send must not match the new one.
                "provider_message_id": "",
            },
        )
        from notifications.tasks import deliver

        deliver.delay_on_commit(delivery.pk)
    return delivery


def deliveries_resume_stalled(*, limit: int = 500) -> int:
    """Re-enqueue queued deliveries long past their due time (lost task, killed worker)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.NOTIFICATIONS_STALLED_AFTER_SECONDS)
    with transaction.atomic():
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True)
            .filter(status=S.QUEUED, next_attempt_at__lt=cutoff)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        Delivery.objects.filter(pk__in=ids).update(next_attempt_at=now)
        from notifications.tasks import deliver

        for delivery_id in ids:
            deliver.delay_on_commit(delivery_id)
    if ids:
        logger.warning("re-enqueued %s stalled deliveries", len(ids))
    return len(ids)
