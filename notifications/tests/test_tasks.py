"""The deliver task is safe to re-run; the sweeper and the purge job; staff retries."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from common.actors import Actor
from common.errors import ConflictError
from config.celery import app as celery_app
from notifications.events import sample_context
from notifications.models import CredentialReveal, Delivery, DeliveryEvent, DeliverySecret
from notifications.services import delivery_retry, notification_send
from notifications.tasks import deliver, purge_secrets, resume_stalled
from notifications.tests.conftest import PASSWORD, run, wa_error

pytestmark = pytest.mark.django_db


def send(user, key="order_received:1042"):
    (delivery,) = notification_send(
        event="order_received",
        user=user,
        context=sample_context("order_received"),
        event_key=key,
    )
    return delivery


def test_tasks_are_routed_to_the_notifications_queue():
    for task in (deliver, resume_stalled, purge_secrets):
        assert task.name.startswith("notifications.")
        route = celery_app.amqp.router.route({}, task.name)
        assert route["queue"].name == "notifications"
    assert deliver.acks_late is True


def test_rerun_of_a_sent_delivery_does_nothing(customer):
    delivery = send(customer)
    run(delivery)
    delivery.refresh_from_db()
    before = (delivery.updated_at, delivery.attempts, DeliveryEvent.objects.count())

    assert run(delivery) == "sent"

    delivery.refresh_from_db()
    assert (delivery.updated_at, delivery.attempts, DeliveryEvent.objects.count()) == before
    assert len(mail.outbox) == 1


def test_delivery_being_sent_elsewhere_is_left_alone(customer):
    delivery = send(customer)
    lease = timezone.now() + timedelta(seconds=60)
    Delivery.objects.filter(pk=delivery.pk).update(lease_until=lease, attempts=1)

    assert run(delivery) == "queued"

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.lease_until) == ("queued", 1, lease)
    assert mail.outbox == []


def test_expired_lease_is_taken_over(customer):
    delivery = send(customer)
    Delivery.objects.filter(pk=delivery.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1), attempts=1
    )

    assert run(delivery) == "sent"

    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert len(mail.outbox) == 1


def test_missing_delivery_is_reported_not_raised():
    assert run(987654) == "missing"


def test_queued_delivery_with_attempts_spent_fails_over(wa_only_customer, settings):
    (whatsapp,) = notification_send(
        event="order_received",
        user=wa_only_customer,
        context=sample_context("order_received"),
        event_key="order_received:1042",
    )
    Delivery.objects.filter(pk=whatsapp.pk).update(attempts=settings.NOTIFICATIONS_MAX_ATTEMPTS)

    assert run(whatsapp) == "failed"

    whatsapp.refresh_from_db()
    assert whatsapp.last_error == "retries spent after 3 attempts"
    assert Delivery.objects.get(channel="email").fallback_for_id == whatsapp.pk


def test_sweeper_re_enqueues_only_stalled_deliveries(customer, django_capture_on_commit_callbacks):
    now = timezone.now()
    stalled = send(customer, key="a")
    fresh = send(customer, key="b")
    leased = send(customer, key="c")
    Delivery.objects.filter(pk=stalled.pk).update(next_attempt_at=now - timedelta(minutes=10))
    Delivery.objects.filter(pk=leased.pk).update(
        next_attempt_at=now - timedelta(minutes=10), lease_until=now + timedelta(minutes=1)
    )

    with django_capture_on_commit_callbacks() as callbacks:
        assert resume_stalled.apply().get() == 1

    assert len(callbacks) == 1
    stalled.refresh_from_db()
    assert stalled.next_attempt_at >= now  # not picked again by the next sweep
    fresh.refresh_from_db()
    assert fresh.status == "queued"
    with django_capture_on_commit_callbacks() as callbacks:
        assert resume_stalled.apply().get() == 0
    assert callbacks == []


def test_purge_deletes_expired_secrets_only(customer, settings):
    settings.CREDENTIALS_DELIVERY = "inline"
    notification_send(
        event="server_ready",
        user=customer,
        context=sample_context("server_ready"),
        event_key="server_ready:1",
        secrets={"panel_password": PASSWORD},
    )
    settings.CREDENTIALS_DELIVERY = "link"
    notification_send(
        event="server_ready",
        user=customer,
        context=sample_context("server_ready"),
        event_key="server_ready:2",
        secrets={"panel_password": PASSWORD},
    )
    assert DeliverySecret.objects.count() == 2

    assert purge_secrets.apply().get() == [0, 0]
    later = timezone.now() + timedelta(hours=settings.CREDENTIALS_LINK_TTL_HOURS + 1)
    with time_machine.travel(later):
        assert purge_secrets.apply().get() == [2, 1]

    assert not DeliverySecret.objects.exists()
    assert CredentialReveal.objects.get().secrets is None
    assert Delivery.objects.count() == 2


def test_staff_retry_puts_a_failed_delivery_back(
    wa_only_customer, mocked_responses, staff, django_capture_on_commit_callbacks
):
    wa_error(mocked_responses, 400, 131026)
    (whatsapp,) = notification_send(
        event="order_received",
        user=wa_only_customer,
        context=sample_context("order_received"),
        event_key="order_received:1042",
    )
    run(whatsapp)

    with django_capture_on_commit_callbacks() as callbacks:
        delivery_retry(delivery_id=whatsapp.pk, actor=Actor.staff(staff))

    whatsapp.refresh_from_db()
    assert (whatsapp.status, whatsapp.attempts, whatsapp.failed_at) == ("queued", 0, None)
    event = whatsapp.events.last()
    assert (event.from_status, event.to_status, event.actor, event.actor_label) == (
        "failed",
        "queued",
        staff,
        "staff:staff@example.com",
    )
    assert event.reason == "retry requested after 1 attempts"
    assert len(callbacks) == 1


def test_retry_of_a_delivery_that_did_not_fail_is_refused(customer, staff):
    delivery = send(customer)
    before = list(Delivery.objects.values())

    with pytest.raises(ConflictError):
        delivery_retry(delivery_id=delivery.pk, actor=Actor.staff(staff))

    assert list(Delivery.objects.values()) == before
    assert DeliveryEvent.objects.count() == 1
