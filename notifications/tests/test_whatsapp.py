"""WhatsApp Cloud API: requests, error mapping, retries, fallback to email, staff alerts."""

import json
import logging

import pytest
import requests
from django.core import mail

from notifications.events import sample_context
from notifications.models import Delivery, DeliveryEvent
from notifications.services import delivery_attempt, notification_send
from notifications.services.attempts import retry_delay
from notifications.tests.conftest import (
    CUSTOMER_NUMBER,
    PASSWORD,
    WA_TOKEN,
    WA_URL,
    database_text,
    run,
    run_queued,
    wa_error,
    wa_ok,
)
from notifications.whatsapp_client import (
    WhatsAppPermanentError,
    WhatsAppRetryableError,
    whatsapp_client_from_settings,
)

pytestmark = pytest.mark.django_db


def send_ready(user, key="server_ready:deployment-12"):
    return notification_send(
        event="server_ready",
        user=user,
        context=sample_context("server_ready"),
        event_key=key,
        secrets={"panel_password": PASSWORD},
    )


def whatsapp_row() -> Delivery:
    return Delivery.objects.get(channel="whatsapp")


def history(delivery: Delivery) -> list[tuple[str, str]]:
    return list(delivery.events.values_list("from_status", "to_status"))


# --- the client ---------------------------------------------------------------------------


def test_text_message_request(mocked_responses):
    wa_ok(mocked_responses, "wamid.ABC")

    result = whatsapp_client_from_settings().send_text(to=CUSTOMER_NUMBER, body="Halo")

    assert result.message_id == "wamid.ABC"
    assert result.wa_id == CUSTOMER_NUMBER[1:]
    request = mocked_responses.calls[0].request
    assert request.url == WA_URL
    assert request.headers["Authorization"] == f"Bearer {WA_TOKEN}"
    assert json.loads(request.body) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "6281234567890",
        "type": "text",
        "text": {"body": "Halo", "preview_url": True},
    }


def test_template_message_request(mocked_responses):
    wa_ok(mocked_responses, "wamid.T")

    whatsapp_client_from_settings().send_template(
        to=CUSTOMER_NUMBER, name="server_ready_v2", language="id", parameters=["Alice", "1042"]
    )

    assert json.loads(mocked_responses.calls[0].request.body)["template"] == {
        "name": "server_ready_v2",
        "language": {"code": "id"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Alice"}, {"type": "text", "text": "1042"}],
            }
        ],
    }


@pytest.mark.parametrize(
    ("status", "code", "expected", "auth"),
    [
        (400, 131026, WhatsAppPermanentError, False),  # message undeliverable (not on WhatsApp)
        (400, 131030, WhatsAppPermanentError, False),  # recipient not allowed
        (400, 100, WhatsAppPermanentError, False),  # invalid parameter
        (401, 190, WhatsAppPermanentError, True),  # token expired
        (403, 10, WhatsAppPermanentError, True),  # permission denied
        (429, 130429, WhatsAppRetryableError, False),  # throughput reached
        (400, 131056, WhatsAppRetryableError, False),  # pair rate limit
        (400, 80007, WhatsAppRetryableError, False),  # account rate limit
        (400, 4, WhatsAppRetryableError, False),  # app rate limit
        (500, 1, WhatsAppRetryableError, False),
        (503, 131016, WhatsAppRetryableError, False),
    ],
)
def test_error_mapping(mocked_responses, status, code, expected, auth):
    wa_error(mocked_responses, status, code, message=f"boom with {WA_TOKEN}")

    with pytest.raises(expected) as caught:
        whatsapp_client_from_settings().send_text(to=CUSTOMER_NUMBER, body="x")

    assert caught.value.status == status
    assert caught.value.code == code
    assert getattr(caught.value, "auth", False) is auth
    assert WA_TOKEN not in str(caught.value)
    assert WA_TOKEN not in repr(caught.value.__cause__)


def _refused() -> requests.ConnectionError:
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    reason = NewConnectionError(None, "Connection refused")
    return requests.ConnectionError(MaxRetryError(None, "/messages", reason=reason))


