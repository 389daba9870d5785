"""Deliveries: queue a message, send it (with retries and fallback), apply provider receipts.

Flow:
1. `notification_send` (in the caller's transaction) creates one Delivery per recipient and
   channel, unique per (event, event_key, recipient, channel), and enqueues
   `notifications.deliver` for the new rows with delay_on_commit. A duplicate call creates and
   enqueues nothing.
2. `delivery_attempt` (the task) works in three steps and never holds a lock across the HTTP
   call: prepare (lock, check still queued and not leased, render, take a lease, count the
   attempt), send (no transaction), finish (lock, fenced by the attempt number: sent, retry
   later, or failed).
3. A permanent error or spent retries fails the delivery and falls back to the next channel
   (WhatsApp -> email); when every delivery of the message failed, staff get a
   `delivery_failed_staff` alert (never for a staff alert itself: that only logs an error).

Every status change goes through DELIVERY_TRANSITIONS with a DeliveryEvent row. The rows of one
message (same event, event_key, audience, customer) are locked together, in id order, whenever
one of them changes, so "did every channel fail?" is decided under a lock.
"""

import json
import logging
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q, QuerySet
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from common.actors import Actor
from common.errors import ConflictError
from common.logging import redact
from common.state import apply_transition
from notifications.channels import channel_send
from notifications.errors import (
    DeliveryError,
    DeliveryPermanentError,
    DeliveryRetryableError,
    NotificationError,
)
from notifications.events import spec_for
from notifications.models import (
    DELIVERY_PROGRESS,
    DELIVERY_TRANSITIONS,
    Audience,
    Channel,
    Delivery,
    DeliveryEvent,
    DeliverySecret,
    DeliveryStatus,
    Language,
    NotificationEvent,
)
from notifications.rendering import MASK, RenderedMessage, RenderError, base_context, render_pair
from notifications.services.credentials import credentials_reveal_create, credentials_scope
from notifications.services.recipients import (
    CHANNEL_ORDER,
    Target,
    customer_targets,
    staff_targets,
)

logger = logging.getLogger(__name__)

SYSTEM = Actor.system("notifications")
S = DeliveryStatus
# Fallback order: WhatsApp first (when allowed), then email.
_SECRET_LIKE_KEY = re.compile(r"(?i)(password|passwd|secret|token|api_?key)")


@dataclass(frozen=True)
class AttemptOutcome:
    delivery_id: int
    status: str
    retry_in: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class _Prepared:
    delivery_id: int
    attempt: int
    channel: str
    recipient: str
    message: RenderedMessage


# --- queueing -------------------------------------------------------------------------------


def notification_send(
    *,
    event: str,
    user: AbstractBaseUser | None = None,
    context: dict,
    event_key: str,
    staff: bool = False,
    secrets: dict | None = None,
    channels: list[str] | None = None,
    language: str | None = None,
) -> list[Delivery]:
    """Queue `event` for the customer `user` (or for staff with staff=True).

    Call it inside the transaction that records what happened (the rows commit with it; the
    send task is enqueued after commit). `event_key` identifies this occurrence: a second call
    with the same event and key creates and enqueues nothing and returns the existing rows.
    `context` holds what the templates need (notifications.events); `secrets` (e.g.
    {"panel_username", "panel_password"}) are never stored in a Delivery: CREDENTIALS_DELIVERY
    =link puts a one-time reveal link in the message, =inline renders them into the outgoing
    message only (the stored body shows ********). `channels` restricts the channels; `language`
    overrides the customer's.
    """
    spec = spec_for(event)
    if staff != (spec.audience == Audience.STAFF):
        raise ValueError(f"{event} is a {spec.audience} message; staff={staff} does not match.")
    if not staff and user is None:
        raise ValueError("A customer message needs `user`.")
    if not event_key or len(event_key) > 200:
        raise ValueError("event_key must be 1..200 characters.")
    if language is not None and language not in Language.values:
        raise ValueError(f"language must be one of {', '.join(Language.values)}.")
    secret_values = {str(k): str(v) for k, v in (secrets or {}).items() if v not in (None, "")}
    if staff and secret_values:
        raise ValueError("Staff alerts carry no secrets.")
    leaked = sorted(k for k in context if _SECRET_LIKE_KEY.search(str(k)))
    if leaked:
        raise ValueError(f"Pass {', '.join(leaked)} in `secrets`, not in `context`.")
    missing = [k for k in spec.required if context.get(k) in (None, "") and k not in secret_values]
    if missing:
        raise NotificationError(
            f"{event} needs {', '.join(missing)} in its context.",
            code="notification_context_missing",
            extra={"missing": missing},
        )
    stored_context = json.loads(json.dumps(context, cls=DjangoJSONEncoder))
    # Anything but an explicit "inline" keeps the secret out of the message.
    mode = "inline" if settings.CREDENTIALS_DELIVERY == "inline" else "link"
    if secret_values:
        stored_context["credentials_mode"] = mode
        if mode == "link":
            expires = timezone.now() + timedelta(hours=settings.CREDENTIALS_LINK_TTL_HOURS)
            stored_context["credentials_expires_at"] = expires.strftime("%Y-%m-%d %H:%M UTC")
            stored_context["secret_fields"] = ["credentials_url"]
        else:
            stored_context["secret_fields"] = sorted(secret_values)
    audience, owner = (Audience.STAFF, None) if staff else (Audience.CUSTOMER, user)
    already = list(_group(event, event_key, audience, owner.pk if owner else None))
    if already:
        # This occurrence was queued before: nothing new, even if the customer's address or
        # channels changed since (the recipient is part of the uniqueness key).
        return already
    if staff:
        targets = staff_targets(channels=channels)
    else:
        targets = customer_targets(user=user, event=event, channels=channels, language=language)
    with transaction.atomic():
        created = []
        for target in targets:
            delivery, was_created = Delivery.objects.get_or_create(
                event=event,
                event_key=event_key,
                recipient=target.recipient,
                channel=target.channel,
                defaults={
                    "audience": audience,
                    "user": owner,
                    "language": target.language,
                    "context": stored_context,
                    "next_attempt_at": timezone.now(),
                },
            )
            if was_created:
                created.append(delivery)
        if created and secret_values:
            render_secrets = secret_values
            if mode == "link":
                ttl = timedelta(hours=settings.CREDENTIALS_LINK_TTL_HOURS)
                url = credentials_reveal_create(
                    user=user,
                    secrets=secret_values,
                    ttl=ttl,
                    scope=credentials_scope(event_key),
                )
                render_secrets = {"credentials_url": url}
            _secret_store(created, render_secrets)
        _queued(created, reason=f"queued for {event_key}")
        if not targets:
            _no_targets(event=event, event_key=event_key, user=user, staff=staff)
        rows = list(_group(event, event_key, audience, owner.pk if owner else None))
    if created:
        logger.info(
            "notification %s (%s) queued: %s new deliveries", event, event_key, len(created)
        )
    return rows


