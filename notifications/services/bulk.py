"""Bulk sends for the fleet jobs: one customer message per occurrence for many customers at
once, in a constant number of statements, sent by ONE task per batch.

The rules are notification_send's (sending.py): idempotent per event key, channels from each
customer's profile, essential events always reach the customer; only the mechanics differ
(COPY through a staging table with ON CONFLICT DO NOTHING, no model instance per row).
"""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from common.bulk import copy_insert, copy_insert_ignore_conflicts
from notifications.errors import NotificationError, NotificationErrorCode
from notifications.events import spec_for
from notifications.models import Audience, CustomerProfile, Delivery, DeliveryEvent
from notifications.services.attempts import delivery_attempt
from notifications.services.delivery_rows import SYSTEM, S
from notifications.services.recipients import customer_targets
from notifications.services.sending import SECRET_LIKE_KEY, no_targets_report

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    """A customer as bulk sends need them (no model instance per message at fleet scale)."""

    pk: int
    email: str


@dataclass(frozen=True)
class BulkMessage:
    """One customer's occurrence of an event, for `notification_send_many`."""

    user: User | Recipient
    context: dict
    event_key: str


def notification_send_many(*, event: str, messages: list[BulkMessage]) -> int:
    """Queue `event` for many customers at once (the fleet jobs: renewal invoices, reminders,
    overdue notices). Same rules as `notification_send` (idempotent per event_key, channels
    from each profile, essential events always reach the customer), but in a constant number of
    statements whatever the count, and ONE send task for the whole set, enqueued after commit.
    No secrets: bulk messages never carry credentials. Returns how many deliveries were new.
    """
    spec = spec_for(event)
    if spec.audience != Audience.CUSTOMER:
        raise ValueError(f"{event} is a {spec.audience} message; bulk sends are for customers.")
    if not messages:
        return 0
    for message in messages:
        if not message.event_key or len(message.event_key) > 200:
            raise ValueError("event_key must be 1..200 characters.")
        leaked = sorted(k for k in message.context if SECRET_LIKE_KEY.search(str(k)))
        if leaked:
            raise ValueError(f"Bulk messages carry no secrets ({', '.join(leaked)}).")
        missing = [k for k in spec.required if message.context.get(k) in (None, "")]
        if missing:
            raise NotificationError(
                f"{event} needs {', '.join(missing)} in its context.",
                code=NotificationErrorCode.CONTEXT_MISSING,
                extra={"missing": missing, "event_key": message.event_key},
            )
    keys = [message.event_key for message in messages]
    # Occurrences queued before (even to an address that has changed since) send nothing new.
    already = set(
        Delivery.objects.filter(event=event, event_key__in=keys).values_list("event_key", flat=True)
    )
    pending = [m for m in messages if m.event_key not in already]
    if not pending:
        return 0
    profiles = {
        profile.user_id: profile
        for profile in CustomerProfile.objects.filter(user_id__in={m.user.pk for m in pending})
    }
    now = timezone.now()
    rows: list[dict[str, Any]] = []
    unreachable: list[BulkMessage] = []
    for message in pending:
        targets = customer_targets(
            user=message.user,
            event=event,
            channels=None,
            language=None,
            profile=profiles.get(message.user.pk),
        )
        if not targets:
            unreachable.append(message)
        rows.extend(
            {
                "event": event,
                "event_key": message.event_key,
                "recipient": target.recipient,
                "channel": target.channel,
                "audience": Audience.CUSTOMER,
                "user_id": message.user.pk,
                "language": target.language,
                "context": message.context,
                "next_attempt_at": now,
            }
            for target in targets
        )
    with transaction.atomic():
        # ON CONFLICT DO NOTHING: a concurrent send of the same occurrence wins, once; the ids
        # returned are exactly the rows this call created.
        created = sorted(copy_insert_ignore_conflicts(Delivery, rows, returning="event_key"))
        # The history rows DELIVERY_STATES.record_created would write, as plain COPY rows: the
        # machine builds a model instance per row, which this path avoids at fleet scale.
        copy_insert(
            DeliveryEvent,
            [
                {
                    "delivery_id": delivery_id,
                    "actor_id": None,
                    "actor_label": SYSTEM.label,
                    "from_status": "",
                    "to_status": S.QUEUED,
                    "reason": f"queued for {event_key}",
                }
                for delivery_id, event_key in created
            ],
        )
        if created:
            from notifications.tasks import deliver_many

            deliver_many.delay_on_commit([delivery_id for delivery_id, _key in created])
        for message in unreachable:  # rare: no e-mail and no usable WhatsApp number
            no_targets_report(
                event=event, event_key=message.event_key, user=message.user, staff=False
            )
    logger.info(
        "notification %s queued for %s occurrences: %s deliveries",
        event,
        len(pending),
        len(created),
    )
    return len(created)


def deliveries_attempt_many(*, delivery_ids: list[int], max_seconds: float) -> "BatchOutcome":
    """Send a batch of deliveries one after the other, for at most `max_seconds`; what is left
    (and what must be retried later) is returned for the caller to schedule."""

    deadline = time.monotonic() + max_seconds
    # The batch is in hand: the stalled-delivery sweeper leaves it alone meanwhile (it would
    # otherwise re-enqueue the rows not reached yet as one task each).
    Delivery.objects.filter(pk__in=delivery_ids, status=S.QUEUED).update(
        next_attempt_at=timezone.now() + timedelta(seconds=max_seconds)
    )
    retries: list[tuple[int, int]] = []
    done = 0
    for position, delivery_id in enumerate(delivery_ids):
        if time.monotonic() >= deadline:
            return BatchOutcome(done=done, retries=retries, remaining=delivery_ids[position:])
        outcome = delivery_attempt(delivery_id=delivery_id)
        if outcome.retry_in is not None:
            retries.append((delivery_id, outcome.retry_in))
        done += 1
    return BatchOutcome(done=done, retries=retries, remaining=[])


@dataclass(frozen=True)
class BatchOutcome:
    done: int
    retries: list[tuple[int, int]]
    remaining: list[int]
