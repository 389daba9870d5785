"""Queueing a message: `notification_send` creates its deliveries, and the staff alerts about
messages that cannot be delivered (which are messages queued the same way).

`notification_send` runs in the caller's transaction: it creates one Delivery per recipient and
channel, unique per (event, event_key, recipient, channel), and enqueues `notifications.deliver`
for the new rows with delay_on_commit. A duplicate call creates and enqueues nothing.
"""

import json
import logging
import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from notifications.errors import NotificationError, NotificationErrorCode
from notifications.events import EventSpec, spec_for
from notifications.models import Audience, Delivery, Language, NotificationEvent
from notifications.services.credentials import credentials_reveal_create, credentials_scope
from notifications.services.delivery_rows import deliveries_queued, message_rows
from notifications.services.delivery_secrets import delivery_secrets_store
from notifications.services.recipients import Target, customer_targets, staff_targets

logger = logging.getLogger(__name__)

# Context keys that look like a secret: those belong in `secrets` (never stored in a Delivery).
SECRET_LIKE_KEY = re.compile(r"(?i)(password|passwd|secret|token|api_?key)")


def notification_send(
    *,
    event: str,
    user: User | None = None,
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
    _arguments_check(
        spec, event=event, user=user, event_key=event_key, staff=staff, language=language
    )
    secret_values = _secret_values(secrets, staff=staff)
    _context_check(spec, event=event, context=context, secret_values=secret_values)
    mode = _credentials_mode()
    stored_context = _stored_context(context, secret_values, mode=mode)
    audience, owner = (Audience.STAFF, None) if staff else (Audience.CUSTOMER, user)
    owner_id = owner.pk if owner else None
    already = list(message_rows(event, event_key, audience, owner_id))
    if already:
        # This occurrence was queued before: nothing new, even if the customer's address or
        # channels changed since (the recipient is part of the uniqueness key).
        return already
    if staff:
        targets = staff_targets(channels=channels)
    else:
        targets = customer_targets(
            user=_customer(user), event=event, channels=channels, language=language
        )
    with transaction.atomic():
        created = _deliveries_create(
            targets,
            event=event,
            event_key=event_key,
            audience=audience,
            owner=owner,
            context=stored_context,
        )
        if created and secret_values:
            _secrets_attach(created, secret_values, mode=mode, user=user, event_key=event_key)
        deliveries_queued(created, reason=f"queued for {event_key}")
        if not targets:
            no_targets_report(event=event, event_key=event_key, user=user, staff=staff)
        rows = list(message_rows(event, event_key, audience, owner_id))
    if created:
        logger.info(
            "notification %s (%s) queued: %s new deliveries", event, event_key, len(created)
        )
    return rows


# --- the steps of notification_send ---------------------------------------------------------


def _arguments_check(
    spec: EventSpec,
    *,
    event: str,
    user: User | None,
    event_key: str,
    staff: bool,
    language: str | None,
) -> None:
    """Programming errors of the caller (ValueError), before anything is read or written."""
    if staff != (spec.audience == Audience.STAFF):
        raise ValueError(f"{event} is a {spec.audience} message; staff={staff} does not match.")
    if not staff and user is None:
        raise ValueError("A customer message needs `user`.")
    if not event_key or len(event_key) > 200:
        raise ValueError("event_key must be 1..200 characters.")
    if language is not None and language not in Language.values:
        raise ValueError(f"language must be one of {', '.join(Language.values)}.")


def _customer(user: User | None) -> User:
    """The customer of a customer message (`_arguments_check` has refused one without)."""
    if user is None:
        raise ValueError("A customer message needs `user`.")
    return user


def _secret_values(secrets: dict | None, *, staff: bool) -> dict[str, str]:
    """The secrets as strings, empty ones left out."""
    secret_values = {str(k): str(v) for k, v in (secrets or {}).items() if v not in (None, "")}
    if staff and secret_values:
        raise ValueError("Staff alerts carry no secrets.")
    return secret_values


def _context_check(
    spec: EventSpec, *, event: str, context: dict, secret_values: dict[str, str]
) -> None:
    """No secret in the stored context; everything the event's templates require is there."""
    leaked = sorted(k for k in context if SECRET_LIKE_KEY.search(str(k)))
    if leaked:
        raise ValueError(f"Pass {', '.join(leaked)} in `secrets`, not in `context`.")
    missing = [k for k in spec.required if context.get(k) in (None, "") and k not in secret_values]
    if missing:
        raise NotificationError(
            f"{event} needs {', '.join(missing)} in its context.",
            code=NotificationErrorCode.CONTEXT_MISSING,
            extra={"missing": missing},
        )


def _credentials_mode() -> str:
    # Anything but an explicit "inline" keeps the secret out of the message.
    return "inline" if settings.CREDENTIALS_DELIVERY == "inline" else "link"


def _stored_context(context: dict, secret_values: dict[str, str], *, mode: str) -> dict:
    """The context as stored in each Delivery (JSON-safe), with what the templates need to
    say how the login details come (never the secrets themselves)."""
    stored_context = json.loads(json.dumps(context, cls=DjangoJSONEncoder))
    if secret_values:
        stored_context["credentials_mode"] = mode
        if mode == "link":
            expires = timezone.now() + timedelta(hours=settings.CREDENTIALS_LINK_TTL_HOURS)
            stored_context["credentials_expires_at"] = expires.strftime("%Y-%m-%d %H:%M UTC")
            stored_context["secret_fields"] = ["credentials_url"]
        else:
            stored_context["secret_fields"] = sorted(secret_values)
    return stored_context


def _deliveries_create(
    targets: list[Target],
    *,
    event: str,
    event_key: str,
    audience: str,
    owner: User | None,
    context: dict,
) -> list[Delivery]:
    """One delivery per target; returns the new ones (a concurrent send may have made some)."""
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
                "context": context,
                "next_attempt_at": timezone.now(),
            },
        )
        if was_created:
            created.append(delivery)
    return created


