"""Email: plain text + HTML through Django's backends; SMTP errors classified."""

import smtplib

import pytest
from django.core import mail

from notifications.channels.email import classify_email_error
from notifications.errors import DeliveryPermanentError, DeliveryRetryableError
from notifications.events import sample_context
from notifications.models import Delivery, DeliverySecret
from notifications.services import delivery_attempt, notification_send
from notifications.tests.backends import ScriptedBackend
from notifications.tests.conftest import PASSWORD, run

pytestmark = pytest.mark.django_db


@pytest.fixture
def scripted_mail(settings):
    settings.EMAIL_BACKEND = "notifications.tests.backends.ScriptedBackend"
    ScriptedBackend.script = []
    yield ScriptedBackend.script
    ScriptedBackend.script = []


def send_ready(user):
    return notification_send(
        event="server_ready",
        user=user,
        context=sample_context("server_ready"),
        event_key="server_ready:deployment-12",
        secrets={"panel_password": PASSWORD},
    )


def test_email_has_text_html_reply_to_and_message_id(customer, settings):
    settings.CREDENTIALS_DELIVERY = "inline"
    settings.DEFAULT_FROM_EMAIL = "GameHost <no-reply@gamehost.test>"
    (delivery,) = send_ready(customer)

    assert run(delivery) == "sent"

    (message,) = mail.outbox
    assert message.to == ["alice@example.com"]
    assert message.from_email == "GameHost <no-reply@gamehost.test>"
    assert message.reply_to == ["support@example.com"]
    assert message.subject == "Your server Survival SMP is ready!"
    assert f"Password: {PASSWORD}" in message.body
    ((html, mimetype),) = message.alternatives
    assert mimetype == "text/html"
    assert f"<code>{PASSWORD}</code>" in html
    delivery.refresh_from_db()
    assert delivery.provider_message_id == message.extra_headers["Message-ID"]
    assert delivery.provider_message_id.endswith("@gamehost.test>")
    assert delivery.status == "sent"
    assert delivery.subject == message.subject
    assert "Password: ********" in delivery.body
    assert PASSWORD not in delivery.body
    assert not DeliverySecret.objects.exists()  # email is final once sent


@pytest.mark.parametrize(
    ("error", "expected", "alert"),
    [
        (
            smtplib.SMTPRecipientsRefused({"a@x": (550, b"no such user")}),
            DeliveryPermanentError,
            False,
        ),
        (
            smtplib.SMTPRecipientsRefused({"a@x": (452, b"mailbox full")}),
            DeliveryRetryableError,
            False,
        ),
        (smtplib.SMTPServerDisconnected("gone"), DeliveryRetryableError, False),
        (smtplib.SMTPConnectError(421, b"busy"), DeliveryRetryableError, False),
        (smtplib.SMTPResponseException(421, b"try later"), DeliveryRetryableError, False),
        (smtplib.SMTPDataError(554, b"rejected"), DeliveryPermanentError, False),
        (smtplib.SMTPSenderRefused(553, b"bad sender", "x@y"), DeliveryPermanentError, False),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), DeliveryPermanentError, True),
        (ConnectionRefusedError(111, "refused"), DeliveryRetryableError, False),
        (TimeoutError("timed out"), DeliveryRetryableError, False),
        (
            type("ProviderError", (Exception,), {"status_code": 503})(),
            DeliveryRetryableError,
            False,
        ),
        (
            type("ProviderError", (Exception,), {"status_code": 429})(),
            DeliveryRetryableError,
            False,
        ),
        (
            type("ProviderError", (Exception,), {"status_code": 400})(),
            DeliveryPermanentError,
            False,
        ),
        (type("AnymailRecipientsRefused", (Exception,), {})(), DeliveryPermanentError, False),
        (RuntimeError("unknown"), DeliveryRetryableError, False),
    ],
)
def test_error_classification(error, expected, alert):
    result = classify_email_error(error)
    assert type(result) is expected
    assert getattr(result, "alert_staff", False) is alert


def test_transient_smtp_error_is_retried(customer, scripted_mail):
    scripted_mail.append(smtplib.SMTPServerDisconnected("Connection unexpectedly closed"))
    (delivery,) = send_ready(customer)

    run(delivery)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert delivery.last_error == ""
    assert list(delivery.events.values_list("to_status", flat=True)) == ["queued", "queued", "sent"]
    assert "Connection unexpectedly closed" in delivery.events.all()[1].reason
    assert len(mail.outbox) == 1


def test_permanent_refusal_of_the_last_channel_alerts_staff(customer, scripted_mail):
    scripted_mail.append(smtplib.SMTPRecipientsRefused({"alice@example.com": (550, b"unknown")}))
    (delivery,) = send_ready(customer)

    run(delivery)

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.last_error.startswith("SMTPRecipientsRefused")
    alert = Delivery.objects.get(event="delivery_failed_staff")
    assert (alert.recipient, alert.status) == ("ops@example.com", "queued")
    assert Delivery.objects.count() == 2
    assert mail.outbox == []


def test_unreachable_smtp_server_is_retried(customer, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = 9  # discard: nothing listens, the connection is refused
    (delivery,) = send_ready(customer)

    outcome = delivery_attempt(delivery_id=delivery.pk)

    assert outcome.status == "queued"
    assert outcome.retry_in is not None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("queued", 1)
    assert delivery.last_error.startswith("ConnectionRefusedError")


@pytest.mark.parametrize(("email_timeout", "expected"), [(None, 3), (7, 7)])
def test_mail_connection_gets_a_timeout(customer, scripted_mail, settings, email_timeout, expected):
    settings.NOTIFICATIONS_EMAIL_TIMEOUT = 3
    settings.EMAIL_TIMEOUT = email_timeout
    (delivery,) = send_ready(customer)

    run(delivery)

    assert ScriptedBackend.options == {"timeout": expected}