def _no_targets(*, event: str, event_key: str, user: Any, staff: bool) -> None:
    if staff:
        logger.error(
            "staff alert %s (%s) has no recipient: set ADMIN_EMAILS and/or ADMIN_PHONE",
            event,
            event_key,
        )
        return
    if spec_for(event).essential:
        logger.warning("customer %s cannot be reached for %s (%s)", user.pk, event, event_key)
        _staff_alert(
            original_event=event,
            event_key=event_key,
            user=user,
            reason="the customer has no email address or usable WhatsApp number",
            failures=[],
        )
    else:
        logger.info("no channel chosen by customer %s for %s", user.pk, event)


def _group(event: str, event_key: str, audience: str, user_id: int | None) -> QuerySet[Delivery]:
    rows = Delivery.objects.filter(event=event, event_key=event_key, audience=audience)
    rows = rows.filter(user_id=user_id) if user_id is not None else rows.filter(user__isnull=True)
    return rows.order_by("pk")


def _lock(delivery_id: int) -> tuple[Delivery, list[Delivery]] | None:
    """Lock the delivery and the other rows of its message (in id order: no deadlock)."""
    head = (
        Delivery.objects.filter(pk=delivery_id)
        .values("event", "event_key", "audience", "user_id")
        .first()
    )
    if head is None:
        return None
    group = list(
        _group(head["event"], head["event_key"], head["audience"], head["user_id"])
        .select_for_update(of=("self",))
        .select_related("user")
    )
    delivery = next((row for row in group if row.pk == delivery_id), None)
    if delivery is None:  # its customer was deleted meanwhile
        delivery = Delivery.objects.select_for_update().get(pk=delivery_id)
        group = [delivery]
    return delivery, group


def _queued(deliveries: list[Delivery], *, reason: str, actor: Actor = SYSTEM) -> None:
    """History rows for new deliveries, and their send tasks enqueued after commit."""
    DeliveryEvent.objects.bulk_create(
        DeliveryEvent(
            delivery=delivery,
            actor=actor.user,
            actor_label=actor.label,
            from_status="",
            to_status=S.QUEUED,
            reason=reason,
        )
        for delivery in deliveries
    )
    from notifications.tasks import deliver

    for delivery in deliveries:
        deliver.delay_on_commit(delivery.pk)


def _note(delivery: Delivery, reason: str, actor: Actor = SYSTEM) -> None:
    """A history row without a status change (a retried attempt, an ignored receipt)."""
    DeliveryEvent.objects.create(
        delivery=delivery,
        actor=actor.user,
        actor_label=actor.label,
        from_status=delivery.status,
        to_status=delivery.status,
        reason=reason[:2000],
    )


