"""Login details: one-time reveal links, inline secrets, no password stored or logged."""

import hashlib
import logging
import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from notifications.events import sample_context
from notifications.models import (
    CredentialReveal,
    CredentialsResendRequest,
    Delivery,
    DeliverySecret,
)
from notifications.services import (
    credentials_resend_allowed,
    credentials_reveal_create,
    notification_secrets_purge,
    notification_send,
)
from notifications.tests.conftest import (
    PASSWORD,
    WA_TOKEN,
    database_text,
    run_queued,
    wa_error,
    wa_ok,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("notifications.tests.urls")]

LINK = re.compile(r"https://portal\.example\.com/notifications/credentials/([A-Za-z0-9_-]+)/")


def send_ready(user, key="server_ready:deployment-12"):
    return notification_send(
        event="server_ready",
        user=user,
        context=sample_context("server_ready"),
        event_key=key,
        secrets={"panel_username": "alice_1042", "panel_password": PASSWORD},
    )


def sent_token() -> str:
    (message,) = mail.outbox
    tokens = set(LINK.findall(message.body))
    assert len(tokens) == 1
    return tokens.pop()


def reveal_url(token: str) -> str:
    return reverse("notifications:credentials-reveal", args=[token])


@pytest.fixture
def link_sent(customer, caplog):
    with caplog.at_level(logging.DEBUG):
        send_ready(customer)
        run_queued()
    return sent_token()


def test_link_mode_sends_a_link_and_stores_no_secret(link_sent, caplog):
    token = link_sent
    (message,) = mail.outbox
    assert PASSWORD not in message.body
    assert PASSWORD not in message.alternatives[0][0]
    reveal = CredentialReveal.objects.get()
    assert reveal.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = database_text()
    for secret in (PASSWORD, token):
        assert secret not in stored
        assert secret not in caplog.text
    delivery = Delivery.objects.get()
    assert "Password: open this one-time secure link" in delivery.body
    assert "********" in delivery.body
    assert not DeliverySecret.objects.exists()


def page_url() -> str:
    return reverse("notifications:credentials-page")


def test_reveal_page_shows_the_details_once(link_sent, client, customer):
    client.force_login(customer)

    # The link's token is exchanged at once: the browser goes on to a token-less page.
    opened = client.get(reveal_url(link_sent))
    assert opened.status_code == 302
    assert opened["Location"] == page_url()
    assert link_sent not in opened["Location"]
    page = client.get(page_url())
    assert page.status_code == 200
    assert PASSWORD not in page.content.decode()  # a button first: previews do not use it up
    assert "no-store" in page["Cache-Control"]

    shown = client.post(page_url())
    assert shown.status_code == 200
    assert PASSWORD in shown.content.decode()
    assert "alice_1042" in shown.content.decode()
    reveal = CredentialReveal.objects.get()
    assert reveal.revealed_at is not None
    assert reveal.secrets is None

    again = client.post(page_url())
    assert again.status_code in (404, 410)
    assert PASSWORD not in again.content.decode()
    assert client.get(reveal_url(link_sent)).status_code == 410
    assert "already shown once" in client.get(reveal_url(link_sent)).content.decode()


def test_the_token_from_an_access_log_opens_nothing_once_the_link_was_opened(
    link_sent, client, customer
):
    """Someone who read the link in a log or a browser history, even logged in as the
    customer in another session, cannot use it after the customer opened it."""
    client.force_login(customer)
    assert client.get(reveal_url(link_sent)).status_code == 302
    assert client.get(reveal_url(link_sent)).status_code == 302  # same session: fine

    from django.test import Client

    intruder = Client()
    intruder.force_login(customer)
    replay = intruder.get(reveal_url(link_sent))
    assert replay.status_code == 410
    assert "already opened in another browser" in replay.content.decode()
    assert intruder.get(page_url()).status_code == 404
    assert intruder.post(page_url()).status_code == 404
    assert CredentialReveal.objects.get().revealed_at is None
    # The customer's own session still reveals them.
    assert PASSWORD in client.post(page_url()).content.decode()


