"""Invariants the database keeps for deliveries, templates and credential links."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.actors import Actor
from common.errors import ConflictError
from notifications.models import (
    DELIVERY_STATES,
    DELIVERY_TRANSITIONS,
    CredentialReveal,
    Delivery,
    DeliveryEvent,
    NotificationTemplate,
)

pytestmark = pytest.mark.django_db


def make(**overrides):
    fields = {
        "event": "order_received",
        "event_key": "order_received:1",
        "audience": "customer",
        "channel": "email",
        "recipient": "alice@example.com",
    }
    fields.update(overrides)
    return Delivery.objects.create(**fields)


@pytest.mark.parametrize(
    "overrides",
    [
        {"status": "bounced"},
        {"channel": "sms"},
        {"event": "birthday"},
        {"audience": "robots"},
        {"attempts": -1},
        {"status": "sent"},  # without sent_at
        {"status": "failed"},  # without failed_at
    ],
)
def test_invalid_rows_are_refused(overrides):
    with pytest.raises(IntegrityError), transaction.atomic():
        make(**overrides)
    assert not Delivery.objects.exists()


def test_one_delivery_per_event_key_recipient_and_channel(customer):
    make()
    with pytest.raises(IntegrityError), transaction.atomic():
        make()
    make(channel="whatsapp", recipient="+6281234567890")
    make(event="invoice_created")  # another event may reuse a key
    assert Delivery.objects.count() == 3


def test_staff_delivery_has_no_customer(customer):
    with pytest.raises(IntegrityError), transaction.atomic():
        make(audience="staff", user=customer)


def test_provider_message_id_is_unique_per_channel():
    make(provider_message_id="wamid.1", status="sent", sent_at=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        make(
            event_key="other",
            provider_message_id="wamid.1",
            status="sent",
            sent_at=timezone.now(),
        )


def test_receipts_never_move_a_delivery_back():
    delivery = make(status="read", sent_at=timezone.now())
    with pytest.raises(ConflictError):
        DELIVERY_STATES.move(delivery, "delivered", actor=Actor.system(), reason="late receipt")
    assert DELIVERY_TRANSITIONS.can("failed", "queued")
    assert not DELIVERY_TRANSITIONS.can("sent", "queued")
    assert not DeliveryEvent.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"channel": "email", "subject": ""},
        {"channel": "whatsapp", "body_html": "<p>x</p>"},
        {"channel": "fax"},
    ],
)
def test_invalid_templates_are_refused(fields):
    values = {"event": "order_received", "language": "en", "body": "b", "subject": "s"}
    values.update(fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        NotificationTemplate.objects.create(**values)


def test_revealed_link_keeps_no_secret(customer):
    now = timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        CredentialReveal.objects.create(
            user=customer,
            token_hash="a" * 64,
            secrets='{"panel_password": "x"}',
            expires_at=now + timedelta(hours=1),
            revealed_at=now,
        )
