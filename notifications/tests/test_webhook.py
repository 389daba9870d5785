"""WhatsApp status webhooks: verify handshake, X-Hub-Signature-256, receipts out of order."""

import hashlib
import hmac
import json
import logging

import pytest
from django.test import Client
from django.urls import reverse

from common.actors import Actor
from notifications.events import sample_context
from notifications.models import Delivery, DeliveryEvent, DeliverySecret
from notifications.services import delivery_retry, notification_send
from notifications.tests.conftest import APP_SECRET, PASSWORD, VERIFY_TOKEN, run_queued, wa_ok

pytestmark = [pytest.mark.django_db, pytest.mark.urls("notifications.tests.urls")]

MESSAGE_ID = "wamid.HBgNNjI4MTIzNDU2Nzg5MBUCABIYFjNFQjA"


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def receipt(status: str, timestamp: int = 1_790_000_000, message_id: str = MESSAGE_ID, **extra):
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "WABA_ID",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {"phone_number_id": "1099887766"},
                                "statuses": [
                                    {
                                        "id": message_id,
                                        "status": status,
                                        "timestamp": str(timestamp),
                                        "recipient_id": "6281234567890",
                                        **extra,
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
        }
    ).encode()


def post(client, body: bytes, signature: str | None = "sign"):
    headers = {}
    if signature == "sign":
        headers["HTTP_X_HUB_SIGNATURE_256"] = sign(body)
    elif signature is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    return client.post(
        reverse("notifications:whatsapp-webhook"),
        data=body,
        content_type="application/json",
        **headers,
    )


@pytest.fixture
def sent_whatsapp(wa_only_customer, mocked_responses, settings):
    settings.CREDENTIALS_DELIVERY = "inline"
    wa_ok(mocked_responses, MESSAGE_ID)
    notification_send(
        event="server_ready",
        user=wa_only_customer,
        context=sample_context("server_ready"),
        event_key="server_ready:deployment-12",
        secrets={"panel_password": PASSWORD},
    )
    run_queued()
    delivery = Delivery.objects.get()
    assert delivery.status == "sent"
    return delivery


def snapshot():
    return (
        list(Delivery.objects.order_by("pk").values()),
        DeliveryEvent.objects.count(),
        DeliverySecret.objects.count(),
    )


def test_handshake_echoes_the_challenge(client):
    response = client.get(
        reverse("notifications:whatsapp-webhook"),
        {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain"
    assert response.content == b"1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.challenge": "1"},
    ],
)
def test_handshake_with_a_wrong_token_is_forbidden(client, params):
    response = client.get(reverse("notifications:whatsapp-webhook"), params)
    assert response.status_code == 403
    assert b"1" not in response.content


def test_handshake_refused_when_no_token_is_configured(client, settings):
    settings.WHATSAPP_WEBHOOK_VERIFY_TOKEN = ""
    response = client.get(
        reverse("notifications:whatsapp-webhook"),
        {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"},
    )
    assert response.status_code == 403


def test_delivered_receipt_updates_the_delivery(sent_whatsapp):
    client = Client(enforce_csrf_checks=True)  # the webhook is csrf-exempt

    response = post(client, receipt("delivered", timestamp=1_790_000_123))

    assert response.status_code == 200
    assert response.json() == {"received": True, "applied": 1}
    sent_whatsapp.refresh_from_db()
    assert sent_whatsapp.status == "delivered"
    assert sent_whatsapp.delivered_at.timestamp() == 1_790_000_123
    event = sent_whatsapp.events.last()
    assert (event.from_status, event.to_status, event.actor_label) == (
        "sent",
        "delivered",
        f"whatsapp:{MESSAGE_ID}",
    )
    assert not DeliverySecret.objects.exists()  # delivered: the inline secret is gone


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=", "sha256=deadbeef", sign(b"other body"), "sha1=abc", "wrong-secret"],
)
def test_bad_signature_is_rejected_and_changes_nothing(sent_whatsapp, client, caplog, signature):
    body = receipt("failed", errors=[{"code": 131026, "title": "Message undeliverable"}])
    if signature == "wrong-secret":
        signature = sign(body, secret="not-the-app-secret")
    before = snapshot()

    with caplog.at_level(logging.DEBUG):
        response = post(client, body, signature)

    assert response.status_code == 403
    assert response.json()["code"] == "invalid_signature"
    assert snapshot() == before
    assert "whatsapp webhook rejected" in caplog.text
    assert MESSAGE_ID not in caplog.text  # the payload is never logged