def test_a_newer_link_for_the_same_server_revokes_the_older_one(customer, client):
    first = credentials_reveal_create(
        user=customer,
        secrets={"panel_password": "old"},
        ttl=timedelta(hours=1),
        scope="deployment-7",
    )
    other_server = credentials_reveal_create(
        user=customer, secrets={"panel_password": "x"}, ttl=timedelta(hours=1), scope="deployment-8"
    )
    second = credentials_reveal_create(
        user=customer,
        secrets={"panel_password": "new"},
        ttl=timedelta(hours=1),
        scope="deployment-7",
    )
    client.force_login(customer)

    old = client.get(LINK.fullmatch(first).group(0).removeprefix("https://portal.example.com"))
    assert old.status_code == 410
    assert "newer message" in old.content.decode()
    assert (
        CredentialReveal.objects.get(scope="deployment-7", revoked_at__isnull=False).secrets is None
    )
    for url, password in ((second, "new"), (other_server, "x")):
        assert client.get(url.removeprefix("https://portal.example.com")).status_code == 302
        assert password in client.post(page_url()).content.decode()


def test_asking_again_revokes_the_link_of_the_first_message(customer):
    send_ready(customer, key="server_ready:deployment-12")
    run_queued()
    notification_send(
        event="credentials_resent",
        user=customer,
        context=sample_context("credentials_resent"),
        event_key="credentials_resent:deployment-12:1",
        secrets={"panel_username": "alice_1042", "panel_password": PASSWORD},
    )
    reveals = CredentialReveal.objects.order_by("pk")
    assert [r.scope for r in reveals] == ["deployment-12", "deployment-12"]
    assert reveals[0].revoked_at is not None
    assert reveals[1].revoked_at is None


def test_another_user_cannot_use_the_link(link_sent, client, other_customer):
    client.force_login(other_customer)

    response = client.get(reveal_url(link_sent))
    assert response.status_code == 404
    assert "not valid for your account" in response.content.decode()
    assert client.post(page_url()).status_code == 404
    reveal = CredentialReveal.objects.get()
    assert reveal.revealed_at is None
    assert reveal.opened_at is None
    assert reveal.secrets is not None


def test_anonymous_visitor_is_sent_to_login(link_sent, client):
    response = client.get(reveal_url(link_sent))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert CredentialReveal.objects.get().revealed_at is None


def test_expired_link_says_so_and_how_to_get_a_new_one(link_sent, client, customer, settings):
    # The link outlives a session (config/settings/auth.py); this one stays open to the end.
    for name in ("SESSION_COOKIE_AGE", "SESSION_ABSOLUTE_TIMEOUT", "SESSION_IDLE_TIMEOUT_CUSTOMER"):
        setattr(settings, name, 30 * 86400)
    client.force_login(customer)
    later = timezone.now() + timedelta(hours=settings.CREDENTIALS_LINK_TTL_HOURS, minutes=1)

    assert client.get(reveal_url(link_sent)).status_code == 302
    with time_machine.travel(later):
        page = client.post(page_url())
        assert notification_secrets_purge() == (0, 1)

    assert page.status_code == 410
    text = page.content.decode()
    assert "This link has expired." in text
    assert "Request your login details again" in text
    assert PASSWORD not in text
    reveal = CredentialReveal.objects.get()
    assert (reveal.revealed_at, reveal.secrets) == (None, None)


def test_reveal_url_is_absolute_and_only_the_hash_is_kept(customer):
    url = credentials_reveal_create(
        user=customer, secrets={"panel_password": "p"}, ttl=timedelta(hours=1)
    )
    token = LINK.fullmatch(url).group(1)
    assert len(token) >= 40
    assert not CredentialReveal.objects.filter(token_hash=token).exists()
    with pytest.raises(ValueError, match="ttl"):
        credentials_reveal_create(user=customer, secrets={}, ttl=timedelta(0))


