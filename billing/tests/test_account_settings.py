"""Account settings: login by e-mail, verification before the first order, e-mail change by a
signed link, password change, name, billing details, WhatsApp choices while it is disabled."""

import re

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from billing.models import AccountEvent, AccountEventKind, BillingProfile, Order, VerifiedEmail
from tests.factories import UserFactory

PASSWORD = "correct-horse-battery-9"
ORDER = {"plan": "bronze", "billing_cycle": "monthly", "location": "eu"}
WEB_ORDER = {"billing_cycle": "monthly", "location": "eu", "server_name": "Survival"}
User = get_user_model()


def _link(mail) -> str:
    return re.search(r"https?://\S+", mail.body).group(0)


def _path(link: str) -> str:
    return "/" + link.split("://", 1)[1].split("/", 1)[1]


@pytest.fixture
def logged_in(customer) -> Client:
    client = Client()
    client.force_login(customer)
    return client


# --- Login -------------------------------------------------------------------------------------


def test_login_form_asks_for_the_email_and_matches_it_case_insensitively(db, customer):
    client = Client()
    page = client.get(reverse("login")).content.decode()
    assert "E-mail address" in page
    assert "Username" not in page

    response = client.post(
        reverse("login"), {"username": "Alice@Example.COM", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.get(reverse("profile")).status_code == 200

    wrong = Client().post(reverse("login"), {"username": "alice@example.com", "password": "x"})
    assert wrong.status_code == 200
    assert "_auth_user_id" not in wrong.client.session


# --- Verification before the first order -------------------------------------------------------


@pytest.fixture
def unverified(db):
    return UserFactory(username="staffmade@example.com", email_verified=False)


def test_unverified_customer_is_refused_an_order_on_the_api_and_the_web(
    catalog, unverified, api_client, settings
):
    settings.ORDER_REQUIRES_VERIFIED_EMAIL = True
    api_client.force_authenticate(unverified)
    response = api_client.post("/api/v1/orders/", ORDER, format="json")
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "email_not_verified"
    assert body["extra"]["resend_url"] == reverse("account-verification-send")

    web = Client()
    web.force_login(unverified)
    page = web.post(reverse("order-place", args=["bronze"]), WEB_ORDER)
    assert page.status_code == 200
    assert "confirm your e-mail address before placing an order" in page.content.decode()
    assert Order.objects.count() == 0


def test_unverified_customer_may_order_when_the_setting_is_off(
    catalog, unverified, api_client, settings
):
    settings.ORDER_REQUIRES_VERIFIED_EMAIL = False
    api_client.force_authenticate(unverified)
    response = api_client.post("/api/v1/orders/", ORDER, format="json")
    assert response.status_code == 201, response.json()
    assert Order.objects.filter(customer=unverified).count() == 1


def test_resent_verification_link_verifies_and_then_orders_are_accepted(
    catalog, unverified, api_client, mailoutbox, settings
):
    settings.ORDER_REQUIRES_VERIFIED_EMAIL = True
    web = Client()
    web.force_login(unverified)
    assert "Send the link again" in web.get(reverse("profile")).content.decode()
    web.post(reverse("account-verification-send"))
    assert [m.to for m in mailoutbox] == [["staffmade@example.com"]]
    path = _path(_link(mailoutbox[0]))

    assert Client().post(path).status_code == 302  # opened in any browser
    assert VerifiedEmail.objects.get(user=unverified).email == "staffmade@example.com"
    assert list(AccountEvent.objects.filter(user=unverified).values_list("kind", flat=True)) == [
        AccountEventKind.VERIFICATION_SENT,
        AccountEventKind.EMAIL_VERIFIED,
    ]
    api_client.force_authenticate(unverified)
    assert api_client.post("/api/v1/orders/", ORDER, format="json").status_code == 201


def test_send_again_is_limited_to_one_a_minute_and_five_an_hour(db, unverified, mailoutbox):
    web = Client()
    web.force_login(unverified)
    with time_machine.travel("2026-12-05 10:00:00+00:00", tick=False) as clock:
        web.post(reverse("account-verification-send"))
        again = web.post(reverse("account-verification-send"), follow=True)
        assert "We sent you a link a moment ago" in again.content.decode()
        assert len(mailoutbox) == 1
        for _ in range(4):
            clock.shift(61)
            web.post(reverse("account-verification-send"))
        assert len(mailoutbox) == 5
        clock.shift(61)
        web.post(reverse("account-verification-send"))  # the sixth within the hour
        assert len(mailoutbox) == 5
        clock.shift(3600)
        web.post(reverse("account-verification-send"))
    assert len(mailoutbox) == 6
    assert AccountEvent.objects.filter(kind=AccountEventKind.VERIFICATION_SENT).count() == 6


def test_forged_or_expired_verification_link_verifies_nothing(db, unverified, mailoutbox):
    web = Client()
    web.force_login(unverified)
    web.post(reverse("account-verification-send"))
    path = _path(_link(mailoutbox[0]))

    forged = web.post(path[:-3] + "xyz/")
    assert "invalid or has expired" in forged.content.decode()
    with time_machine.travel("2100-01-01"):
        expired = web.post(path)
    assert "invalid or has expired" in expired.content.decode()
    assert not VerifiedEmail.objects.filter(user=unverified).exists()


def test_staff_changing_an_address_in_the_admin_makes_it_unverified(catalog, customer, settings):
    from billing.services.accounts import account_email_is_verified

    assert account_email_is_verified(user=customer)
    customer.email = "elsewhere@example.com"
    customer.save()
    assert not account_email_is_verified(user=customer)


def test_signup_confirmation_verifies_the_address(db, mailoutbox):
    client = Client()
    client.post(
        reverse("signup"),
        {
            "email": "New@Example.com",
            "password": PASSWORD,
            "password_again": PASSWORD,
            "preferred_language": "en",
        },
    )
    client.post(_path(_link(mailoutbox[0])), {"password": PASSWORD})
    user = User.objects.get(username="new@example.com")
    assert user.is_active
    assert VerifiedEmail.objects.get(user=user).email == "new@example.com"
    assert AccountEvent.objects.get(user=user).kind == AccountEventKind.SIGNUP_CONFIRMED


# --- Changing the e-mail -----------------------------------------------------------------------


def test_email_change_happens_only_when_the_link_is_opened_and_the_old_address_is_told(
    customer, logged_in, mailoutbox
):
    response = logged_in.post(
        reverse("account-email-change"),
        {"new_email": "Alice.New@Example.com", "password": PASSWORD},
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.email == "alice@example.com"  # nothing yet
    assert [m.to for m in mailoutbox] == [["alice.new@example.com"]]
    path = _path(_link(mailoutbox[0]))

    assert "alice.new@example.com" in logged_in.get(path).content.decode()  # GET changes nothing
    customer.refresh_from_db()
    assert customer.email == "alice@example.com"

    assert logged_in.post(path).status_code == 302
    customer.refresh_from_db()
    assert (customer.email, customer.username) == ("alice.new@example.com", "alice.new@example.com")
    assert VerifiedEmail.objects.get(user=customer).email == "alice.new@example.com"
    notice = mailoutbox[1]
    assert notice.to == ["alice@example.com"]
    assert "a********@example.com" in notice.body
    event = AccountEvent.objects.get(user=customer, kind=AccountEventKind.EMAIL_CHANGED)
    assert event.data == {"old_email": "alice@example.com", "new_email": "alice.new@example.com"}
    assert event.actor_label == "customer:alice.new@example.com"

    # The link works once; and the new address is the login.
    again = logged_in.post(path)
    assert "invalid or has expired" in again.content.decode()
    fresh = Client()
    fresh.post(reverse("login"), {"username": "alice.new@example.com", "password": PASSWORD})
    assert fresh.get(reverse("profile")).status_code == 200
    old = Client()
    old.post(reverse("login"), {"username": "alice@example.com", "password": PASSWORD})
    assert old.get(reverse("profile")).status_code == 302


def test_email_change_refuses_a_wrong_password_and_a_forged_or_expired_link(
    customer, logged_in, mailoutbox
):
    wrong = logged_in.post(
        reverse("account-email-change"), {"new_email": "a2@example.com", "password": "nope"}
    )
    assert "Your password was entered wrongly." in wrong.content.decode()
    assert mailoutbox == []

    logged_in.post(
        reverse("account-email-change"), {"new_email": "a2@example.com", "password": PASSWORD}
    )
    path = _path(_link(mailoutbox[0]))
    assert "invalid or has expired" in logged_in.post(path[:-3] + "abc/").content.decode()
    with time_machine.travel("2100-01-01"):
        assert "invalid or has expired" in logged_in.post(path).content.decode()
    customer.refresh_from_db()
    assert customer.email == "alice@example.com"


def test_email_change_to_a_taken_address_mails_a_notice_instead_of_a_link(
    customer, other_customer, logged_in, mailoutbox
):
    response = logged_in.post(
        reverse("account-email-change"),
        {"new_email": "MALLORY@example.com", "password": PASSWORD},
    )
    assert response.status_code == 302  # the same answer: no account enumeration
    assert [m.to for m in mailoutbox] == [["mallory@example.com"]]
    assert "already has an account" in mailoutbox[0].body
    assert "http" not in mailoutbox[0].body
    customer.refresh_from_db()
    assert customer.email == "alice@example.com"


def test_an_address_taken_after_the_link_was_sent_is_refused_when_it_is_opened(
    customer, logged_in, mailoutbox
):
    logged_in.post(
        reverse("account-email-change"), {"new_email": "late@example.com", "password": PASSWORD}
    )
    path = _path(_link(mailoutbox[0]))
    UserFactory(username="LATE@example.com")
    page = logged_in.post(path)
    assert "belongs to another account" in page.content.decode()
    customer.refresh_from_db()
    assert customer.email == "alice@example.com"


# --- Password --------------------------------------------------------------------------------


def test_password_change_keeps_this_session_ends_the_others_and_is_recorded(customer, mailoutbox):
    this, other = Client(), Client()
    this.force_login(customer)
    other.force_login(customer)
    assert other.get(reverse("profile")).status_code == 200

    response = this.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "another-long-secret-42",
            "new_password2": "another-long-secret-42",
        },
    )
    assert response.status_code == 302
    assert this.get(reverse("profile")).status_code == 200
    assert other.get(reverse("profile")).status_code == 302  # to the login
    customer.refresh_from_db()
    assert customer.check_password("another-long-secret-42")
    event = AccountEvent.objects.get(user=customer, kind=AccountEventKind.PASSWORD_CHANGED)
    assert event.actor_label == "customer:alice@example.com"
    assert mailoutbox[-1].to == ["alice@example.com"]
    assert "another-long-secret-42" not in mailoutbox[-1].body


def test_password_change_refuses_a_wrong_current_password(customer, logged_in):
    response = logged_in.post(
        reverse("password_change"),
        {
            "old_password": "wrong",
            "new_password1": "another-long-secret-42",
            "new_password2": "another-long-secret-42",
        },
    )
    assert response.status_code == 200
    assert "old_password" in response.context["form"].errors
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)
    assert not AccountEvent.objects.filter(user=customer).exists()


