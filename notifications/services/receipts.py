"""Provider receipts (sent, delivered, read, failed) applied to deliveries.

Receipts arrive late, twice and out of order: a delivery only moves forward (DELIVERY_PROGRESS),
and a receipt that no longer fits is recorded in the history, never an error (it would fail the
provider's whole webhook batch).
"""

import logging
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from common.actors import Actor
from common.logging import redact
from notifications.models import DELIVERY_PROGRESS, DELIVERY_STATES, Channel, Delivery
from notifications.services.delivery_rows import S, message_lock_existing
from notifications.services.delivery_secrets import delivery_secrets_discard_if_finished
from notifications.services.failures import delivery_fail

logger = logging.getLogger(__name__)


def delivery_status_apply(
    *,
    provider_message_id: str,
    status: str,
    at: datetime | None = None,
    error: str = "",
    channel: str = Channel.WHATSAPP,
) -> Delivery | None:
    """A provider receipt (sent/delivered/read/failed). Out-of-order safe: never goes back.

    A "failed" receipt fails the delivery and falls back to the next channel.
    """
    delivery_id = (
        Delivery.objects.filter(channel=channel, provider_message_id=provider_message_id)
        .values_list("pk", flat=True)
        .first()
    )
    if delivery_id is None:
        logger.info("receipt %s for an unknown %s message ignored", status, channel)
        return None
    actor = Actor.provider(channel, provider_message_id[:150])
    at = at or timezone.now()
    with transaction.atomic():
        delivery, group = message_lock_existing(delivery_id)
        if status == S.FAILED:
            if delivery.status == S.SENT:
                error = redact(error or "reported failed")[:1000]
                delivery_fail(
                    delivery, group, error=f"{channel} reported failed: {error}", actor=actor
                )
            elif delivery.status != S.FAILED:
                DELIVERY_STATES.note(
                    delivery,
                    actor=actor,
                    reason=f"late 'failed' receipt ignored: {redact(error)[:500]}",
                )
            return delivery
        if status not in DELIVERY_PROGRESS or delivery.status == S.FAILED:
            return delivery
        if DELIVERY_PROGRESS[status] <= DELIVERY_PROGRESS[delivery.status]:
            return delivery  # duplicate or older receipt
        if not DELIVERY_STATES.can(delivery, status):
            # E.g. a late receipt of a message staff have since put back in the queue: record
            # it, never fail the webhook batch over it.
            DELIVERY_STATES.note(
                delivery,
                actor=actor,
                reason=f"{channel} '{status}' receipt ignored in state {delivery.status}",
            )
            return delivery
        updates: dict[str, Any] = {f"{status}_at": at}
        if status == S.READ and delivery.delivered_at is None:
            updates["delivered_at"] = at
        DELIVERY_STATES.move(
            delivery, status, actor=actor, reason=f"{channel} receipt", extra_updates=updates
        )
        delivery_secrets_discard_if_finished(delivery)
    return delivery


def receipt_time(timestamp: str | int | None) -> datetime | None:
    """A provider's Unix timestamp as an aware datetime (None when it is not one)."""
    if timestamp is None:
        return None
    try:
        return datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
