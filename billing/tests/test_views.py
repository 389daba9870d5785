"""The customer's web journey and the staff admin action, through real HTTP requests."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.urls import reverse

from billing.models import Invoice, InvoiceStatus, Order, OrderStatus
from notifications.models import CustomerProfile
from provisioning.models import ProvisioningRequest
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def signup(client, **overrides):
    data = {
        "full_name": "Budi Santoso",
        "email": "Budi@Example.com",
        "password": "a-long-unusual-passphrase-7",
        "password_again": "a-long-unusual-passphrase-7",
        "whatsapp_number": "0812-3456-7890",
        "whatsapp_consent": "on",
        "preferred_language": "id",
        **overrides,
    }
    return client.post(reverse("signup"), data)


def confirm_signup(client, password=None):
    """Follow the confirmation link of the last e-mail, with the sign-up's password."""
    link = re.search(r"https?://[^/\s]+(/accounts/signup/confirm/\S+/)", mail.outbox[-1].body)
    return client.post(link.group(1), {"password": password or "a-long-unusual-passphrase-7"})


def test_signup_creates_login_and_profile_with_e164_number(client, settings):
    settings.WHATSAPP_ENABLED = True  # the WhatsApp fields are shown only then
    response = signup(client)

    assert response.status_code == 302
    assert response.url == reverse("signup-done")
    profile = CustomerProfile.objects.get(user__username="budi@example.com")
    assert profile.whatsapp_number == "+6281234567890"
    assert profile.preferred_language == "id"
    assert profile.notify_by_whatsapp is True
    assert profile.user.is_active is False  # until the e-mailed link is confirmed
    assert client.get(reverse("dashboard")).status_code == 302

    assert confirm_signup(client).url == reverse("plan-list")
    assert client.get(reverse("dashboard")).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"whatsapp_number": "12345"}, "not a valid phone number"),
        ({"password": "short", "password_again": "short"}, "too short"),
        ({"password_again": "different-passphrase-8"}, "differ"),
        ({"email": "not-an-email"}, "valid email"),
    ],
)
def test_signup_errors_are_shown_and_nothing_is_created(client, overrides, message, settings):
    settings.WHATSAPP_ENABLED = True  # the WhatsApp fields are shown only then
    response = signup(client, **overrides)
    assert response.status_code == 200
    assert message in response.content.decode().lower()
    assert not CustomerProfile.objects.exists()


def test_duplicate_email_answers_as_for_a_new_one_and_mails_the_owner(client):
    signup(client)
    confirm_signup(client)
    client.logout()
    mail.outbox.clear()
    response = signup(client, email="BUDI@example.com", password_again="x", password="x")
    assert response.status_code == 200  # validation errors do not depend on the account

    response = signup(client, email="BUDI@example.com")

    assert response.status_code == 302
    assert response.url == reverse("signup-done")
    assert "already exists" not in client.get(response.url).content.decode()
    assert [m.to for m in mail.outbox] == [["budi@example.com"]]
    assert "tried to sign up" in mail.outbox[0].subject


def test_password_reset_sends_a_working_link(client):
    signup(client)
    confirm_signup(client)
    client.logout()
    mail.outbox.clear()
    client.post(reverse("password_reset"), {"email": "budi@example.com"})

    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    response = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "another-long-phrase-42", "new_password2": "another-long-phrase-42"},
    )
    assert response.status_code == 302
    login = client.post(
        reverse("login"), {"username": "budi@example.com", "password": "another-long-phrase-42"}
    )
    assert login.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200


def test_order_journey_plans_configure_review_place_invoice(client, catalog, customer):
    client.force_login(customer)
    assert b"Bronze" in client.get(reverse("plan-list")).content
    configure = reverse("order-configure", args=["bronze"])
    assert client.get(configure).status_code == 200

    review = client.post(
        configure,
        {
            "billing_cycle": "monthly",
            "location": "eu",
            "server_name": "Survival",
            "var_SERVER_JARFILE": "paper.jar",
        },
    )
    assert review.status_code == 200
    html = review.content.decode()
    assert "Review your order" in html
    assert "5.50 USD" in html
    assert Order.objects.count() == 0  # review writes nothing

    key = re.search(r'name="idempotency_key" value="(\w+)"', html).group(1)
    data = {
        "billing_cycle": "monthly",
        "location": "eu",
        "server_name": "Survival",
        "var_SERVER_JARFILE": "paper.jar",
        "idempotency_key": key,
    }
    placed = client.post(reverse("order-place", args=["bronze"]), data)
    again = client.post(reverse("order-place", args=["bronze"]), data)  # double click

    assert Order.objects.count() == 1
    invoice = Invoice.objects.get()
    assert placed.url == reverse("invoice-detail", args=[invoice.pk])
    assert again.url == placed.url
    assert Order.objects.get().deployment.spec["environment"]["SERVER_JARFILE"] == "paper.jar"
    page = client.get(placed.url).content.decode()
    assert invoice.number in page
    assert "Bank transfer" in page


def test_configure_form_shows_variable_errors(client, catalog, customer):
    client.force_login(customer)
    response = client.post(
        reverse("order-configure", args=["bronze"]),
        {"billing_cycle": "monthly", "location": "eu", "var_SERVER_JARFILE": "bad name"},
    )
    assert response.status_code == 200
    assert "Server Jar File variable field format is invalid" in response.content.decode()
    assert Order.objects.count() == 0


