"""A delivery that will not arrive: fail it, fall back to the next channel (WhatsApp -> email),
and when every delivery of the message failed, alert staff (`delivery_failed_staff`; never for
a staff alert itself: that only logs an error)."""

import logging

from django.db import transaction
from django.utils import timezone

from common.actors import Actor
from common.logging import redact
from notifications.errors import DeliveryError, DeliveryPermanentError
from notifications.models import DELIVERY_STATES, Audience, Channel, Delivery
from notifications.services.delivery_rows import (
    SYSTEM,
    AttemptOutcome,
    S,
    deliveries_queued,
    message_lock_existing,
)
from notifications.services.delivery_secrets import (
    delivery_secrets_discard_if_finished,
    delivery_secrets_load,
    delivery_secrets_store,
)
from notifications.services.recipients import CHANNEL_ORDER, Target, staff_targets
from notifications.services.sending import (
    staff_alert_channel_config,
    staff_alert_delivery_failed,
)

logger = logging.getLogger(__name__)


def delivery_mark_failed(
    *,
    delivery_id: int,
    error: DeliveryError | str,
    attempt: int | None = None,
    actor: Actor = SYSTEM,
) -> AttemptOutcome:
    """This channel will not deliver the message: fail it and fall back to the next channel."""
    with transaction.atomic():
        delivery, group = message_lock_existing(delivery_id)
        if delivery.status not in (S.QUEUED, S.SENT) or (
            attempt is not None and delivery.attempts != attempt
        ):
            return AttemptOutcome(delivery_id, delivery.status, detail="superseded")
        outcome = delivery_fail(delivery, group, error=redact(str(error))[:1000], actor=actor)
        if isinstance(error, DeliveryPermanentError) and error.alert_staff:
            staff_alert_channel_config(delivery, str(error))
    return outcome


def delivery_fail(
    delivery: Delivery, group: list[Delivery], *, error: str, actor: Actor = SYSTEM
) -> AttemptOutcome:
    """Mark failed (rows locked by the caller), fall back, alert staff if nothing is left."""
    fallback, covered_by = _fall_back(delivery, group)
    if fallback is not None:
        outcome = f"; fell back to {fallback.channel} (delivery {fallback.pk})"
    elif covered_by is not None:
        outcome = f"; {covered_by.channel} delivery {covered_by.pk} carries the message"
    else:
        outcome = "; no channel left"
    DELIVERY_STATES.move(
        delivery,
        S.FAILED,
        actor=actor,
        reason=f"{error}{outcome}"[:2000],
        extra_updates={
            "failed_at": timezone.now(),
            "last_error": error,
            "lease_until": None,
            "next_attempt_at": None,
        },
    )
    delivery_secrets_discard_if_finished(delivery)
    logger.warning(
        "delivery %s (%s via %s) failed%s", delivery.pk, delivery.event, delivery.channel, outcome
    )
    if fallback is None and covered_by is None and all(r.status == S.FAILED for r in group):
        if delivery.audience == Audience.STAFF:
            logger.error(
                "staff alert %s (%s) could not be delivered on any channel",
                delivery.event,
                delivery.event_key,
            )
        else:
            staff_alert_delivery_failed(
                original_event=delivery.event,
                event_key=delivery.event_key,
                user=delivery.user,
                reason="every channel failed",
                failures=[f"{r.channel} {r.recipient}: {r.last_error}" for r in group],
            )
    return AttemptOutcome(delivery.pk, S.FAILED, detail=error)


def _fall_back(
    delivery: Delivery, group: list[Delivery]
) -> tuple[Delivery | None, Delivery | None]:
    """(new fallback delivery, or an existing live delivery on a later channel)."""
    later = CHANNEL_ORDER[CHANNEL_ORDER.index(delivery.channel) + 1 :]
    for row in group:
        if row.pk != delivery.pk and row.channel in later and row.status != S.FAILED:
            return None, row
    for channel in later:
        if delivery.audience == Audience.STAFF:
            targets = staff_targets(channels=[channel])
        elif delivery.user is not None and channel == Channel.EMAIL and delivery.user.email:
            targets = [Target(Channel.EMAIL, delivery.user.email, delivery.language)]
        else:
            targets = []
        for target in targets:
            row, created = Delivery.objects.get_or_create(
                event=delivery.event,
                event_key=delivery.event_key,
                recipient=target.recipient,
                channel=target.channel,
                defaults={
                    "audience": delivery.audience,
                    "user": delivery.user,
                    "language": delivery.language,
                    "context": delivery.context,
                    "fallback_for": delivery,
                    "next_attempt_at": timezone.now(),
                },
            )
            if created:
                secret = delivery_secrets_load(delivery)
                if secret is not None:
                    delivery_secrets_store([row], secret)
                deliveries_queued(
                    [row], reason=f"fallback for {delivery.channel} delivery {delivery.pk}"
                )
                return row, None
            if row.status != S.FAILED:
                return None, row
    return None, None