def _secret_store(deliveries: list[Delivery], values: dict[str, str]) -> None:
    """Encrypted send-time secrets for new deliveries."""
    expires_at = timezone.now() + timedelta(hours=settings.NOTIFICATIONS_SECRET_RETENTION_HOURS)
    DeliverySecret.objects.bulk_create(
        DeliverySecret(delivery=delivery, values=json.dumps(values), expires_at=expires_at)
        for delivery in deliveries
    )


def _secret_load(delivery: Delivery) -> dict[str, str] | None:
    row = DeliverySecret.objects.filter(delivery=delivery, expires_at__gt=timezone.now()).first()
    return json.loads(row.values) if row is not None else None


def _finished(delivery: Delivery) -> bool:
    """Nothing more can happen that needs the secret (WhatsApp may still report "failed")."""
    if delivery.status == S.FAILED:
        return True
    if delivery.channel == Channel.EMAIL:
        return delivery.status == S.SENT
    return delivery.status in (S.DELIVERED, S.READ)


def _secret_discard_if_finished(delivery: Delivery) -> None:
    if _finished(delivery):
        DeliverySecret.objects.filter(delivery=delivery).delete()


# --- sending --------------------------------------------------------------------------------


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
        locked = _lock(delivery_id)
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
            return _fail(delivery, group, error=f"retries spent after {delivery.attempts} attempts")
        secrets = _secret_load(delivery)
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
            error = DeliveryPermanentError(f"cannot render: {type(exc).__name__}", code="render")
            return _fail(delivery, group, error=str(error))
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
        delivery, _group_rows = _lock(delivery_id)
        if delivery.status != S.QUEUED:
            logger.warning(
                "delivery %s was already %s when attempt %s was accepted",
                delivery_id,
                delivery.status,
                attempt,
            )
            _note(delivery, f"attempt {attempt} was also accepted: {provider_message_id}")
            return AttemptOutcome(delivery_id, delivery.status, detail="already finished")
        now = timezone.now()
        apply_transition(
            delivery,
            table=DELIVERY_TRANSITIONS,
            to_status=S.SENT,
            actor=SYSTEM,
            reason=f"accepted by {delivery.channel} in attempt {delivery.attempts}",
            event_model=DeliveryEvent,
            event_fk="delivery",
            extra_updates={
                "provider_message_id": provider_message_id[:255],
                "sent_at": now,
                "last_error": "",  # earlier attempts' errors stay in the history
                "lease_until": None,
                "next_attempt_at": None,
            },
        )
        _secret_discard_if_finished(delivery)
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
        delivery, group = _lock(prepared.delivery_id)
        if delivery.status != S.QUEUED or delivery.attempts != prepared.attempt:
            return AttemptOutcome(delivery.pk, delivery.status, detail="superseded")
        error = redact(str(exc))[:1000]
        if delivery.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS:
            return _fail(
                delivery, group, error=f"retries spent after {delivery.attempts} attempts: {error}"
            )
        countdown = retry_delay(delivery.attempts, exc.retry_after)
        delivery.last_error = error
        delivery.lease_until = None
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=countdown)
        delivery.save(update_fields=["last_error", "lease_until", "next_attempt_at", "updated_at"])
        _note(delivery, f"attempt {delivery.attempts} failed, retry in {countdown} s: {error}")
    logger.warning(
        "delivery %s attempt %s failed (%s); retry in %s s",
        delivery.pk,
        delivery.attempts,
        exc.code or "retryable",
        countdown,
    )
    return AttemptOutcome(delivery.pk, S.QUEUED, retry_in=countdown, detail=error)


def delivery_mark_failed(
    *,
    delivery_id: int,
    error: DeliveryError | str,
    attempt: int | None = None,
    actor: Actor = SYSTEM,
) -> AttemptOutcome:
    """This channel will not deliver the message: fail it and fall back to the next channel."""
    with transaction.atomic():
        delivery, group = _lock(delivery_id)
        if delivery.status not in (S.QUEUED, S.SENT) or (
            attempt is not None and delivery.attempts != attempt
        ):
            return AttemptOutcome(delivery_id, delivery.status, detail="superseded")
        outcome = _fail(delivery, group, error=redact(str(error))[:1000], actor=actor)
        if isinstance(error, DeliveryPermanentError) and error.alert_staff:
            _channel_config_alert(delivery, str(error))
    return outcome


