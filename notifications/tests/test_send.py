"""notification_send: which deliveries are created, idempotency, preferences, staff alerts."""

import threading

import pytest
from django.core import mail
from django.db import connection, transaction

from common.errors import ApplicationError
from config.celery import app as celery_app
from notifications.events import sample_context
from notifications.models import (
    CredentialReveal,
    CustomerProfile,
    Delivery,
    DeliveryEvent,
    DeliverySecret,
)
from notifications.services import customer_event_channels_set, notification_send
from notifications.tests.conftest import CUSTOMER_NUMBER, PASSWORD, run_queued, wa_ok

pytestmark = pytest.mark.django_db


def send_ready(user, key="server_ready:deployment-12", **kwargs):
    return notification_send(
        event="server_ready",
        user=user,
        context=sample_context("server_ready"),
        event_key=key,
        secrets={"panel_password": PASSWORD},
        **kwargs,
    )


def test_one_delivery_per_channel_queued_and_enqueued_after_commit(
    wa_customer, mocked_responses, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        rows = send_ready(wa_customer)

    assert [(d.channel, d.recipient, d.status, d.language, d.attempts) for d in rows] == [
        ("whatsapp", CUSTOMER_NUMBER, "queued", "id", 0),
        ("email", "alice@example.com", "queued", "id", 0),
    ]
    assert {(d.audience, d.user_id, d.event_key) for d in rows} == {
        ("customer", wa_customer.pk, "server_ready:deployment-12")
    }
    assert len(callbacks) == 2
    assert len(mocked_responses.calls) == 0  # nothing is sent before commit
    assert mail.outbox == []
    for delivery in rows:
        assert list(delivery.events.values_list("from_status", "to_status")) == [("", "queued")]
        assert delivery.context["server_address"] == "203.0.113.10:25565"
        assert delivery.context["credentials_mode"] == "link"
        assert delivery.context["secret_fields"] == ["credentials_url"]
        assert delivery.body == ""
    assert CredentialReveal.objects.count() == 1
    assert DeliverySecret.objects.count() == 2


def test_duplicate_call_returns_the_same_rows_and_enqueues_nothing(
    wa_customer, django_capture_on_commit_callbacks
):
    first = send_ready(wa_customer)

    with django_capture_on_commit_callbacks() as callbacks:
        second = send_ready(wa_customer)

    assert [d.pk for d in second] == [d.pk for d in first]
    assert callbacks == []
    assert Delivery.objects.count() == 2
    assert DeliveryEvent.objects.count() == 2
    assert CredentialReveal.objects.count() == 1  # no second link either
    assert DeliverySecret.objects.count() == 2


def test_duplicate_event_after_sending_sends_nothing_again(wa_customer, mocked_responses):
    wa_ok(mocked_responses)
    send_ready(wa_customer)
    run_queued()

    send_ready(wa_customer)
    run_queued()

    assert len(mocked_responses.calls) == 1
    assert len(mail.outbox) == 1
    assert sorted(Delivery.objects.values_list("channel", "status")) == [
        ("email", "sent"),
        ("whatsapp", "sent"),
    ]


def test_same_event_key_after_an_email_change_sends_nothing_new(customer, mailoutbox):
    notification_send(
        event="provisioning_started",
        user=customer,
        context=sample_context("provisioning_started"),
        event_key="ps:deployment-1",
    )
    run_queued()
    customer.email = "alice.new@example.com"
    customer.save()
    notification_send(
        event="provisioning_started",
        user=customer,
        context=sample_context("provisioning_started"),
        event_key="ps:deployment-1",
    )
    run_queued()
    assert len(mailoutbox) == 1, [m.to for m in mailoutbox]


def test_another_occurrence_is_sent_again(wa_customer):
    send_ready(wa_customer, key="server_ready:deployment-12")
    send_ready(wa_customer, key="server_ready:deployment-13")
    assert Delivery.objects.count() == 4


def test_without_profile_email_in_english(customer):
    rows = send_ready(customer)
    assert [(d.channel, d.language) for d in rows] == [("email", "en")]


def test_per_event_choice_is_honoured(wa_customer):
    customer_event_channels_set(user=wa_customer, event="invoice_reminder", channels=["email"])
    rows = notification_send(
        event="invoice_reminder",
        user=wa_customer,
        context=sample_context("invoice_reminder"),
        event_key="invoice_reminder:INV-1:7d",
    )
    assert [d.channel for d in rows] == ["email"]
    rows = send_ready(wa_customer)  # not listed: the profile's defaults (both)
    assert [d.channel for d in rows] == ["whatsapp", "email"]


@pytest.mark.parametrize(
    ("enabled", "consent", "number"),
    [(False, True, CUSTOMER_NUMBER), (True, False, CUSTOMER_NUMBER), (True, True, "")],
    ids=["whatsapp-disabled", "no-consent", "no-number"],
)
def test_whatsapp_only_with_number_consent_and_enabled(
    customer, settings, enabled, consent, number
):
    settings.WHATSAPP_ENABLED = enabled
    CustomerProfile.objects.create(
        user=customer, whatsapp_number=number, whatsapp_consent=consent, notify_by_email=True
    )
    CustomerProfile.objects.filter(user=customer).update(
        event_channels={"server_ready": ["whatsapp", "email"]}
    )
    rows = send_ready(customer)
    assert [d.channel for d in rows] == ["email"]


def test_essential_message_reaches_a_customer_who_opted_out(wa_customer):
    customer_event_channels_set(user=wa_customer, event="server_ready", channels=[])
    customer_event_channels_set(user=wa_customer, event="invoice_reminder", channels=[])

    ready = send_ready(wa_customer)
    reminder = notification_send(
        event="invoice_reminder",
        user=wa_customer,
        context=sample_context("invoice_reminder"),
        event_key="invoice_reminder:INV-1:7d",
    )

    assert [d.channel for d in ready] == ["email"]
    assert reminder == []
    assert Delivery.objects.count() == 1


def test_unreachable_customer_is_reported_to_staff(user_factory):
    user = user_factory(username="no-email", email="")

    rows = send_ready(user)

    assert rows == []
    alert = Delivery.objects.get()
    assert (alert.event, alert.audience, alert.recipient, alert.user) == (
        "delivery_failed_staff",
        "staff",
        "ops@example.com",
        None,
    )
    assert alert.context["reason"] == "the customer has no email address or usable WhatsApp number"
    assert alert.context["event_key"] == "server_ready:deployment-12"
    assert not CredentialReveal.objects.exists()


def test_staff_alert_goes_to_admin_emails_and_admin_phone(settings):
    settings.ADMINS = [("Ops", "ops@example.com"), ("", "cto@example.com")]
    settings.ADMIN_PHONE = "+6281200000000"

    rows = notification_send(
        event="provisioning_failed_staff",
        staff=True,
        context=sample_context("provisioning_failed_staff"),
        event_key="provisioning_failed:run-7",
    )

    assert [(d.channel, d.recipient, d.audience, d.user, d.language) for d in rows] == [
        ("whatsapp", "+6281200000000", "staff", None, "en"),
        ("email", "ops@example.com", "staff", None, "en"),
        ("email", "cto@example.com", "staff", None, "en"),
    ]


def test_missing_context_is_refused_and_nothing_is_created(wa_customer):
    context = sample_context("server_ready")
    del context["server_address"]
    context["panel_url"] = ""

    with pytest.raises(ApplicationError) as caught:
        notification_send(
            event="server_ready",
            user=wa_customer,
            context=context,
            event_key="k",
            secrets={"panel_password": PASSWORD},
        )

    assert caught.value.code == "notification_context_missing"
    assert caught.value.extra == {"missing": ["panel_url", "server_address"]}
    assert not Delivery.objects.exists()
    assert not CredentialReveal.objects.exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"context": {**sample_context("server_ready"), "panel_password": "x"}}, "secrets"),
        ({"staff": True}, "staff"),
        ({"event": "provisioning_failed_staff"}, "staff"),
        ({"event": "no_such_event"}, "Unknown"),
        ({"event_key": ""}, "event_key"),
        ({"user": None}, "user"),
    ],
)
def test_programming_errors_are_refused(wa_customer, kwargs, message):
    arguments = {
        "event": "server_ready",
        "user": wa_customer,
        "context": sample_context("server_ready"),
        "event_key": "k",
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        notification_send(**arguments)
    assert not Delivery.objects.exists()


def test_event_channel_choice_needs_whatsapp_consent(customer):
    CustomerProfile.objects.create(user=customer)
    with pytest.raises(ApplicationError) as caught:
        customer_event_channels_set(user=customer, event="server_ready", channels=["whatsapp"])
    assert "channels" in caught.value.field_errors
    assert CustomerProfile.objects.get().event_channels == {}


@pytest.fixture
def eager_celery():
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_events_send_one_message(customer, settings, eager_celery):
    """Two saga workers report the same server ready at the same moment: one email."""
    settings.WHATSAPP_ENABLED = False
    barrier = threading.Barrier(2)
    errors = []

    def report():
        try:
            with transaction.atomic():
                barrier.wait(timeout=10)
                notification_send(
                    event="server_ready",
                    user=customer,
                    context=sample_context("server_ready"),
                    event_key="server_ready:deployment-99",
                    secrets={"panel_password": PASSWORD},
                )
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=report) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert list(Delivery.objects.values_list("channel", "status")) == [("email", "sent")]
    assert len(mail.outbox) == 1
    assert CredentialReveal.objects.count() == 1