@pytest.mark.parametrize("exception", [requests.ConnectTimeout("connect timed out"), _refused()])
def test_errors_before_sending_are_retryable(mocked_responses, exception):
    mocked_responses.post(WA_URL, body=exception)
    with pytest.raises(WhatsAppRetryableError):
        whatsapp_client_from_settings().send_text(to=CUSTOMER_NUMBER, body="x")


@pytest.mark.parametrize(
    "exception",
    [requests.ReadTimeout("read timed out"), requests.ConnectionError("connection reset")],
)
def test_errors_after_sending_are_not_retried(mocked_responses, exception):
    # WhatsApp may have accepted the message; it has no idempotency key.
    mocked_responses.post(WA_URL, body=exception)
    with pytest.raises(WhatsAppPermanentError, match="outcome is unknown"):
        whatsapp_client_from_settings().send_text(to=CUSTOMER_NUMBER, body="x")


def test_html_error_page_is_retryable(mocked_responses):
    mocked_responses.post(WA_URL, body="<html>Bad gateway</html>", status=502)
    with pytest.raises(WhatsAppRetryableError, match="WhatsApp API 502"):
        whatsapp_client_from_settings().send_text(to=CUSTOMER_NUMBER, body="x")


def test_200_without_message_id_is_not_retried(mocked_responses):
    mocked_responses.post(WA_URL, json={"messages": []}, status=200)
    with pytest.raises(WhatsAppPermanentError, match="without a message id"):
        whatsapp_client_from_settings().send_text(to=CUSTOMER_NUMBER, body="x")


# --- deliveries through WhatsApp ------------------------------------------------------------


def test_200_marks_sent_with_provider_id(wa_customer, mocked_responses):
    wa_ok(mocked_responses, "wamid.HBgM")
    send_ready(wa_customer)

    assert run(whatsapp_row()) == "sent"

    delivery = whatsapp_row()
    assert (delivery.status, delivery.attempts, delivery.provider_message_id) == (
        "sent",
        1,
        "wamid.HBgM",
    )
    assert delivery.sent_at is not None
    assert delivery.lease_until is None
    assert delivery.template == "file:notifications/server_ready/id/whatsapp.txt"
    assert history(delivery) == [("", "queued"), ("queued", "sent")]
    assert "Server Anda sudah siap!" in delivery.body
    assert "Password: ********" not in delivery.body  # link mode: the link is masked instead
    assert "********" in delivery.body
    sent_text = json.loads(mocked_responses.calls[0].request.body)["text"]["body"]
    assert "https://portal.example.com/notifications/credentials/" in sent_text
    assert PASSWORD not in sent_text


def test_invalid_number_falls_back_to_email(wa_only_customer, mocked_responses, caplog):
    wa_error(mocked_responses, 400, 131026, message="Message undeliverable")
    send_ready(wa_only_customer)

    with caplog.at_level(logging.DEBUG):
        run_queued()

    whatsapp = whatsapp_row()
    email = Delivery.objects.get(channel="email")
    assert (whatsapp.status, whatsapp.attempts) == ("failed", 1)
    assert whatsapp.last_error == "WhatsApp API 400 code 131026: Message undeliverable"
    assert history(whatsapp) == [("", "queued"), ("queued", "failed")]
    assert whatsapp.events.last().reason.endswith(f"fell back to email (delivery {email.pk})")
    assert (email.status, email.fallback_for_id, email.recipient) == (
        "sent",
        whatsapp.pk,
        "alice@example.com",
    )
    assert email.events.first().reason == f"fallback for whatsapp delivery {whatsapp.pk}"
    assert len(mocked_responses.calls) == 1  # a permanent error is not retried
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    assert not Delivery.objects.filter(event="delivery_failed_staff").exists()
    assert WA_TOKEN not in caplog.text
    assert PASSWORD not in caplog.text


