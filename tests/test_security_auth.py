"""ASVS L2 review: log-in lockout, the staff second factor, session lifetimes, sign-up.

Each test here failed before its fix: unlimited passwords (portal, admin, HTTP Basic on the
API), an admin without a second factor, 14-day sessions without an idle limit and 3-day reset
links, and a sign-up that said "an account with this e-mail already exists".

These tests use a plain django.test.Client: the suite's `client` fixture marks force-logged-in
staff as verified (conftest.StaffVerifiedClient), which is what is tested here for real.
"""

import re
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from common.lockout import client_ip_address
from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"  # tests.factories.UserFactory's
SIGNUP_PASSWORD = "a-long-unusual-passphrase-7"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def portal_login(client, username, password, **extra):
    return client.post(reverse("login"), {"username": username, "password": password}, **extra)


def admin_login(client, username, password):
    return client.post(
        reverse("admin:login"), {"username": username, "password": password, "next": "/admin/"}
    )


def code_for(device, *, offset=0):
    return f"{totp(device.bin_key, drift=offset):06d}"


# --- 1. Brute force ---------------------------------------------------------------------------


def test_portal_login_locks_the_account_from_that_address_after_five_failures(customer, clock):
    client = Client(REMOTE_ADDR="198.51.100.7")
    answers = [portal_login(client, customer.username, "wrong").status_code for _ in range(5)]
    assert answers == [200, 200, 200, 200, 429]

    with mock.patch.object(ModelBackend, "authenticate", autospec=True) as backend:
        locked = portal_login(client, customer.username, PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed log-in attempts" in locked.content.decode()
    assert locked["Retry-After"] == "900"
    backend.assert_not_called()  # refused before any password hash
    assert client.get(reverse("dashboard")).status_code == 302

    # The owner, elsewhere, is not locked out by the guesser.
    elsewhere = Client(REMOTE_ADDR="203.0.113.9")
    assert portal_login(elsewhere, customer.username, PASSWORD).status_code == 302

    clock.shift(timedelta(minutes=15, seconds=1))
    assert portal_login(client, customer.username, PASSWORD).status_code == 302


def test_changing_the_case_of_the_username_does_not_reset_the_count(customer):
    client = Client()
    for variant in [
        "Alice@example.com",
        "ALICE@example.com",
        " alice@example.com",
        "aLice@Example.com",
    ]:
        assert portal_login(client, variant, "wrong").status_code == 200
    assert portal_login(client, "alice@EXAMPLE.com", "wrong").status_code == 429


def test_one_address_guessing_many_accounts_is_locked_out_at_its_own_limit(settings):
    settings.AXES_IP_FAILURE_LIMIT = 8
    victim = factories.UserFactory(username="victim@example.com")
    client = Client(REMOTE_ADDR="198.51.100.7")
    answers = [portal_login(client, f"user{n}@example.com", "wrong").status_code for n in range(8)]
    assert answers == [200] * 7 + [429]
    assert portal_login(client, victim.username, PASSWORD).status_code == 429
    assert portal_login(Client(), victim.username, PASSWORD).status_code == 302


def test_admin_login_is_locked_out_too(staff):
    client = Client()
    answers = [admin_login(client, staff.username, "wrong").status_code for _ in range(5)]
    assert answers == [200, 200, 200, 200, 429]
    assert admin_login(client, staff.username, PASSWORD).status_code == 429


def test_a_json_client_gets_the_lockout_as_json(customer):
    client = Client()
    for _ in range(4):
        portal_login(client, customer.username, "wrong")
    response = portal_login(client, customer.username, "wrong", HTTP_ACCEPT="application/json")
    assert response.status_code == 429
    assert response.json() == {
        "message": response.json()["message"],
        "code": "locked_out",
        "extra": {"retry_after": 900},
    }


def test_the_api_takes_no_passwords(customer):
    """HTTP Basic is gone: a password on an API call is neither checked nor accepted."""
    client = Client()
    with mock.patch.object(ModelBackend, "authenticate", autospec=True) as backend:
        response = client.get(
            reverse("api-order-list"),
            HTTP_AUTHORIZATION="Basic YWxpY2VAZXhhbXBsZS5jb206Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5LTk=",
        )
    assert response.status_code == 401
    backend.assert_not_called()
    # The session (the portal's login) still works for the API.
    portal_login(client, customer.username, PASSWORD)
    assert client.get(reverse("api-order-list")).status_code == 200


def test_client_address_behind_trusted_proxies(settings, rf):
    forwarded = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7", REMOTE_ADDR="10.0.0.2")
    assert client_ip_address(forwarded) == "10.0.0.2"  # no proxy trusted: the peer
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip_address(forwarded) == "198.51.100.7"  # the left part is the client's claim
    assert client_ip_address(rf.get("/", REMOTE_ADDR="10.0.0.2")) == "10.0.0.2"


# --- 2. Staff second factor -------------------------------------------------------------------


def enrol(client, staff):
    """Password, then the enrolment page with the first code; returns device and codes."""
    assert (
        admin_login(client, staff.username, PASSWORD).url == "/admin/two-factor/?next=%2Fadmin%2F"
    )
    page = client.get("/admin/two-factor/?next=/admin/", follow=True)
    assert page.redirect_chain[-1][0] == "/admin/two-factor/enrol/?next=%2Fadmin%2F"
    device = TOTPDevice.objects.get(user=staff, confirmed=False)
    done = client.post(
        reverse("admin:two_factor_enrol"), {"token": code_for(device), "next": "/admin/"}
    )
    assert done.status_code == 200
    return TOTPDevice.objects.get(user=staff, confirmed=True), done.context["codes"]


def test_staff_without_a_device_are_led_to_enrolment_and_then_get_in(staff, clock):
    client = Client()
    admin_login(client, staff.username, PASSWORD)
    assert client.get(reverse("admin:index")).status_code == 302  # password alone: no admin

    page = client.get(reverse("admin:two_factor_enrol"))
    html = page.content.decode()
    device = TOTPDevice.objects.get(user=staff, confirmed=False)
    secret = page.context["secret"]
    assert secret in html
    assert 'src="data:image/svg+xml' in html
    assert page.context["otpauth_uri"] == device.config_url
    assert device.config_url.startswith("otpauth://totp/GameHost%20Portal%3Astaff%40example.com?")
    assert client.get(reverse("admin:two_factor_enrol")).context["secret"] == secret  # stable

    wrong = client.post(reverse("admin:two_factor_enrol"), {"token": "000000"})
    assert "That code is not valid" in wrong.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302

    clock.shift(timedelta(seconds=2))  # past the throttle of the wrong code
    done = client.post(reverse("admin:two_factor_enrol"), {"token": code_for(device)})
    codes = done.context["codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(code in done.content.decode() for code in codes)
    assert TOTPDevice.objects.get(user=staff).confirmed
    assert client.get(reverse("admin:index")).status_code == 200
    # Codes are shown once: the page for renewing shows a count, not the codes.
    renew = client.get(reverse("admin:two_factor_recovery_codes")).content.decode()
    assert "10 unused recovery codes" in renew
    assert codes[0] not in renew


def test_staff_with_a_device_must_give_a_right_code(staff, clock):
    enrol(Client(), staff)
    device = TOTPDevice.objects.get(user=staff)
    clock.shift(timedelta(minutes=1))  # a new code (a used one is never taken twice)

    client = Client()
    assert admin_login(client, staff.username, PASSWORD).status_code == 302
    assert client.get(reverse("admin:index")).url.startswith(reverse("admin:login"))
    assert client.get(reverse("admin:login")).url == reverse("admin:two_factor")
    asked = client.get(reverse("admin:two_factor"))
    assert asked.status_code == 200
    assert "Enter the 6-digit code" in asked.content.decode()
    # With a device, enrolling another needs the old one first.
    assert client.get(reverse("admin:two_factor_enrol")).url.startswith(reverse("admin:two_factor"))

    right = code_for(device)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    refused = client.post(reverse("admin:two_factor"), {"token": wrong})
    assert refused.status_code == 200
    assert "That code is not valid" in refused.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302

    clock.shift(timedelta(seconds=2))
    session_before = client.cookies["sessionid"].value
    accepted = client.post(
        reverse("admin:two_factor"), {"token": code_for(device), "next": "/admin/"}
    )
    assert accepted.url == "/admin/"
    assert client.cookies["sessionid"].value != session_before  # a new key for the new rights
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("admin:billing_order_changelist")).status_code == 200


def test_a_recovery_code_works_once(staff, clock):
    _, codes = enrol(Client(), staff)

    first = Client()
    admin_login(first, staff.username, PASSWORD)
    assert first.post(reverse("admin:two_factor"), {"token": codes[0].upper()}).status_code == 302
    assert first.get(reverse("admin:index")).status_code == 200
    assert StaticToken.objects.filter(device__user=staff).count() == 9

    clock.shift(timedelta(seconds=5))
    second = Client()
    admin_login(second, staff.username, PASSWORD)
    again = second.post(reverse("admin:two_factor"), {"token": codes[0]})
    assert "That code is not valid" in again.content.decode()
    assert second.get(reverse("admin:index")).status_code == 302
    clock.shift(timedelta(seconds=5))
    assert second.post(reverse("admin:two_factor"), {"token": codes[1]}).status_code == 302
    assert second.get(reverse("admin:index")).status_code == 200


def test_renewing_recovery_codes_replaces_the_old_ones(staff, clock):
    client = Client()
    _, old = enrol(client, staff)
    new = client.post(reverse("admin:two_factor_recovery_codes")).context["codes"]
    assert len(new) == 10
    assert not set(old) & set(new)
    stored = StaticToken.objects.filter(device__user=staff).values_list("token", flat=True)
    assert set(stored) == set(new)


def test_customers_never_reach_the_second_factor_pages(customer):
    client = Client()
    portal_login(client, customer.username, PASSWORD)
    assert client.get(reverse("admin:two_factor")).url.startswith(reverse("admin:login"))
    assert client.get(reverse("admin:two_factor_enrol")).url.startswith(reverse("admin:login"))
    assert not TOTPDevice.objects.exists()


def test_the_requirement_can_be_switched_off_in_an_emergency(staff, settings):
    settings.OTP_ADMIN_REQUIRED = False
    client = Client()
    assert admin_login(client, staff.username, PASSWORD).url == "/admin/"
    assert client.get(reverse("admin:index")).status_code == 200


def test_createsuperuser_and_the_demo_admin_can_enrol_and_log_in(settings, clock, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long-unusual-passphrase-7")
    call_command("createsuperuser", interactive=False, username="root", email="root@example.com")
    root = get_user_model().objects.get(username="root")
    client = Client()
    assert admin_login(client, "root", "a-long-unusual-passphrase-7").status_code == 302
    client.get(reverse("admin:two_factor_enrol"))
    device = TOTPDevice.objects.get(user=root)
    client.post(reverse("admin:two_factor_enrol"), {"token": code_for(device)})
    assert client.get(reverse("admin:index")).status_code == 200

    settings.DEBUG = True
    call_command("demo_admin", stdout=mock.Mock())
    demo = get_user_model().objects.get(username="admin")
    client = Client()
    admin_login(client, "admin", "demo-admin-password")
    client.get(reverse("admin:two_factor_enrol"))
    device = TOTPDevice.objects.get(user=demo)
    client.post(reverse("admin:two_factor_enrol"), {"token": code_for(device)})
    assert client.get(reverse("admin:index")).status_code == 200


# --- 3. Session lifetimes ---------------------------------------------------------------------


def test_lifetimes_are_set():
    from django.conf import settings

    assert settings.SESSION_COOKIE_AGE == 12 * 3600
    assert settings.SESSION_ABSOLUTE_TIMEOUT == 12 * 3600
    assert settings.SESSION_IDLE_TIMEOUT_STAFF == 30 * 60
    assert settings.SESSION_IDLE_TIMEOUT_CUSTOMER == 60 * 60
    assert settings.PASSWORD_RESET_TIMEOUT == 3600


def test_a_customer_is_logged_out_after_an_hour_idle(customer, clock):
    client = Client()
    portal_login(client, customer.username, PASSWORD)
    for _ in range(3):  # every request renews the idle time
        clock.shift(timedelta(minutes=59))
        assert client.get(reverse("dashboard")).status_code == 200

    clock.shift(timedelta(minutes=61))
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert client.get(reverse("api-order-list")).status_code == 401
    page = portal_login(client, customer.username, PASSWORD, follow=True)
    assert "logged out after a period of inactivity" in page.content.decode()


def test_live_polls_do_not_keep_an_idle_session_alive(customer, clock):
    """An open tab's htmx polls are not activity: the idle limit still ends the session, and
    the poll after it sends the whole page to the login (not the login page into a fragment)."""
    client = Client()
    portal_login(client, customer.username, PASSWORD)
    poll = {"HTTP_HX_REQUEST": "true"}
    for _ in range(6):  # 60 min of polling, 10 min apart, nothing else
        clock.shift(timedelta(minutes=10))
        assert client.get(reverse("dashboard-live"), **poll).status_code in (200, 286)

    clock.shift(timedelta(minutes=1))
    ended = client.get(reverse("dashboard-live"), **poll)

    assert ended.status_code == 200
    assert ended["HX-Redirect"].startswith(reverse("login"))
    assert client.get(reverse("dashboard")).status_code == 302


def test_a_click_in_a_fragment_is_activity(customer, clock):
    client = Client()
    portal_login(client, customer.username, PASSWORD)
    clock.shift(timedelta(minutes=50))
    assert client.get(reverse("dashboard"), HTTP_HX_REQUEST="true").status_code == 200

    clock.shift(timedelta(minutes=50))

    assert client.get(reverse("dashboard")).status_code == 200


def test_staff_are_logged_out_after_thirty_minutes_idle(staff, clock):
    client = Client()
    enrol(client, staff)
    clock.shift(timedelta(minutes=29))
    assert client.get(reverse("admin:index")).status_code == 200
    clock.shift(timedelta(minutes=31))
    assert client.get(reverse("admin:index")).url.startswith(reverse("admin:login"))
    assert client.get(reverse("dashboard")).status_code == 302  # logged out, not just unverified


@pytest.mark.parametrize("save_every_request", [False, True])
def test_twelve_hours_after_login_the_session_ends_however_active(
    customer, clock, settings, save_every_request
):
    settings.SESSION_SAVE_EVERY_REQUEST = save_every_request
    client = Client()
    portal_login(client, customer.username, PASSWORD)
    for _ in range(14):  # 11 h 40 min of steady use
        clock.shift(timedelta(minutes=50))
        assert client.get(reverse("dashboard")).status_code == 200
    clock.shift(timedelta(minutes=21))
    assert client.get(reverse("dashboard")).status_code == 302

    # A new login starts a new twelve hours.
    portal_login(client, customer.username, PASSWORD)
    clock.shift(timedelta(minutes=50))
    assert client.get(reverse("dashboard")).status_code == 200


def test_a_password_reset_link_is_dead_after_an_hour(customer, clock):
    client = Client()
    client.post(reverse("password_reset"), {"email": customer.email})
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    clock.shift(timedelta(minutes=61))
    page = client.get(link, follow=True)
    assert page.context["validlink"] is False


# --- 4. Sign-up without account enumeration ---------------------------------------------------


def signup(client, email, password=SIGNUP_PASSWORD, **extra):
    data = {
        "full_name": "Budi Santoso",
        "email": email,
        "password": password,
        "password_again": password,
        "preferred_language": "en",
        **extra,
    }
    return client.post(reverse("signup"), data)


def confirm_link(message):
    return re.search(r"https?://[^/\s]+(/accounts/signup/confirm/\S+/)", message.body).group(1)


def _without_csrf_token(content: bytes) -> bytes:
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", content)


def test_signing_up_with_a_taken_address_looks_like_a_new_sign_up(customer):
    new = signup(Client(), "newcomer@example.com")
    taken = signup(Client(), "ALICE@example.com")

    assert (new.status_code, new.url) == (taken.status_code, taken.url)
    assert new.url == reverse("signup-done")
    # Byte for byte, but for the per-visitor CSRF token of the footer's language form.
    assert _without_csrf_token(Client().get(new.url).content) == _without_csrf_token(
        Client().get(taken.url).content
    )
    # Only the mailboxes learn the difference.
    to_new, to_owner = mail.outbox
    assert to_new.to == ["newcomer@example.com"]
    assert "Confirm your" in to_new.subject
    assert to_owner.to == ["alice@example.com"]
    assert "tried to sign up" in to_owner.subject
    assert "reset" in to_owner.body
    assert "/accounts/signup/confirm/" not in to_owner.body
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)  # nothing changed for the owner


def test_validation_errors_do_not_depend_on_the_account(customer, settings):
    settings.WHATSAPP_ENABLED = True  # the WhatsApp number is on the form only then
    for email in ["alice@example.com", "newcomer@example.com"]:
        response = signup(Client(), email, whatsapp_number="12345")
        assert response.status_code == 200
        assert "not a valid phone number" in response.content.decode().lower()
    assert mail.outbox == []


def test_an_unconfirmed_sign_up_cannot_log_in_and_answers_like_a_wrong_password():
    signup(Client(), "newcomer@example.com")
    unconfirmed = portal_login(Client(), "newcomer@example.com", "a-long-unusual-passphrase-7")
    wrong = portal_login(Client(), "nobody@example.com", "a-long-unusual-passphrase-7")
    assert unconfirmed.status_code == wrong.status_code == 200
    assert unconfirmed.context["form"].errors == wrong.context["form"].errors


def test_the_confirmation_link_needs_the_sign_up_password_and_works_once():
    signup(Client(), "newcomer@example.com")
    link = confirm_link(mail.outbox[0])
    client = Client()
    assert client.get(link).context["validlink"] is True
    refused = client.post(link, {"password": "not-the-password-1"})
    assert "not the password chosen" in refused.content.decode()
    assert client.post(link, {"password": SIGNUP_PASSWORD}).url == reverse("plan-list")
    assert client.get(reverse("dashboard")).status_code == 200
    assert Client().get(link).context["validlink"] is False


def test_nobody_can_choose_the_password_of_someone_elses_address():
    """Pre-hijacking: the attacker signs up first, the owner later; the owner's password wins
    and the attacker's link and password are worthless."""
    signup(Client(), "victim@example.com", password="attackers-passphrase-1")
    attackers_link = confirm_link(mail.outbox[0])
    signup(Client(), "victim@example.com", password="victims-own-passphrase-2")
    victims_link = confirm_link(mail.outbox[1])

    owner = Client()
    assert owner.get(attackers_link).context["validlink"] is False
    refused = owner.post(victims_link, {"password": "attackers-passphrase-1"})
    assert refused.status_code == 200
    assert owner.post(victims_link, {"password": "victims-own-passphrase-2"}).status_code == 302
    assert portal_login(Client(), "victim@example.com", "attackers-passphrase-1").status_code == 200
    assert get_user_model().objects.filter(username__iexact="victim@example.com").count() == 1


def test_the_suites_client_login_still_works_with_axes(client, customer):
    assert client.login(username=customer.username, password=PASSWORD)
    assert client.get(reverse("dashboard")).status_code == 200
    assert not client.login(username=customer.username, password="wrong")


def test_signing_up_again_does_not_bring_back_a_deactivated_account(customer):
    portal_login(Client(), customer.username, PASSWORD)  # a real customer has logged in
    customer.refresh_from_db()
    customer.is_active = False
    customer.save(update_fields=["is_active"])

    response = signup(Client(), customer.username)

    assert response.url == reverse("signup-done")
    assert "tried to sign up" in mail.outbox[0].subject
    customer.refresh_from_db()
    assert not customer.is_active
    assert customer.check_password(PASSWORD)
