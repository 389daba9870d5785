"""Thin Celery tasks (queue "notifications"): they take ids and call one service.

`notifications.deliver` is safe to run twice (acks_late redelivery, the sweeper, a duplicate
enqueue): a delivery that is no longer queued, or is being sent by another worker, is left
alone. Retries are bounded by NOTIFICATIONS_MAX_ATTEMPTS, counted in the Delivery row (not in
the Celery message), with exponential backoff and jitter as the retry countdown.
"""

from celery import shared_task

from notifications.services import (
    deliveries_attempt_many,
    deliveries_resume_stalled,
    delivery_attempt,
    notification_secrets_purge,
)
from notifications.services.inbound import (
    whatsapp_command_answer,
    whatsapp_commands_resume_pending,
)


@shared_task(bind=True, name="notifications.deliver", acks_late=True, max_retries=None)
def deliver(self, delivery_id: int) -> str:
    outcome = delivery_attempt(delivery_id=delivery_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


@shared_task(name="notifications.deliver_many", acks_late=True)
def deliver_many(delivery_ids: list[int]) -> int:
    """The messages of one fleet-job batch: one task for the set, not one publish per message.
    Works for at most 60 s, then hands the rest to a new task; retryable failures are scheduled
    one by one with their backoff (as `deliver` would). Safe to run twice (see `deliver`)."""
    outcome = deliveries_attempt_many(delivery_ids=list(delivery_ids), max_seconds=60)
    for delivery_id, countdown in outcome.retries:
        deliver.apply_async((delivery_id,), countdown=countdown)
    if outcome.remaining:
        deliver_many.delay(outcome.remaining)
    return outcome.done


@shared_task(name="notifications.resume_stalled")
def resume_stalled() -> int:
    """Beat, every minute: re-enqueue queued deliveries and WhatsApp commands whose task was
    lost."""
    return deliveries_resume_stalled() + whatsapp_commands_resume_pending()


@shared_task(name="notifications.purge_secrets")
def purge_secrets() -> list[int]:
    """Beat, hourly: delete expired send-time secrets, wipe expired credential links."""
    return list(notification_secrets_purge())


@shared_task(name="notifications.whatsapp_command", acks_late=True)
def whatsapp_command(inbound_id: int) -> str:
    """Answer one message a customer sent to our WhatsApp number (enqueued by the webhook after
    commit). Safe to run twice: the row is locked and a handled message is left alone."""
    return whatsapp_command_answer(inbound_id=inbound_id)