def test_other_customers_pages_are_404(client, place_order, other_customer):
    order = place_order()
    client.force_login(other_customer)
    assert client.get(reverse("order-detail", args=[order.pk])).status_code == 404
    invoice = order.invoices.get()
    assert client.get(reverse("invoice-detail", args=[invoice.pk])).status_code == 404


def test_login_required_for_ordering(client, catalog):
    response = client.get(reverse("order-configure", args=["bronze"]))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_staff_confirm_payment_in_admin(client, place_order, staff):
    order = place_order()
    invoice = order.invoices.get()
    client.force_login(staff)
    changelist = reverse("admin:billing_invoice_changelist")

    form = client.post(
        changelist, {"action": "confirm_manual_payment", "_selected_action": [invoice.pk]}
    )
    assert form.status_code == 200
    assert b"Confirm payment of" in form.content

    done = client.post(
        changelist,
        {
            "action": "confirm_manual_payment",
            "_selected_action": [invoice.pk],
            "apply": "1",
            "reference": "BCA-778899",
        },
    )
    assert done.status_code == 302
    invoice.refresh_from_db()
    order.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert order.status == OrderStatus.PROVISIONING
    assert ProvisioningRequest.objects.filter(deployment=order.deployment).count() == 1
    assert invoice.payments.get().actor_label == "staff:staff@example.com"

    # A second confirmation in the admin shows an error and changes nothing.
    client.post(
        changelist,
        {
            "action": "confirm_manual_payment",
            "_selected_action": [invoice.pk],
            "apply": "1",
            "reference": "X",
        },
    )
    assert invoice.payments.count() == 1
    assert ProvisioningRequest.objects.count() == 1


def test_view_only_staff_cannot_confirm_payment_in_admin(client, place_order):
    # The admin's actions need the change permission: viewing invoices is not paying them.
    order = place_order()
    invoice = order.invoices.get()
    viewer = UserFactory(username="support@example.com", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_invoice"))
    client.force_login(viewer)
    client.post(
        reverse("admin:billing_invoice_changelist"),
        {
            "action": "confirm_manual_payment",
            "_selected_action": [invoice.pk],
            "apply": "1",
            "reference": "FREE-SERVER",
            "note": "",
        },
    )
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID
    assert not invoice.payments.exists()


def test_admin_pages_render_with_history(client, place_order, staff):
    order = place_order()
    client.force_login(staff)
    for url in [
        reverse("admin:billing_order_change", args=[order.pk]),
        reverse("admin:billing_invoice_change", args=[order.invoices.get().pk]),
        reverse("admin:servers_deployment_change", args=[order.deployment.pk]),
        reverse("admin:billing_plan_changelist"),
        reverse("admin:billing_stripeevent_changelist"),
        reverse("admin:provisioning_provisioningrequest_changelist"),
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
    assert (
        b"customer:alice@example.com"
        in client.get(reverse("admin:billing_order_change", args=[order.pk])).content
    )


def test_profile_sets_channels_per_message(client, customer, settings):
    settings.WHATSAPP_ENABLED = True  # WhatsApp choices are offered only then
    from notifications.services import customer_profile_upsert

    customer_profile_upsert(user=customer, whatsapp_number="+6281234567890", whatsapp_consent=True)
    client.force_login(customer)
    page = client.get(reverse("profile")).content.decode()
    assert "Server ready (always e-mailed if nothing else works)" in page

    data = {
        "whatsapp_number": "+6281234567890",
        "whatsapp_consent": "on",
        "preferred_language": "id",
        "notify_by_email": "on",
        "channels_server_ready": ["whatsapp", "email"],
        "channels_invoice_created": ["email"],
    }
    response = client.post(reverse("profile"), data)

    assert response.status_code == 302
    profile = CustomerProfile.objects.get(user=customer)
    assert profile.event_channels["server_ready"] == ["whatsapp", "email"]
    assert profile.event_channels["invoice_created"] == ["email"]
    assert profile.event_channels["order_received"] == []  # unticked on the page
    assert profile.preferred_language == "id"


def test_profile_refuses_whatsapp_channels_without_consent(client, customer, settings):
    settings.WHATSAPP_ENABLED = True  # WhatsApp choices are offered only then
    client.force_login(customer)
    response = client.post(
        reverse("profile"),
        {
            "preferred_language": "en",
            "notify_by_email": "on",
            "channels_server_ready": ["whatsapp"],
        },
    )
    assert response.status_code == 200
    assert "WhatsApp messages need a valid number and your consent" in response.content.decode()
    assert not CustomerProfile.objects.filter(user=customer, event_channels__has_key="server_ready")


def test_signup_never_redirects_to_another_site(client):
    response = client.post(
        reverse("signup") + "?next=https://evil.example/phish",
        {
            "email": "eve@example.com",
            "password": "a-long-unusual-passphrase-7",
            "password_again": "a-long-unusual-passphrase-7",
            "preferred_language": "en",
        },
    )
    assert response.status_code == 302
    assert response.url == reverse("signup-done")


def test_secret_looking_variables_are_masked_in_the_admin(client, place_order, staff):
    order = place_order(plan_slug="starter", variables={"ACCESS_TOKEN": "ghp_supersecret123"})
    client.force_login(staff)
    for url in [
        reverse("admin:billing_order_change", args=[order.pk]),
        reverse("admin:servers_deployment_change", args=[order.deployment_id]),
    ]:
        page = client.get(url).content.decode()
        assert "ghp_supersecret123" not in page
        assert "********" in page