def test_inline_mode_renders_the_password_only_into_outgoing_messages(
    wa_customer, mocked_responses, settings, caplog
):
    settings.CREDENTIALS_DELIVERY = "inline"
    wa_ok(mocked_responses, "wamid.inline")

    with caplog.at_level(logging.DEBUG):
        send_ready(wa_customer)
        assert DeliverySecret.objects.count() == 2
        run_queued()

    assert PASSWORD in mocked_responses.calls[0].request.body.decode()
    assert f"Password: {PASSWORD}" in mail.outbox[0].body
    for delivery in Delivery.objects.all():
        assert "Password: ********" in delivery.body
        assert "Username: ********" in delivery.body
        assert delivery.context["secret_fields"] == ["panel_password", "panel_username"]
    # email is finished once sent; WhatsApp keeps its secret until "delivered" or expiry
    assert list(DeliverySecret.objects.values_list("delivery__channel", flat=True)) == ["whatsapp"]
    assert PASSWORD not in database_text()  # the remaining secret is encrypted at rest
    assert PASSWORD not in caplog.text
    assert WA_TOKEN not in caplog.text
    assert not CredentialReveal.objects.exists()


def test_inline_password_follows_the_fallback(wa_only_customer, mocked_responses, settings, caplog):
    settings.CREDENTIALS_DELIVERY = "inline"
    wa_error(mocked_responses, 400, 131026)

    with caplog.at_level(logging.DEBUG):
        send_ready(wa_only_customer)
        run_queued()

    assert f"Password: {PASSWORD}" in mail.outbox[0].body
    assert not DeliverySecret.objects.exists()
    assert PASSWORD not in database_text()
    assert PASSWORD not in caplog.text


def test_secret_expired_before_sending_is_not_invented(customer, settings):
    settings.CREDENTIALS_DELIVERY = "inline"
    send_ready(customer)
    later = timezone.now() + timedelta(hours=settings.NOTIFICATIONS_SECRET_RETENTION_HOURS + 1)

    with time_machine.travel(later):
        run_queued()

    body = mail.outbox[0].body
    assert "Password: ********" in body
    assert "request them again from your dashboard" in body
    assert PASSWORD not in body


def test_resend_is_rate_limited_per_user_and_key(customer, other_customer, settings):
    settings.CREDENTIALS_RESEND_LIMIT = 3
    settings.CREDENTIALS_RESEND_WINDOW_MINUTES = 60
    start = timezone.now()

    with time_machine.travel(start, tick=False):
        results = [credentials_resend_allowed(user=customer, key="deployment-12") for _ in range(4)]
        assert credentials_resend_allowed(user=customer, key="deployment-13") is True
        assert credentials_resend_allowed(user=other_customer, key="deployment-12") is True
    assert results == [True, True, True, False]
    assert CredentialsResendRequest.objects.filter(user=customer, key="deployment-12").count() == 3

    with time_machine.travel(start + timedelta(minutes=59), tick=False):
        assert credentials_resend_allowed(user=customer, key="deployment-12") is False
    with time_machine.travel(start + timedelta(minutes=61), tick=False):
        assert credentials_resend_allowed(user=customer, key="deployment-12") is True
    assert CredentialsResendRequest.objects.filter(user=customer, key="deployment-12").count() == 4


def test_resent_credentials_go_through_the_same_path(customer, caplog):
    assert credentials_resend_allowed(user=customer, key="deployment-12")

    with caplog.at_level(logging.DEBUG):
        (delivery,) = notification_send(
            event="credentials_resent",
            user=customer,
            context=sample_context("credentials_resent"),
            event_key="credentials_resent:deployment-12:1",
            secrets={"panel_password": PASSWORD},
        )
        run_queued()

    delivery.refresh_from_db()
    assert delivery.status == "sent"
    assert mail.outbox[0].subject == "Your login details for Survival SMP"
    assert LINK.search(mail.outbox[0].body)
    assert PASSWORD not in database_text()
    assert PASSWORD not in caplog.text
