"""Fixtures for notifications tests: WhatsApp settings, customers with profiles, running tasks."""

import json

import pytest
import responses
from django.db import connection

from notifications.models import CustomerProfile, Delivery, DeliveryEvent, DeliverySecret
from notifications.tasks import deliver

WA_BASE = "https://graph.test/v21.0"
WA_PHONE_ID = "1099887766"
WA_TOKEN = "EAAGtesttoken0123456789SECRETabcdef"
WA_URL = f"{WA_BASE}/{WA_PHONE_ID}/messages"
APP_SECRET = "app-secret-for-tests"
VERIFY_TOKEN = "verify-me-123"
PASSWORD = "Xy7-Panel-Pa55word-q9"
CUSTOMER_NUMBER = "+6281234567890"


@pytest.fixture(autouse=True)
def notification_settings(settings):
    settings.WHATSAPP_ENABLED = True
    settings.WHATSAPP_API_BASE_URL = WA_BASE
    settings.WHATSAPP_PHONE_NUMBER_ID = WA_PHONE_ID
    settings.WHATSAPP_ACCESS_TOKEN = WA_TOKEN
    settings.WHATSAPP_APP_SECRET = APP_SECRET
    settings.WHATSAPP_WEBHOOK_VERIFY_TOKEN = VERIFY_TOKEN
    settings.ADMINS = [("", "ops@example.com")]
    settings.ADMIN_PHONE = ""
    settings.PORTAL_BASE_URL = "https://portal.example.com"
    settings.SUPPORT_EMAIL = "support@example.com"
    settings.SUPPORT_WHATSAPP = "+6281100000000"
    settings.CREDENTIALS_DELIVERY = "link"
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    settings.WHATSAPP_TEMPLATES = dict.fromkeys(settings.WHATSAPP_TEMPLATES, "")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return settings


@pytest.fixture
def wa_customer(customer):
    """A customer who chose WhatsApp and email, in Indonesian."""
    CustomerProfile.objects.create(
        user=customer,
        whatsapp_number=CUSTOMER_NUMBER,
        whatsapp_verified_number=CUSTOMER_NUMBER,
        whatsapp_consent=True,
        notify_by_whatsapp=True,
        notify_by_email=True,
        preferred_language="id",
    )
    return customer


@pytest.fixture
def wa_only_customer(customer):
    """A customer who chose WhatsApp only (email is still the fallback)."""
    CustomerProfile.objects.create(
        user=customer,
        whatsapp_number=CUSTOMER_NUMBER,
        whatsapp_consent=True,
        notify_by_whatsapp=True,
        notify_by_email=False,
        preferred_language="en",
    )
    return customer


@pytest.fixture
def mocked_responses():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked


def wa_ok(mocked, message_id: str = "wamid.OK1") -> None:
    mocked.post(
        WA_URL,
        json={
            "messaging_product": "whatsapp",
            "contacts": [{"input": CUSTOMER_NUMBER, "wa_id": CUSTOMER_NUMBER[1:]}],
            "messages": [{"id": message_id}],
        },
        status=200,
    )


def wa_error(mocked, status: int, code: int, message: str = "error", **headers) -> None:
    mocked.post(
        WA_URL,
        json={"error": {"message": message, "type": "OAuthException", "code": code}},
        status=status,
        headers=headers or None,
    )


def run(delivery_or_id) -> str:
    """Run the deliver task in this process (eagerly; Celery retries run immediately)."""
    delivery_id = getattr(delivery_or_id, "pk", delivery_or_id)
    return deliver.apply(args=[delivery_id]).get(disable_sync_subtasks=False)


def run_queued() -> None:
    """Run every queued delivery until none is left (fallbacks and staff alerts included)."""
    for _ in range(20):
        queued = list(Delivery.objects.filter(status="queued").values_list("pk", flat=True))
        if not queued:
            return
        for delivery_id in queued:
            run(delivery_id)
    raise AssertionError("deliveries keep being queued")


def database_text() -> str:
    """Every delivery-related row as text (to assert a secret is nowhere in it)."""
    rows = [
        json.dumps(list(model.objects.values()), default=str) for model in (Delivery, DeliveryEvent)
    ]
    with connection.cursor() as cursor:
        for table in (
            Delivery._meta.db_table,
            DeliveryEvent._meta.db_table,
            DeliverySecret._meta.db_table,
            "notifications_credentialreveal",
        ):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - our table names
            rows.append(repr(cursor.fetchall()))
    return "\n".join(rows)