# --- Name and billing details ------------------------------------------------------------------

BILLING = {
    "company_name": "PT Budi Game",
    "address_line1": "Jl. Merdeka 5",
    "address_line2": "",
    "city": "Bandung",
    "postcode": "40111",
    "region": "Jawa Barat",
    "country": "ID",
    "tax_id": "01.234.567.8-901.000",
}


def test_name_and_billing_details_are_saved_and_recorded(customer, logged_in):
    assert (
        logged_in.post(
            reverse("profile-name"), {"first_name": "Alice", "last_name": "Liddell"}
        ).status_code
        == 302
    )
    assert logged_in.post(reverse("profile-billing"), BILLING).status_code == 302
    customer.refresh_from_db()
    assert customer.get_full_name() == "Alice Liddell"
    profile = BillingProfile.objects.get(user=customer)
    assert (profile.company_name, profile.country, profile.tax_id) == (
        "PT Budi Game",
        "ID",
        "01.234.567.8-901.000",
    )
    assert list(AccountEvent.objects.filter(user=customer).values_list("kind", flat=True)) == [
        AccountEventKind.NAME_CHANGED,
        AccountEventKind.BILLING_DETAILS_CHANGED,
    ]
    page = logged_in.get(reverse("profile")).content.decode()
    assert 'value="PT Budi Game"' in page
    assert 'value="Liddell"' in page


