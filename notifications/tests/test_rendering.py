"""Every message renders, in English and Indonesian, with every field of its context."""

import logging

import pytest
from django.core.exceptions import ValidationError
from django.utils.html import escape

from notifications.events import (
    SAMPLE_CREDENTIALS_URL,
    SAMPLE_SECRETS,
    SPECS,
    sample_context,
)
from notifications.models import NotificationTemplate
from notifications.rendering import MASK, base_context, render_pair, render_preview

pytestmark = pytest.mark.django_db

CUSTOMER_EVENTS = sorted(e for e, s in SPECS.items() if s.audience == "customer")
STAFF_EVENTS = sorted(e for e, s in SPECS.items() if s.audience == "staff")
GREETING = {"en": "Hi Alice", "id": "Halo Alice"}


def _values(event: str) -> dict[str, str]:
    values = {}
    for key, value in sample_context(event).items():
        if key in SPECS[event].worded:
            continue  # a code (card, bank_transfer): the template words it
        for item in value if isinstance(value, list) else [value]:
            values[f"{key}={item}"] = str(item)
    return values


def _assert_complete(text: str) -> None:
    assert "{{" not in text
    assert "{%" not in text
    assert "None" not in text


@pytest.mark.parametrize("language", ["en", "id"])
@pytest.mark.parametrize("event", CUSTOMER_EVENTS)
def test_email_has_every_field_in_text_and_html(event, language):
    message = render_preview(event=event, language=language, channel="email", mode="inline")

    assert message.template == f"file:notifications/{event}/{language}/body.txt"
    assert message.subject
    assert "\n" not in message.subject
    assert GREETING[language] in message.text
    for name, value in _values(event).items():
        assert value in message.text, name
        assert escape(value) in message.html, name
    if SPECS[event].secret_keys:
        assert SAMPLE_SECRETS["panel_password"] in message.text
        assert SAMPLE_SECRETS["panel_password"] in message.html
    assert message.html.startswith("<!doctype html>")
    assert f'<html lang="{language}">' in message.html
    _assert_complete(message.text)
    _assert_complete(message.subject)
    _assert_complete(message.html)


@pytest.mark.parametrize("language", ["en", "id"])
@pytest.mark.parametrize("event", CUSTOMER_EVENTS)
def test_whatsapp_text_has_every_field(event, language):
    message = render_preview(event=event, language=language, channel="whatsapp", mode="inline")

    assert message.template == f"file:notifications/{event}/{language}/whatsapp.txt"
    assert message.subject == ""
    assert message.html == ""
    assert GREETING[language] in message.text
    for name, value in _values(event).items():
        assert value in message.text, name
    if SPECS[event].secret_keys:
        assert SAMPLE_SECRETS["panel_password"] in message.text
    _assert_complete(message.text)


@pytest.mark.parametrize("channel", ["email", "whatsapp"])
@pytest.mark.parametrize("event", STAFF_EVENTS)
def test_staff_alerts_have_every_field(event, channel):
    message = render_preview(event=event, language="en", channel=channel)

    for name, value in _values(event).items():
        assert value in message.text, name
    _assert_complete(message.text)


def test_staff_alert_in_another_language_falls_back_to_english():
    message = render_preview(event="provisioning_failed_staff", language="id", channel="email")
    assert message.template == "file:notifications/provisioning_failed_staff/en/body.txt"


@pytest.mark.parametrize("language", ["en", "id"])
@pytest.mark.parametrize("channel", ["email", "whatsapp"])
@pytest.mark.parametrize("event", sorted(e for e, s in SPECS.items() if s.secret_keys), ids=str)
def test_link_mode_carries_the_one_time_link_and_no_password(event, channel, language):
    message = render_preview(event=event, language=language, channel=channel, mode="link")

    assert SAMPLE_CREDENTIALS_URL in message.text
    assert SAMPLE_SECRETS["panel_password"] not in message.text
    assert SAMPLE_SECRETS["panel_password"] not in message.html