def test_rate_limit_is_retried_after_backoff(wa_only_customer, mocked_responses):
    wa_error(mocked_responses, 429, 130429, **{"Retry-After": "40"})
    wa_ok(mocked_responses, "wamid.second")
    send_ready(wa_only_customer)
    delivery_id = whatsapp_row().pk

    first = delivery_attempt(delivery_id=delivery_id)

    assert first.status == "queued"
    assert first.retry_in == 40  # Retry-After wins over the 10 s (+-25%) backoff
    delivery = whatsapp_row()
    assert (delivery.status, delivery.attempts, delivery.lease_until) == ("queued", 1, None)
    assert delivery.last_error.startswith("WhatsApp API 429 code 130429")
    assert history(delivery) == [("", "queued"), ("queued", "queued")]
    assert "retry in 40 s" in delivery.events.last().reason
    assert not Delivery.objects.filter(channel="email").exists()

    second = delivery_attempt(delivery_id=delivery_id)

    assert (second.status, second.retry_in) == ("sent", None)
    delivery = whatsapp_row()
    assert (delivery.attempts, delivery.provider_message_id) == (2, "wamid.second")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_retry_then_fall_back_when_spent(wa_only_customer, mocked_responses, status):
    mocked_responses.post(WA_URL, json={"error": {"code": 1, "message": "x"}}, status=status)
    send_ready(wa_only_customer)

    run(whatsapp_row())  # eager: Celery's retries run at once

    whatsapp = whatsapp_row()
    assert len(mocked_responses.calls) == 3  # NOTIFICATIONS_MAX_ATTEMPTS
    assert (whatsapp.status, whatsapp.attempts) == ("failed", 3)
    assert whatsapp.last_error.startswith("retries spent after 3 attempts: WhatsApp API")
    assert history(whatsapp) == [
        ("", "queued"),
        ("queued", "queued"),
        ("queued", "queued"),
        ("queued", "failed"),
    ]
    fallback = Delivery.objects.get(channel="email")
    assert (fallback.fallback_for_id, fallback.status) == (whatsapp.pk, "queued")


def test_whatsapp_read_timeout_is_not_retried_but_falls_back(wa_only_customer, mocked_responses):
    # Graph received the POST and sent the message, but the reply was lost (read timeout)
    mocked_responses.post(WA_URL, body=requests.exceptions.ReadTimeout("read timed out"))
    wa_ok(mocked_responses, "wamid.SECOND")
    notification_send(
        event="payment_received",
        user=wa_only_customer,
        context=sample_context("payment_received"),
        event_key="pay:1",
    )
    run_queued()
    posts = [c for c in mocked_responses.calls if c.request.url == WA_URL]
    assert len(posts) == 1, f"{len(posts)} POSTs to WhatsApp for one message"
    whatsapp = Delivery.objects.get(channel="whatsapp")
    assert whatsapp.status == "failed"
    assert "outcome is unknown" in whatsapp.last_error
    assert Delivery.objects.filter(channel="email", fallback_for=whatsapp).exists()


def test_connect_timeouts_are_retried(wa_only_customer, mocked_responses):
    mocked_responses.post(WA_URL, body=requests.ConnectTimeout("connect timed out"))
    wa_ok(mocked_responses, "wamid.after-timeout")
    send_ready(wa_only_customer)

    run(whatsapp_row())

    delivery = whatsapp_row()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert delivery.provider_message_id == "wamid.after-timeout"


def test_backoff_is_exponential_with_jitter_and_capped(settings):
    settings.NOTIFICATIONS_RETRY_BASE_SECONDS = 10
    settings.NOTIFICATIONS_RETRY_MAX_SECONDS = 600
    for attempt, low, high in [(1, 7, 12), (2, 15, 25), (3, 30, 50), (4, 60, 100)]:
        delays = {retry_delay(attempt) for _ in range(50)}
        assert min(delays) >= low, attempt
        assert max(delays) <= high, attempt
        assert len(delays) > 1  # jitter
    assert retry_delay(30) == 600
    assert retry_delay(1, retry_after=120) >= 120
    assert retry_delay(1, retry_after=5000) == 600