@pytest.mark.parametrize(
    ("field", "value"),
    [("country", "XX"), ("country", "Indonesia"), ("tax_id", "9" * 41), ("postcode", "1" * 21)],
)
def test_billing_details_refuse_bad_input(customer, logged_in, field, value):
    response = logged_in.post(reverse("profile-billing"), {**BILLING, field: value})
    assert response.status_code == 200
    assert field in response.context["billing_form"].errors
    assert not BillingProfile.objects.filter(user=customer).exists()


def test_billing_service_refuses_what_the_form_would(customer):
    from billing.services.accounts import billing_profile_update
    from common.actors import Actor
    from common.errors import ApplicationError

    with pytest.raises(ApplicationError) as refused:
        billing_profile_update(
            user=customer, actor=Actor.customer(customer), country="zz", tax_id="x" * 41
        )
    assert set(refused.value.field_errors) == {"country", "tax_id"}
    profile = billing_profile_update(user=customer, actor=Actor.customer(customer), country="id")
    assert profile.country == "ID"


def test_invoice_page_shows_the_details_in_effect_at_issue(place_order, customer, logged_in):
    logged_in.post(reverse("profile-billing"), BILLING)
    invoice = place_order().invoices.get()
    logged_in.post(reverse("profile-billing"), {**BILLING, "company_name": "PT Later"})

    page = logged_in.get(reverse("invoice-detail", args=[invoice.pk])).content.decode()
    assert "PT Budi Game" in page
    assert "Tax ID: 01.234.567.8-901.000" in page
    assert "Indonesia" in page
    assert "PT Later" not in page  # an issued invoice is not rewritten


