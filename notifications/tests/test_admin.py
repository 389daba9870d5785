"""Admin: the delivery log with history, the retry action, template previews, no secrets."""

import pytest
from django.urls import reverse

from notifications.events import sample_context
from notifications.models import Delivery, NotificationTemplate
from notifications.services import notification_send
from notifications.tests.conftest import PASSWORD, run_queued, wa_error

pytestmark = [pytest.mark.django_db, pytest.mark.urls("notifications.tests.urls")]


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def failed_then_fallback(wa_only_customer, mocked_responses, settings):
    settings.CREDENTIALS_DELIVERY = "inline"
    wa_error(mocked_responses, 400, 131026, message="Message undeliverable")
    notification_send(
        event="server_ready",
        user=wa_only_customer,
        context=sample_context("server_ready"),
        event_key="server_ready:deployment-12",
        secrets={"panel_password": PASSWORD},
    )
    run_queued()
    return Delivery.objects.get(channel="whatsapp")


def test_delivery_list_filters_and_search(admin_client, failed_then_fallback):
    url = reverse("admin:notifications_delivery_changelist")

    page = admin_client.get(url, {"q": "deployment-12", "status__exact": "failed"})

    assert page.status_code == 200
    text = page.content.decode()
    assert "+6281234567890" in text
    assert "fell back to email" in text
    assert "Message undeliverable" in text
    assert "alice@example.com" not in text  # the email row is filtered out (sent)
    assert PASSWORD not in text


def test_delivery_page_shows_history_and_no_secret(admin_client, failed_then_fallback):
    email = Delivery.objects.get(channel="email")
    for delivery in (failed_then_fallback, email):
        page = admin_client.get(reverse("admin:notifications_delivery_change", args=[delivery.pk]))
        assert page.status_code == 200
        text = page.content.decode()
        assert "Password: ********" in text
        assert PASSWORD not in text
    assert (
        f"fell back to email (delivery {email.pk})"
        in admin_client.get(
            reverse("admin:notifications_delivery_change", args=[failed_then_fallback.pk])
        ).content.decode()
    )


def test_retry_action_requeues_failed_deliveries_only(admin_client, failed_then_fallback):
    email = Delivery.objects.get(channel="email")
    response = admin_client.post(
        reverse("admin:notifications_delivery_changelist"),
        {"action": "retry_failed", "_selected_action": [failed_then_fallback.pk, email.pk]},
        follow=True,
    )

    assert "1 failed deliveries queued again." in response.content.decode()
    failed_then_fallback.refresh_from_db()
    email.refresh_from_db()
    assert (failed_then_fallback.status, email.status) == ("queued", "sent")


def test_template_preview_renders_the_row_and_the_defaults(admin_client):
    row = NotificationTemplate.objects.create(
        event="server_ready",
        language="id",
        channel="whatsapp",
        body="Server {{ server_name }} siap: {{ credentials_access }}",
        is_active=False,
    )

    page = admin_client.get(
        reverse("admin:notifications_notificationtemplate_preview", args=[row.pk]),
        {"mode": "inline"},
    )
    assert page.status_code == 200
    assert "Server Survival SMP siap: Sample-Pa55word!" in page.content.decode()
    assert "(inactive)" in page.content.decode()

    default = admin_client.get(
        reverse(
            "admin:notifications_notificationtemplate_default_preview",
            args=["server_ready", "id", "email"],
        )
    )
    assert default.status_code == 200
    assert "Server Anda sudah siap!" in default.content.decode()
    assert "file:notifications/server_ready/id/body.txt" in default.content.decode()
    bad = admin_client.get(
        reverse(
            "admin:notifications_notificationtemplate_default_preview",
            args=["nope", "id", "email"],
        )
    )
    assert bad.status_code == 404


def test_template_with_a_syntax_error_cannot_be_saved(admin_client):
    response = admin_client.post(
        reverse("admin:notifications_notificationtemplate_add"),
        {
            "event": "order_received",
            "language": "en",
            "channel": "email",
            "is_active": "on",
            "subject": "Order {{ order_id }}",
            "body": "{% if %}",
            "body_html": "",
        },
    )
    assert response.status_code == 200
    assert "Template error" in response.content.decode()
    assert not NotificationTemplate.objects.exists()


def test_customers_cannot_see_the_delivery_log(client, customer):
    client.force_login(customer)
    response = client.get(reverse("admin:notifications_delivery_changelist"))
    assert response.status_code == 302
