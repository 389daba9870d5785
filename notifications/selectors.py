"""Reads: contact profiles, deliveries and their history, credential links."""

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.utils import timezone

from notifications.events import SPECS, EventSpec
from notifications.models import (
    Audience,
    CredentialReveal,
    CredentialsLinkState,
    CustomerProfile,
    Delivery,
    DeliveryEvent,
)


def customer_profile_get(*, user: User) -> CustomerProfile | None:
    return CustomerProfile.objects.filter(user=user).first()


def delivery_list(*, event_key: str | None = None, user: User | None = None) -> QuerySet[Delivery]:
    """Deliveries of one occurrence and/or one customer, oldest first."""
    rows = Delivery.objects.all()
    if event_key is not None:
        rows = rows.filter(event_key=event_key)
    if user is not None:
        rows = rows.filter(user=user)
    return rows.order_by("created_at", "pk")


def delivery_history(*, delivery_id: int) -> QuerySet[DeliveryEvent]:
    """What happened to message X: every status change and attempt, in order."""
    return DeliveryEvent.objects.filter(delivery_id=delivery_id).order_by("created_at", "pk")


def credentials_reveal_status(reveal: CredentialReveal | None) -> CredentialsLinkState:
    """Valid, used, revoked, expired or invalid (None) for one link: the one rule the reveal
    page and the open/consume services share."""
    if reveal is None:
        return CredentialsLinkState.INVALID
    if reveal.revealed_at is not None:
        return CredentialsLinkState.USED
    if reveal.revoked_at is not None:
        return CredentialsLinkState.REVOKED
    if reveal.expires_at <= timezone.now() or not reveal.secrets:
        return CredentialsLinkState.EXPIRED
    return CredentialsLinkState.VALID


def credentials_reveal_state(*, user: User, reveal_id: int | None) -> CredentialsLinkState:
    """State of an opened link kept in the session (invalid: none, not opened, or another
    user's)."""
    reveal = (
        CredentialReveal.objects.filter(pk=reveal_id, user=user, opened_at__isnull=False).first()
        if reveal_id
        else None
    )
    return credentials_reveal_status(reveal)


def customer_event_specs() -> list[EventSpec]:
    """The messages a customer can choose channels for, in a stable order (not the replies to
    what they wrote us: those go back where the question came from)."""
    return [
        spec for spec in SPECS.values() if spec.audience == Audience.CUSTOMER and not spec.reply
    ]


def customer_language_get(*, user: User) -> str | None:
    """The language saved on the customer's profile, or None without a profile."""
    return (
        CustomerProfile.objects.filter(user=user)
        .values_list("preferred_language", flat=True)
        .first()
    )