def test_signature_is_refused_when_no_app_secret_is_configured(sent_whatsapp, client, settings):
    settings.WHATSAPP_APP_SECRET = ""
    body = receipt("read")
    before = snapshot()
    response = post(client, body, sign(body, secret=""))
    assert response.status_code == 403
    assert snapshot() == before


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


def test_signed_garbage_is_a_bad_request(sent_whatsapp, client):
    before = snapshot()
    for body in (b"not json", b"[1, 2]"):
        response = post(client, body)
        assert response.status_code == 400
    assert snapshot() == before


def test_receipts_out_of_order_never_go_back(sent_whatsapp, client):
    post(client, receipt("read", timestamp=1_790_000_200))
    post(client, receipt("delivered", timestamp=1_790_000_100))
    post(client, receipt("sent", timestamp=1_790_000_050))
    post(client, receipt("read", timestamp=1_790_000_300))

    sent_whatsapp.refresh_from_db()
    assert sent_whatsapp.status == "read"
    assert sent_whatsapp.read_at.timestamp() == 1_790_000_200
    assert sent_whatsapp.delivered_at.timestamp() == 1_790_000_200
    assert list(sent_whatsapp.events.values_list("from_status", "to_status")) == [
        ("", "queued"),
        ("queued", "sent"),
        ("sent", "read"),
    ]


def test_failed_receipt_falls_back_to_email(
    sent_whatsapp, client, django_capture_on_commit_callbacks
):
    body = receipt(
        "failed",
        errors=[
            {
                "code": 131047,
                "title": "Re-engagement message",
                "error_data": {"details": "More than 24 hours have passed"},
            }
        ],
    )
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, body)

    assert response.status_code == 200
    sent_whatsapp.refresh_from_db()
    assert sent_whatsapp.status == "failed"
    assert sent_whatsapp.last_error == (
        "whatsapp reported failed: 131047 Re-engagement message More than 24 hours have passed"
    )
    fallback = Delivery.objects.get(channel="email")
    assert (fallback.fallback_for_id, fallback.status) == (sent_whatsapp.pk, "queued")
    assert len(callbacks) == 1
    # The inline password was copied for the email, then dropped from the failed delivery.
    assert list(DeliverySecret.objects.values_list("delivery_id", flat=True)) == [fallback.pk]
    run_queued()
    fallback.refresh_from_db()
    assert fallback.status == "sent"


def test_late_failed_receipt_after_delivered_is_only_noted(sent_whatsapp, client):
    post(client, receipt("delivered"))
    post(client, receipt("failed", errors=[{"code": 131000, "title": "Something went wrong"}]))

    sent_whatsapp.refresh_from_db()
    assert sent_whatsapp.status == "delivered"
    assert sent_whatsapp.events.last().reason.startswith("late 'failed' receipt ignored")
    assert not Delivery.objects.filter(channel="email").exists()


def _send_payment_received(user):
    notification_send(
        event="payment_received",
        user=user,
        context=sample_context("payment_received"),
        event_key="pay:1",
    )


def test_stale_receipt_after_staff_retry(wa_only_customer, mocked_responses, client, staff):
    wa_ok(mocked_responses, MESSAGE_ID)
    _send_payment_received(wa_only_customer)
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
    _send_payment_received(wa_only_customer)
    run_queued()
    wa = Delivery.objects.get(channel="whatsapp")
    post(client, receipt("failed", errors=[{"code": 131026, "title": "undeliverable"}]))
    delivery_retry(delivery_id=wa.pk, actor=Actor.staff(staff))
    client.raise_request_exception = False
    response = post(client, receipt("delivered"))
    assert response.status_code == 200, response.status_code


def test_unknown_message_and_incoming_messages_are_ignored(sent_whatsapp, client):
    before = snapshot()
    response = post(client, receipt("delivered", message_id="wamid.someone-else"))
    assert response.json() == {"received": True, "applied": 0}
    incoming = json.dumps(
        {"entry": [{"changes": [{"value": {"messages": [{"id": "wamid.in", "text": {}}]}}]}]}
    ).encode()
    assert post(client, incoming).json() == {"received": True, "applied": 0}
    assert snapshot() == before