def _secrets_attach(
    created: list[Delivery],
    secret_values: dict[str, str],
    *,
    mode: str,
    user: User | None,
    event_key: str,
) -> None:
    """What the new deliveries render at send time: the secrets (inline) or a one-time link."""
    render_secrets = secret_values
    if mode == "link":
        ttl = timedelta(hours=settings.CREDENTIALS_LINK_TTL_HOURS)
        url = credentials_reveal_create(
            user=_customer(user),
            secrets=secret_values,
            ttl=ttl,
            scope=credentials_scope(event_key),
        )
        render_secrets = {"credentials_url": url}
    delivery_secrets_store(created, render_secrets)


def no_targets_report(*, event: str, event_key: str, user: Any, staff: bool) -> None:
    """Nobody to send the message to: log it, and alert staff about an essential one."""
    if staff:
        logger.error(
            "staff alert %s (%s) has no recipient: set ADMIN_EMAILS and/or ADMIN_PHONE",
            event,
            event_key,
        )
        return
    if spec_for(event).essential:
        logger.warning("customer %s cannot be reached for %s (%s)", user.pk, event, event_key)
        staff_alert_delivery_failed(
            original_event=event,
            event_key=event_key,
            user=user,
            reason="the customer has no email address or usable WhatsApp number",
            failures=[],
        )
    else:
        logger.info("no channel chosen by customer %s for %s", user.pk, event)


# --- staff alerts about messages --------------------------------------------------------------


def _admin_url(event_key: str) -> str:
    try:
        path = reverse("admin:notifications_delivery_changelist")
    except NoReverseMatch:
        path = "/admin/notifications/delivery/"
    return f"{settings.PORTAL_BASE_URL.rstrip('/')}{path}?q={event_key}"


def staff_alert_delivery_failed(
    *, original_event: str, event_key: str, user: Any, reason: str, failures: list[str]
) -> None:
    """Tell staff a customer message reached nobody (once per message: its event_key)."""
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


def staff_alert_channel_config(delivery: Delivery, error: str) -> None:
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