# --- WhatsApp while it is disabled -------------------------------------------------------------


def test_whatsapp_choices_are_hidden_and_refused_while_whatsapp_is_disabled(
    customer, logged_in, settings
):
    from notifications.selectors import customer_event_specs, customer_profile_get

    settings.WHATSAPP_ENABLED = False
    page = logged_in.get(reverse("profile")).content.decode()
    assert 'value="whatsapp"' not in page
    assert 'name="whatsapp_number"' not in page
    assert 'name="whatsapp_number"' not in Client().get(reverse("signup")).content.decode()

    event = customer_event_specs()[0].event
    data = {"preferred_language": "en", "notify_by_email": "on"}
    data.update({f"channels_{spec.event}": "email" for spec in customer_event_specs()})
    refused = logged_in.post(
        reverse("profile"),
        {
            **data,
            f"channels_{event}": ["email", "whatsapp"],
            "notify_by_whatsapp": "on",
            "whatsapp_number": "+6281234567890",
            "whatsapp_consent": "on",
        },
    )
    assert refused.status_code == 200
    assert f"channels_{event}" in refused.context["form"].errors
    assert customer_profile_get(user=customer) is None

    assert (
        logged_in.post(reverse("profile"), {**data, "whatsapp_number": "+628"}).status_code == 302
    )
    saved = customer_profile_get(user=customer)
    assert (saved.whatsapp_number, saved.notify_by_whatsapp) == ("", False)
    assert all("whatsapp" not in c for c in saved.event_channels.values())


def test_whatsapp_choices_are_offered_when_enabled(customer, logged_in, settings):
    settings.WHATSAPP_ENABLED = True
    page = logged_in.get(reverse("profile")).content.decode()
    assert 'value="whatsapp"' in page
    assert 'name="whatsapp_number"' in page


# --- Staff see the history ---------------------------------------------------------------------


def test_staff_see_email_and_password_changes_in_the_admin(admin_client, customer):
    AccountEvent.objects.create(
        user=customer, kind=AccountEventKind.PASSWORD_CHANGED, actor_label="customer:alice"
    )
    page = admin_client.get(reverse("admin:billing_accountevent_changelist"))
    assert page.status_code == 200
    assert "Password changed" in page.content.decode()