def _fail(
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
    apply_transition(
        delivery,
        table=DELIVERY_TRANSITIONS,
        to_status=S.FAILED,
        actor=actor,
        reason=f"{error}{outcome}"[:2000],
        event_model=DeliveryEvent,
        event_fk="delivery",
        extra_updates={
            "failed_at": timezone.now(),
            "last_error": error,
            "lease_until": None,
            "next_attempt_at": None,
        },
    )
    _secret_discard_if_finished(delivery)
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
            _staff_alert(
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
                secret = _secret_load(delivery)
                if secret is not None:
                    _secret_store([row], secret)
                _queued([row], reason=f"fallback for {delivery.channel} delivery {delivery.pk}")
                return row, None
            if row.status != S.FAILED:
                return None, row
    return None, None


def _admin_url(event_key: str) -> str:
    try:
        path = reverse("admin:notifications_delivery_changelist")
    except NoReverseMatch:
        path = "/admin/notifications/delivery/"
    return f"{settings.PORTAL_BASE_URL.rstrip('/')}{path}?q={event_key}"


def _staff_alert(
    *, original_event: str, event_key: str, user: Any, reason: str, failures: list[str]
) -> None:
    notification_send(
        event=NotificationEvent.DELIVERY_FAILED_STAFF,
        staff=True,
        event_key=f"delivery_failed:{original_event}:{event_key}:{user.pk if user else '-'}"[:200],
        context={
            "original_event": original_event,
            "event_key": event_key,
            "reason": reason,
            "admin_url": _admin_url(event_key),
            "customer_email": getattr(user, "email", "") if user else "",
            "failures": failures,
        },
    )


def _channel_config_alert(delivery: Delivery, error: str) -> None:
    """The channel refused our credentials/configuration: tell staff once an hour."""
    if delivery.audience == Audience.STAFF:
        logger.error("channel %s refused a staff alert: %s", delivery.channel, error)
        return
    hour = timezone.now().strftime("%Y%m%d%H")
    notification_send(
        event=NotificationEvent.DELIVERY_FAILED_STAFF,
        staff=True,
        event_key=f"channel_config:{delivery.channel}:{hour}",
        context={
            "original_event": delivery.event,
            "event_key": delivery.event_key,
            "reason": f"{delivery.channel} refused our configuration or credentials: {error}",
            "admin_url": _admin_url(delivery.event_key),
        },
    )


# --- receipts, staff actions, housekeeping --------------------------------------------------


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
        delivery, group = _lock(delivery_id)
        if status == S.FAILED:
            if delivery.status == S.SENT:
                error = redact(error or "reported failed")[:1000]
                _fail(delivery, group, error=f"{channel} reported failed: {error}", actor=actor)
            elif delivery.status != S.FAILED:
                _note(delivery, f"late 'failed' receipt ignored: {redact(error)[:500]}", actor)
            return delivery
        if status not in DELIVERY_PROGRESS or delivery.status == S.FAILED:
            return delivery
        if DELIVERY_PROGRESS[status] <= DELIVERY_PROGRESS[delivery.status]:
            return delivery  # duplicate or older receipt
        if not DELIVERY_TRANSITIONS.can(delivery.status, status):
            # E.g. a late receipt of a message staff have since put back in the queue: record
            # it, never fail the webhook batch over it.
            _note(
                delivery, f"{channel} '{status}' receipt ignored in state {delivery.status}", actor
            )
            return delivery
        updates: dict[str, Any] = {f"{status}_at": at}
        if status == S.READ and delivery.delivered_at is None:
            updates["delivered_at"] = at
        apply_transition(
            delivery,
            table=DELIVERY_TRANSITIONS,
            to_status=status,
            actor=actor,
            reason=f"{channel} receipt",
            event_model=DeliveryEvent,
            event_fk="delivery",
            extra_updates=updates,
        )
        _secret_discard_if_finished(delivery)
    return delivery


def delivery_retry(*, delivery_id: int, actor: Actor) -> Delivery:
    """Staff put a failed delivery back in the queue (attempts start again)."""
    with transaction.atomic():
        locked = _lock(delivery_id)
        if locked is None:
            raise ConflictError("No such delivery.", code="not_found")
        delivery, _group_rows = locked
        if delivery.status != S.FAILED:
            raise ConflictError(
                f"Delivery {delivery_id} is {delivery.status}; only failed ones are retried.",
                code="not_failed",
            )
        apply_transition(
            delivery,
            table=DELIVERY_TRANSITIONS,
            to_status=S.QUEUED,
            actor=actor,
            reason=f"retry requested after {delivery.attempts} attempts",
            event_model=DeliveryEvent,
            event_fk="delivery",
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


def notification_secrets_purge() -> tuple[int, int]:
    """Delete expired send-time secrets and wipe expired reveal links: (secrets, links)."""
    from notifications.models import CredentialReveal

    now = timezone.now()
    secrets_deleted, _ = DeliverySecret.objects.filter(expires_at__lte=now).delete()
    links_wiped = CredentialReveal.objects.filter(
        expires_at__lte=now, secrets__isnull=False
    ).update(secrets=None)
    return secrets_deleted, links_wiped


def receipt_time(timestamp: str | int | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(timestamp), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
