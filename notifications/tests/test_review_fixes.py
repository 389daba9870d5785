"""Regression tests for defects found in review: stale receipts after a retry, WhatsApp read
timeouts, non-ASCII signatures, repeated event keys after an address change."""

import pytest
import requests
from django.urls import reverse

from common.actors import Actor
from notifications.events import sample_context
from notifications.models import Delivery
from notifications.services import delivery_retry, notification_send
from notifications.tests.conftest import WA_URL, run_queued, wa_ok
from notifications.tests.test_webhook import MESSAGE_ID, post, receipt

pytestmark = [pytest.mark.django_db, pytest.mark.urls("notifications.tests.urls")]


def _send(user):
    notification_send(
        event="payment_received",
        user=user,
        context=sample_context("payment_received"),
        event_key="pay:1",
    )


def test_stale_receipt_after_staff_retry(wa_only_customer, mocked_responses, client, staff):
    wa_ok(mocked_responses, MESSAGE_ID)
    _send(wa_only_customer)
    run_queued()
    wa = Delivery.objects.get(channel="whatsapp")
    assert wa.status == "sent"
    post(client, receipt("failed", errors=[{"code": 131026, "title": "undeliverable"}]))
    wa.refresh_from_db()
    assert wa.status == "failed"
    delivery_retry(delivery_id=wa.pk, actor=Actor.staff(staff))  # staff: send again
    wa.refresh_from_db()
    assert wa.status == "queued"
    # a delayed 'sent' receipt for the OLD message arrives before the retry runs
    post(client, receipt("sent", timestamp=1_790_000_001))
    wa.refresh_from_db()
    assert wa.status == "queued", f"requeued delivery became {wa.status} without being sent"


def test_stale_delivered_receipt_after_retry_is_ignored_not_500(
    wa_only_customer, mocked_responses, client, staff
):
    wa_ok(mocked_responses, MESSAGE_ID)
    _send(wa_only_customer)
    run_queued()
    wa = Delivery.objects.get(channel="whatsapp")
    post(client, receipt("failed", errors=[{"code": 131026, "title": "undeliverable"}]))
    delivery_retry(delivery_id=wa.pk, actor=Actor.staff(staff))
    client.raise_request_exception = False
    response = post(client, receipt("delivered"))
    assert response.status_code == 200, response.status_code


def test_whatsapp_read_timeout_is_not_retried_but_falls_back(wa_only_customer, mocked_responses):
    # Graph received the POST and sent the message, but the reply was lost (read timeout)
    mocked_responses.post(WA_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    wa_ok(mocked_responses, "wamid.SECOND")
    _send(wa_only_customer)
    run_queued()
    posts = [c for c in mocked_responses.calls if c.request.url == WA_URL]
    assert len(posts) == 1, f"{len(posts)} POSTs to WhatsApp for one message"
    whatsapp = Delivery.objects.get(channel="whatsapp")
    assert whatsapp.status == "failed"
    assert "outcome is unknown" in whatsapp.last_error
    assert Delivery.objects.filter(channel="email", fallback_for=whatsapp).exists()


def test_webhook_non_ascii_signature_is_403(client):
    client.raise_request_exception = False
    body = b'{"entry": []}'
    r = client.post(
        reverse("notifications:whatsapp-webhook"),
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256="sha256=\u00e9",
    )
    assert r.status_code == 403, r.status_code


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