def test_indonesian_server_ready_reads_naturally():
    email = render_preview(event="server_ready", language="id", channel="email", mode="inline")
    whatsapp = render_preview(
        event="server_ready", language="id", channel="whatsapp", mode="inline"
    )

    assert email.subject == "Server Anda sudah siap: Survival SMP"
    for text in (email.text, email.html, whatsapp.text):
        assert "Server Anda sudah siap!" in text
    for heading in ("DETAIL PESANAN", "DETAIL SERVER", "LOGIN PANEL", "CARA MEMULAI"):
        assert heading in email.text
    assert "PENGINGAT KEAMANAN" in email.text
    assert "Tim kami tidak akan pernah meminta password Anda." in email.text
    assert "Alamat (IP:port): 203.0.113.10:25565" in email.text
    assert "Spesifikasi: RAM 1024 MB, CPU 100%, disk 5120 MB" in email.text


def test_stored_copy_masks_every_secret():
    base = base_context(user=None, language="en")
    outgoing, stored = render_pair(
        event="server_ready",
        language="en",
        channel="email",
        base=base,
        context=sample_context("server_ready"),
        secrets={"panel_password": "Top-Secret-99"},
    )

    assert "Password: Top-Secret-99" in outgoing.text
    assert "Top-Secret-99" in outgoing.html
    assert f"Password: {MASK}" in stored.text
    assert "Top-Secret-99" not in stored.text + stored.subject + stored.html


def test_database_override_wins_and_inactive_one_does_not():
    row = NotificationTemplate.objects.create(
        event="order_received",
        language="en",
        channel="email",
        subject="Custom: order {{ order_id }}",
        body="We got {{ package }} & more, {{ customer_name }}.",
    )

    message = render_preview(event="order_received", language="en", channel="email")

    assert message.template == f"db:{row.pk}"
    assert message.subject == "Custom: order 1042"
    assert message.text == "We got Bronze & more, Alice."  # text is not HTML-escaped
    assert "We got Bronze &amp; more, Alice." in message.html
    row.is_active = False
    row.save()
    message = render_preview(event="order_received", language="en", channel="email")
    assert message.template == "file:notifications/order_received/en/body.txt"


def test_broken_database_template_falls_back_to_the_file(caplog):
    row = NotificationTemplate.objects.create(
        event="order_received", language="id", channel="whatsapp", body="{% if %}"
    )

    with caplog.at_level(logging.ERROR, logger="notifications.rendering"):
        message = render_preview(event="order_received", language="id", channel="whatsapp")

    assert message.template == "file:notifications/order_received/id/whatsapp.txt"
    assert f"notification template {row.pk} is broken" in caplog.text


def test_template_validation_reports_syntax_errors():
    row = NotificationTemplate(
        event="order_received",
        language="en",
        channel="email",
        subject="Order {% if %}",
        body="{% for x in %}",
    )
    with pytest.raises(ValidationError) as caught:
        row.full_clean()
    assert set(caught.value.message_dict) == {"subject", "body"}


def test_approved_whatsapp_template_gets_parameters_in_order(settings):
    settings.WHATSAPP_TEMPLATES = {**settings.WHATSAPP_TEMPLATES, "server_ready": "server_ready_v2"}
    settings.WHATSAPP_TEMPLATE_LANGUAGES = {"en": "en_US", "id": "id"}
    base = base_context(user=None, language="id")
    base["customer_name"] = "Alice"
    context = {**sample_context("server_ready"), "server_name": "Survival\nSMP"}

    outgoing, stored = render_pair(
        event="server_ready",
        language="id",
        channel="whatsapp",
        base=base,
        context=context,
        secrets={"panel_password": "Top-Secret-99"},
    )

    assert outgoing.whatsapp_template.name == "server_ready_v2"
    assert outgoing.whatsapp_template.language == "id"
    assert outgoing.whatsapp_template.parameters == [
        "Alice",
        "1042",
        "Survival SMP",
        "203.0.113.10:25565",
        "https://panel.example.com",
        "alice_1042",
        "Top-Secret-99",
    ]
    assert stored.template == outgoing.template == "wa:server_ready_v2/id"
    assert stored.whatsapp_template is None
    assert "Top-Secret-99" not in stored.text


@pytest.mark.parametrize("event", sorted(SPECS))
def test_sample_context_is_exactly_the_declared_keys(event):
    spec = SPECS[event]
    assert set(spec.sample) <= set(spec.required) | set(spec.optional)
    assert set(spec.required) - set(spec.secret_keys) <= set(spec.sample)
    declared = set(spec.required) | set(spec.optional) | {"customer_name", "credentials_access"}
    assert set(spec.whatsapp_params) <= declared