def test_auth_error_falls_back_and_alerts_staff_once_an_hour(
    wa_only_customer, mocked_responses, caplog
):
    wa_error(mocked_responses, 401, 190, message=f"Error validating access token {WA_TOKEN}")
    send_ready(wa_only_customer, key="server_ready:deployment-1")
    send_ready(wa_only_customer, key="server_ready:deployment-2")

    with caplog.at_level(logging.DEBUG):
        run_queued()

    assert sorted(Delivery.objects.values_list("event", "channel", "status")) == [
        ("delivery_failed_staff", "email", "sent"),
        ("server_ready", "email", "sent"),
        ("server_ready", "email", "sent"),
        ("server_ready", "whatsapp", "failed"),
        ("server_ready", "whatsapp", "failed"),
    ]
    alert = Delivery.objects.get(event="delivery_failed_staff")
    assert alert.recipient == "ops@example.com"
    assert alert.event_key.startswith("channel_config:whatsapp:")
    assert "refused our configuration or credentials" in alert.body
    assert "Error validating access token ***" in alert.body
    assert WA_TOKEN not in caplog.text
    assert WA_TOKEN not in database_text()


def test_every_channel_failing_alerts_staff(wa_only_customer, mocked_responses, settings):
    import smtplib

    from notifications.tests.backends import ScriptedBackend

    settings.EMAIL_BACKEND = "notifications.tests.backends.ScriptedBackend"
    ScriptedBackend.script = [
        smtplib.SMTPRecipientsRefused({"alice@example.com": (550, b"mailbox unavailable")})
    ]
    wa_error(mocked_responses, 400, 131026, message="Message undeliverable")
    send_ready(wa_only_customer)

    run_queued()

    rows = {(d.event, d.channel): d for d in Delivery.objects.all()}
    assert rows["server_ready", "whatsapp"].status == "failed"
    assert rows["server_ready", "email"].status == "failed"
    assert rows["server_ready", "email"].events.last().reason.endswith("no channel left")
    alert = rows["delivery_failed_staff", "email"]
    assert (alert.status, alert.recipient, alert.audience) == ("sent", "ops@example.com", "staff")
    assert alert.context["reason"] == "every channel failed"
    assert alert.context["failures"] == [
        "whatsapp +6281234567890: WhatsApp API 400 code 131026: Message undeliverable",
        "email alice@example.com: SMTPRecipientsRefused: {'alice@example.com': "
        "(550, b'mailbox unavailable')}",
    ]
    assert [m.to for m in mail.outbox] == [["ops@example.com"]]
    assert "server_ready:deployment-12" in mail.outbox[0].subject
    assert len(Delivery.objects.all()) == 3


def test_failing_staff_alert_does_not_alert_again(settings, mocked_responses, caplog):
    settings.ADMINS = []
    settings.ADMIN_PHONE = "+6281200000000"
    wa_error(mocked_responses, 400, 131026)
    notification_send(
        event="provisioning_failed_staff",
        staff=True,
        context=sample_context("provisioning_failed_staff"),
        event_key="provisioning_failed:run-7",
    )

    with caplog.at_level(logging.ERROR):
        run_queued()

    assert list(Delivery.objects.values_list("event", "status")) == [
        ("provisioning_failed_staff", "failed")
    ]
    assert "could not be delivered on any channel" in caplog.text


def test_whatsapp_disabled_after_queueing_falls_back(wa_only_customer, settings, mocked_responses):
    send_ready(wa_only_customer)
    settings.WHATSAPP_ENABLED = False

    run_queued()

    assert sorted(Delivery.objects.values_list("channel", "status", "last_error")) == [
        ("email", "sent", ""),
        ("whatsapp", "failed", "WhatsApp is disabled (WHATSAPP_ENABLED)."),
    ]
    assert len(mocked_responses.calls) == 0


def test_approved_template_is_used_when_configured(wa_only_customer, mocked_responses, settings):
    settings.WHATSAPP_TEMPLATES = {**settings.WHATSAPP_TEMPLATES, "server_ready": "ready_v1"}
    wa_ok(mocked_responses)
    send_ready(wa_only_customer)

    run(whatsapp_row())

    payload = json.loads(mocked_responses.calls[0].request.body)
    assert payload["type"] == "template"
    assert payload["template"]["name"] == "ready_v1"
    assert payload["template"]["language"] == {"code": "en"}
    assert whatsapp_row().template == "wa:ready_v1/en"
    assert DeliveryEvent.objects.filter(to_status="sent").count() == 1
