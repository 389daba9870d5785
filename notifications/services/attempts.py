"""Sending a queued delivery: one attempt, what the `notifications.deliver` task runs.

An attempt works in three steps and never holds a lock across the HTTP call: prepare (lock,
check still queued and not leased, render, take a lease, count the attempt), send (no
transaction), finish (lock, fenced by the attempt number: sent, retry later, or failed and
fallen back, see failures.py).
"""

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.utils import timezone

from common.logging import redact
from notifications.channels import channel_send
from notifications.errors import DeliveryErrorCode, DeliveryPermanentError, DeliveryRetryableError
from notifications.models import DELIVERY_STATES
from notifications.rendering import MASK, RenderedMessage, RenderError, base_context, render_pair
from notifications.services.delivery_rows import (
    SYSTEM,
    AttemptOutcome,
    S,
    message_lock,
    message_lock_existing,
)
from notifications.services.delivery_secrets import (
    delivery_secrets_discard_if_finished,
    delivery_secrets_load,
)
from notifications.services.failures import delivery_fail, delivery_mark_failed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Prepared:
    delivery_id: int
    attempt: int
    channel: str
    recipient: str
    message: RenderedMessage


def delivery_attempt(*, delivery_id: int) -> AttemptOutcome:
    """One send attempt (what the `notifications.deliver` task runs).

    Safe to run again at any time: a delivery that is no longer queued, or that another worker
    is sending, is left alone. `retry_in` (seconds) is set when a retryable error should be
    retried.
    """
    prepared = _attempt_prepare(delivery_id)
    if isinstance(prepared, AttemptOutcome):
        return prepared
    try:
        provider_id = channel_send(
            channel=prepared.channel, recipient=prepared.recipient, message=prepared.message
        )
    except DeliveryRetryableError as exc:
        return _attempt_retryable(prepared, exc)
    except DeliveryPermanentError as exc:
        return delivery_mark_failed(
            delivery_id=prepared.delivery_id,
            error=exc,
            attempt=prepared.attempt,
        )
    return delivery_mark_sent(
        delivery_id=prepared.delivery_id, provider_message_id=provider_id, attempt=prepared.attempt
    )


def _attempt_prepare(delivery_id: int) -> _Prepared | AttemptOutcome:
    with transaction.atomic():
        locked = message_lock(delivery_id)
        if locked is None:
            logger.warning("delivery %s does not exist", delivery_id)
            return AttemptOutcome(delivery_id, "missing")
        delivery, group = locked
        if delivery.status != S.QUEUED:
            return AttemptOutcome(delivery_id, delivery.status, detail="already finished")
        now = timezone.now()
        if delivery.lease_until and delivery.lease_until > now:
            return AttemptOutcome(delivery_id, delivery.status, detail="being sent elsewhere")
        if delivery.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
            return delivery_fail(
                delivery, group, error=f"retries spent after {delivery.attempts} attempts"
            )
        secrets = delivery_secrets_load(delivery)
        context = dict(delivery.context)
        if secrets is None:
            secrets = dict.fromkeys(context.get("secret_fields", []), MASK)
            context["secrets_unavailable"] = bool(secrets)
        try:
            outgoing, stored = render_pair(
                event=delivery.event,
                language=delivery.language,
                channel=delivery.channel,
                base=base_context(user=delivery.user, language=delivery.language),
                context=context,
                secrets=secrets,
            )
        except (RenderError, TemplateDoesNotExist, TemplateSyntaxError) as exc:
            error = DeliveryPermanentError(
                f"cannot render: {type(exc).__name__}", code=DeliveryErrorCode.RENDER
            )
            return delivery_fail(delivery, group, error=str(error))
        delivery.attempts += 1
        delivery.lease_until = now + timedelta(seconds=settings.NOTIFICATIONS_SEND_LEASE_SECONDS)
        delivery.next_attempt_at = delivery.lease_until
        delivery.first_attempt_at = delivery.first_attempt_at or now
        delivery.subject = stored.subject
        delivery.body = stored.text
        delivery.template = stored.template
        delivery.save(
            update_fields=[
                "attempts",
                "lease_until",
                "next_attempt_at",
                "first_attempt_at",
                "subject",
                "body",
                "template",
                "updated_at",
            ]
        )
        return _Prepared(
            delivery.pk, delivery.attempts, delivery.channel, delivery.recipient, outgoing
        )


def delivery_mark_sent(
    *, delivery_id: int, provider_message_id: str, attempt: int | None = None
) -> AttemptOutcome:
    """The provider accepted the message."""
    with transaction.atomic():
        delivery, _group_rows = message_lock_existing(delivery_id)
        if delivery.status != S.QUEUED:
            logger.warning(
                "delivery %s was already %s when attempt %s was accepted",
                delivery_id,
                delivery.status,
                attempt,
            )
            DELIVERY_STATES.note(
                delivery,
                actor=SYSTEM,
                reason=f"attempt {attempt} was also accepted: {provider_message_id}",
            )
            return AttemptOutcome(delivery_id, delivery.status, detail="already finished")
        now = timezone.now()
        DELIVERY_STATES.move(
            delivery,
            S.SENT,
            actor=SYSTEM,
            reason=f"accepted by {delivery.channel} in attempt {delivery.attempts}",
            extra_updates={
                "provider_message_id": provider_message_id[:255],
                "sent_at": now,
                "last_error": "",  # earlier attempts' errors stay in the history
                "lease_until": None,
                "next_attempt_at": None,
            },
        )
        delivery_secrets_discard_if_finished(delivery)
    logger.info(
        "delivery %s (%s via %s) sent in attempt %s",
        delivery_id,
        delivery.event,
        delivery.channel,
        delivery.attempts,
    )
    return AttemptOutcome(delivery_id, S.SENT)


def retry_delay(attempt: int, retry_after: float | None = None) -> int:
    """Exponential backoff with +-25% jitter, at least the provider's Retry-After, capped."""
    cap = settings.NOTIFICATIONS_RETRY_MAX_SECONDS
    delay = settings.NOTIFICATIONS_RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1)
    delay *= random.uniform(0.75, 1.25)  # noqa: S311 - jitter, not cryptography
    if retry_after:
        delay = max(delay, retry_after)
    return max(1, int(min(delay, cap)))


def _attempt_retryable(prepared: _Prepared, exc: DeliveryRetryableError) -> AttemptOutcome:
    with transaction.atomic():
        delivery, group = message_lock_existing(prepared.delivery_id)
        if delivery.status != S.QUEUED or delivery.attempts != prepared.attempt:
            return AttemptOutcome(delivery.pk, delivery.status, detail="superseded")
        error = redact(str(exc))[:1000]
        if delivery.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
            return delivery_fail(
                delivery, group, error=f"retries spent after {delivery.attempts} attempts: {error}"
            )
        countdown = retry_delay(delivery.attempts, exc.retry_after)
        delivery.last_error = error
        delivery.lease_until = None
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=countdown)
        delivery.save(update_fields=["last_error", "lease_until", "next_attempt_at", "updated_at"])
        DELIVERY_STATES.note(
            delivery,
            actor=SYSTEM,
            reason=f"attempt {delivery.attempts} failed, retry in {countdown} s: {error}",
        )
    logger.warning(
        "delivery %s attempt %s failed (%s); retry in %s s",
        delivery.pk,
        delivery.attempts,
        exc.code or "retryable",
        countdown,
    )
    return AttemptOutcome(delivery.pk, S.QUEUED, retry_in=countdown, detail=error)
