"""Account credit: the ledger, spending it on new and renewal invoices, giving it back, refunds
to credit, the staff adjustment form, and what the customer sees (page, API, messages)."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import (
    CreditEntry,
    CreditEntryKind,
    Invoice,
    InvoiceKind,
    InvoiceLineKind,
    InvoiceStatus,
    OrderStatus,
    Payment,
    PaymentStatus,
)
from billing.selectors import credit_balances
from billing.services.credit import (
    InsufficientCredit,
    credit_add,
    credit_staff_adjust,
    invoice_credit_release,
)
from billing.services.credit_refunds import invoice_refund_to_credit
from billing.services.orders import order_cancel
from billing.services.payments import payment_record_manual
from billing.services.renewal_credit import renewals_run_with_credit
from billing.services.renewals import renewals_run
from common.actors import Actor
from common.dates import billing_today
from common.errors import ApplicationError, ConflictError
from notifications.models import Delivery
from notifications.rendering import render_message
from provisioning.models import ProvisioningRequest
from servers.models import Deployment
from tests.fleet import fleet_seed

pytestmark = pytest.mark.django_db

USD = "USD"


def give(customer, amount: str, *, currency: str = USD, kind=CreditEntryKind.STAFF_ADJUSTMENT):
    return credit_add(
        customer_id=customer.pk,
        currency=currency,
        amount=Decimal(amount),
        kind=kind,
        description=f"test credit {amount}",
        actor=Actor.system("test"),
    )


def ledger(customer, currency: str = USD) -> list[tuple[str, Decimal, Decimal]]:
    return [
        (e.kind, e.amount, e.balance_after)
        for e in CreditEntry.objects.filter(customer=customer, currency=currency).order_by("id")
    ]


# --- The ledger ------------------------------------------------------------------------------


def test_each_movement_is_a_row_with_the_exact_balance_after_it(customer):
    give(customer, "10.00")
    give(customer, "5.505")  # rounded half up to the cent
    give(customer, "-3.00")
    give(customer, "7.00", currency="IDR")

    assert ledger(customer) == [
        ("staff_adjustment", Decimal("10.00"), Decimal("10.00")),
        ("staff_adjustment", Decimal("5.51"), Decimal("15.51")),
        ("staff_adjustment", Decimal("-3.00"), Decimal("12.51")),
    ]
    assert credit_balances(customer_id=customer.pk) == {
        "USD": Decimal("12.51"),
        "IDR": Decimal("7.00"),
    }


def test_the_balance_never_goes_below_zero_service_and_database(customer):
    give(customer, "4.00")

    with pytest.raises(InsufficientCredit) as refused:
        give(customer, "-4.01")
    assert refused.value.code == "insufficient_credit"
    assert ledger(customer) == [("staff_adjustment", Decimal("4.00"), Decimal("4.00"))]

    # A writer that bypassed the service is stopped by the check constraint.
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditEntry.objects.create(
            customer=customer,
            currency=USD,
            amount=Decimal("-5.00"),
            balance_after=Decimal("-1.00"),
            kind=CreditEntryKind.STAFF_ADJUSTMENT,
            description="bypass",
            actor_label="test",
        )
    assert CreditEntry.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_spends_of_one_balance_only_one_wins(customer):
    from tests.support import race

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks")
    give(customer, "10.00")

    results = race([lambda: give(customer, "-8.00"), lambda: give(customer, "-8.00")])

    assert sum(isinstance(r, CreditEntry) for r in results) == 1
    assert sum(isinstance(r, InsufficientCredit) for r in results) == 1
    assert ledger(customer) == [
        ("staff_adjustment", Decimal("10.00"), Decimal("10.00")),
        ("staff_adjustment", Decimal("-8.00"), Decimal("2.00")),
    ]


# --- New orders: credit first ----------------------------------------------------------------


def test_credit_pays_part_of_a_new_orders_invoice_and_checkout_asks_for_the_rest(
    place_order, customer, settings
):
    from urllib.parse import parse_qs

    import responses

    from billing.services.stripe_payments import checkout_session_start

    give(customer, "2.00")
    order = place_order()
    invoice = order.invoices.get()

    assert (invoice.subtotal, invoice.credit_applied, invoice.total) == (
        Decimal("5.50"),
        Decimal("2.00"),
        Decimal("3.50"),
    )
    assert invoice.status == InvoiceStatus.UNPAID
    assert order.status == OrderStatus.PENDING
    credit_line = invoice.lines.get(kind=InvoiceLineKind.CREDIT)
    assert (credit_line.description, credit_line.amount) == ("Account credit", Decimal("-2.00"))
    assert ledger(customer)[-1] == ("invoice_applied", Decimal("-2.00"), Decimal("0.00"))
    assert CreditEntry.objects.get(kind=CreditEntryKind.INVOICE_APPLIED).invoice == invoice
    # The message asks for what is left, says what credit paid, links the PDF.
    message = Delivery.objects.get(event="invoice_created")
    assert message.context["amount"] == "3.50"
    assert message.context["credit_applied"] == "2.00"
    assert message.context["invoice_pdf_url"].endswith(reverse("invoice-pdf", args=[invoice.pk]))
    text = render_message(
        event="invoice_created", language="en", channel="email", context=message.context
    ).text
    assert "Account credit applied: 2.00 USD" in text
    assert "Left to pay: 3.50 USD" in text
    assert f"Download the invoice (PDF): {message.context['invoice_pdf_url']}" in text

    with responses.RequestsMock() as stripe:
        stripe.post(
            "https://api.stripe.com/v1/checkout/sessions",
            json={
                "id": "cs_test_credit",
                "object": "checkout.session",
                "url": "https://checkout.stripe.test/credit",
                "amount_total": 350,
                "currency": "usd",
                "expires_at": 4102444800,
            },
        )
        session = checkout_session_start(
            invoice_id=invoice.pk,
            customer=customer,
            success_url="https://p/s",
            cancel_url="https://p/c",
        )
        sent = stripe.calls[0].request.body
    assert session.amount_minor == 350
    form = parse_qs(sent if isinstance(sent, str) else sent.decode())
    assert form["line_items[0][price_data][unit_amount]"] == ["350"]


def test_credit_covering_a_new_order_confirms_it_without_a_payment(place_order, customer, settings):
    settings.PROVISIONING_ENABLED = False  # the order stays "confirmed" (no run starts)
    give(customer, "10.00")
    order = place_order()
    invoice = order.invoices.get()

    assert order.status == OrderStatus.CONFIRMED
    assert (invoice.status, invoice.total, invoice.credit_applied) == (
        InvoiceStatus.PAID,
        Decimal("0.00"),
        Decimal("5.50"),
    )
    assert not Payment.objects.exists()
    assert ProvisioningRequest.objects.filter(deployment_id=order.deployment_id).count() == 1
    assert credit_balances(customer_id=customer.pk) == {"USD": Decimal("4.50")}
    assert invoice.events.filter(to_status="paid", actor_label="system:credit").exists()


def test_credit_in_another_currency_is_not_spent(place_order, customer):
    give(customer, "10.00", currency="IDR")
    invoice = place_order().invoices.get()

    assert (invoice.total, invoice.credit_applied) == (Decimal("5.50"), Decimal("0.00"))
    assert credit_balances(customer_id=customer.pk) == {"IDR": Decimal("10.00")}


def test_a_cancelled_invoice_gives_its_credit_back_once(place_order, customer):
    give(customer, "2.00")
    order = place_order()
    invoice = order.invoices.get()

    order_cancel(order_id=order.pk, actor=Actor.customer(customer), reason="changed my mind")
    invoice.refresh_from_db()
    assert invoice_credit_release(invoice=invoice, actor=Actor.system("test")) is None

    assert invoice.status == InvoiceStatus.CANCELLED
    assert ledger(customer) == [
        ("staff_adjustment", Decimal("2.00"), Decimal("2.00")),
        ("invoice_applied", Decimal("-2.00"), Decimal("0.00")),
        ("invoice_released", Decimal("2.00"), Decimal("2.00")),
    ]
    # The release is part of the cancellation: no separate "credit added" message.
    assert Delivery.objects.filter(event="credit_added").count() == 1  # the first grant only


# --- Renewals: one query per batch, credit only where there is some --------------------------


def _renewals_of(fleet) -> dict[int, Invoice]:
    return {
        i.deployment_id: i
        for i in Invoice.objects.filter(
            kind=InvoiceKind.RENEWAL, deployment_id__in=fleet.deployment_ids
        )
    }


def test_renewal_batch_spends_credit_only_for_customers_who_have_some(catalog, settings):
    settings.FLEET_BATCH_SIZE = 2  # the three servers span two batches
    fleet = fleet_seed(count=3, next_due_date=billing_today(), addon_every=100)
    # The first server has the Private Instance add-on: its renewal is 4.00 + 3.00.
    full, partial, none = (Deployment.objects.get(pk=pk) for pk in fleet.deployment_ids)
    give(full.customer, "10.00")  # covers the 7.00 renewal
    give(partial.customer, "1.00")  # of a 4.00 renewal

    counts = renewals_run_with_credit()

    assert (counts["invoices"], counts["credit_applied"]) == (3, 2)
    invoices = _renewals_of(fleet)
    paid = invoices[full.pk]
    assert (paid.status, paid.total, paid.credit_applied) == (
        "paid",
        Decimal("0.00"),
        Decimal("7.00"),
    )
    full.refresh_from_db()
    assert full.next_due_date == paid.period_end  # the server is extended
    assert not Payment.objects.filter(invoice=paid).exists()
    assert Delivery.objects.filter(event="payment_received", user=full.customer).exists()
    assert not Delivery.objects.filter(event="invoice_created", user=full.customer).exists()
    assert credit_balances(customer_id=full.customer_id) == {"USD": Decimal("3.00")}

    part = invoices[partial.pk]
    assert (part.status, part.total, part.credit_applied) == (
        "unpaid",
        Decimal("3.00"),
        Decimal("1.00"),
    )
    assert credit_balances(customer_id=partial.customer_id) == {}
    message = Delivery.objects.get(event="invoice_created", user=partial.customer)
    assert (message.context["amount"], message.context["credit_applied"]) == ("3.00", "1.00")

    untouched = invoices[none.pk]
    assert (untouched.status, untouched.total, untouched.credit_applied) == (
        "unpaid",
        Decimal("4.00"),
        Decimal("0.00"),
    )


def test_renewals_run_without_a_settler_spends_no_credit(catalog):
    fleet = fleet_seed(count=1, next_due_date=billing_today(), addon_every=100)
    customer = Deployment.objects.get(pk=fleet.deployment_ids[0]).customer
    give(customer, "10.00")

    assert renewals_run()["credit_applied"] == 0

    invoice = _renewals_of(fleet)[fleet.deployment_ids[0]]
    assert (invoice.status, invoice.total, invoice.credit_applied) == (
        "unpaid",
        invoice.subtotal,
        Decimal("0.00"),
    )
    assert credit_balances(customer_id=customer.pk) == {"USD": Decimal("10.00")}


@pytest.mark.postgres  # COPY; the SQLite demo falls back to a savepoint per message
def test_renewal_credit_costs_one_query_per_batch_for_customers_without_credit(catalog, settings):
    settings.FLEET_BATCH_SIZE = 1000
    fleet_seed(count=3, next_due_date=billing_today())
    with CaptureQueriesContext(connection) as without_credit_few:
        assert renewals_run()["invoices"] == 3
    fleet_seed(count=3, next_due_date=billing_today())
    with CaptureQueriesContext(connection) as few:
        assert renewals_run_with_credit()["invoices"] == 3
    fleet_seed(count=60, next_due_date=billing_today())
    with CaptureQueriesContext(connection) as many:
        assert renewals_run_with_credit()["invoices"] == 60

    assert len(many.captured_queries) == len(few.captured_queries)
    assert len(few.captured_queries) == len(without_credit_few.captured_queries) + 1
    credit_reads = [q["sql"] for q in many.captured_queries if "billing_creditentry" in q["sql"]]
    assert len(credit_reads) == 1
    assert "DISTINCT ON" in credit_reads[0]


# --- Refund to credit ------------------------------------------------------------------------


def test_refund_to_credit_credits_the_paid_amount_once(place_order, customer, staff):
    give(customer, "2.00")  # the invoice is paid 2.00 by credit and 3.50 by bank transfer
    invoice = place_order().invoices.get()
    payment_record_manual(invoice_id=invoice.pk, reference="BCA-1", actor=Actor.staff(staff))

    entry = invoice_refund_to_credit(
        invoice_id=invoice.pk, actor=Actor.staff(staff), reason="outage"
    )

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.REFUNDED
    assert Payment.objects.get(invoice=invoice).status == PaymentStatus.REFUNDED
    assert (entry.kind, entry.amount, entry.balance_after, entry.invoice_id) == (
        "refund",
        Decimal("5.50"),
        Decimal("5.50"),
        invoice.pk,
    )
    assert invoice.events.filter(to_status="refunded").count() == 1
    message = Delivery.objects.get(event="credit_added", event_key=f"credit_added:{entry.pk}")
    assert (message.context["amount"], message.context["balance"]) == ("5.50", "5.50")
    assert message.context["invoice_number"] == invoice.number

    with pytest.raises(ConflictError):
        invoice_refund_to_credit(invoice_id=invoice.pk, actor=Actor.staff(staff))
    assert CreditEntry.objects.filter(kind=CreditEntryKind.REFUND).count() == 1
    # And the ledger's constraint, should a second writer get past the status check.
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditEntry.objects.create(
            customer=customer,
            currency=USD,
            amount=Decimal("5.50"),
            balance_after=Decimal("11.00"),
            kind=CreditEntryKind.REFUND,
            invoice=invoice,
            description="again",
            actor_label="test",
        )


def test_refunding_an_order_gives_back_the_credit_its_invoice_used(
    place_order, customer, staff, settings
):
    from billing.services.waiting_orders import order_refund

    settings.PROVISIONING_ENABLED = False  # paid, no server: refundable
    give(customer, "2.00")
    order = place_order()
    invoice = order.invoices.get()
    payment_record_manual(invoice_id=invoice.pk, reference="BCA-3", actor=Actor.staff(staff))

    refunds = order_refund(order_id=order.pk, actor=Actor.staff(staff), reason="no room")

    assert [(r.amount, r.provider) for r in refunds] == [("3.50", "manual")]  # the money
    assert ledger(customer)[-1] == ("refund", Decimal("2.00"), Decimal("2.00"))  # the credit
    assert CreditEntry.objects.get(kind=CreditEntryKind.REFUND).invoice_id == invoice.pk


def test_refund_to_credit_refuses_an_unpaid_invoice(place_order, staff):
    invoice = place_order().invoices.get()
    with pytest.raises(ConflictError) as refused:
        invoice_refund_to_credit(invoice_id=invoice.pk, actor=Actor.staff(staff))
    assert refused.value.code == "refund_not_possible"
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID
    assert not CreditEntry.objects.exists()


def test_refund_to_credit_from_the_invoice_admin(admin_client, place_order, customer, staff):
    invoice = place_order().invoices.get()
    payment_record_manual(invoice_id=invoice.pk, reference="BCA-2", actor=Actor.staff(staff))
    url = reverse("admin:billing_invoice_changelist")
    form = {"action": "refund_to_credit", "_selected_action": [invoice.pk]}

    page = admin_client.post(url, form)
    assert page.status_code == 200
    assert invoice.number in page.content.decode()  # the confirmation page asks for a reason
    admin_client.post(url, {**form, "apply": "1", "reason": "goodwill"}, follow=True)
    again = admin_client.post(url, {**form, "apply": "1", "reason": "twice"}, follow=True)

    assert credit_balances(customer_id=customer.pk) == {"USD": Decimal("5.50")}
    assert CreditEntry.objects.filter(kind=CreditEntryKind.REFUND).count() == 1
    assert "only a paid invoice can be refunded" in again.content.decode()


# --- Staff adjustments -----------------------------------------------------------------------


def test_staff_adjust_credit_in_the_admin_and_cannot_go_below_zero(admin_client, customer):
    url = reverse("admin:billing_creditentry_add")
    assert admin_client.get(url).status_code == 200

    added = admin_client.post(
        url,
        {"customer_email": customer.email, "currency": USD, "amount": "5.00", "reason": "Sorry"},
    )
    assert added.status_code == 302
    too_much = admin_client.post(
        url,
        {"customer_email": customer.email, "currency": USD, "amount": "-6.00", "reason": "Oops"},
    )
    assert too_much.status_code == 400
    assert "The balance cannot go below zero." in too_much.content.decode()
    no_reason = admin_client.post(
        url, {"customer_email": customer.email, "currency": USD, "amount": "1.00", "reason": ""}
    )
    assert no_reason.status_code == 400
    nobody = admin_client.post(
        url,
        {"customer_email": "nobody@example.com", "currency": USD, "amount": "1", "reason": "x"},
    )
    assert "No customer has this e-mail address." in nobody.content.decode()

    assert ledger(customer) == [("staff_adjustment", Decimal("5.00"), Decimal("5.00"))]
    entry = CreditEntry.objects.get()
    assert entry.description == "Sorry"
    assert entry.actor_label.startswith("staff:")
    assert Delivery.objects.filter(event="credit_added", event_key=f"credit_added:{entry.pk}")


def test_staff_adjust_service_refusals_are_field_errors(customer, staff):
    with pytest.raises(ApplicationError) as refused:
        credit_staff_adjust(
            customer_id=customer.pk,
            currency="XXX",
            amount=Decimal("0"),
            reason=" ",
            actor=Actor.staff(staff),
        )
    assert set(refused.value.field_errors) == {"reason", "currency"}
    with pytest.raises(ApplicationError) as refused:
        credit_staff_adjust(
            customer_id=customer.pk,
            currency=USD,
            amount=Decimal("-1"),
            reason="take back",
            actor=Actor.staff(staff),
        )
    assert refused.value.code == "insufficient_credit"
    assert set(refused.value.field_errors) == {"amount"}
    assert not CreditEntry.objects.exists()


def test_taking_credit_back_sends_no_credit_added_message(customer, staff):
    give(customer, "5.00")
    taken = give(customer, "-2.00")
    assert not Delivery.objects.filter(event_key=f"credit_added:{taken.pk}").exists()


def test_the_ledger_admin_list_filters_searches_and_does_not_grow_queries(
    admin_client, customer, other_customer
):
    url = reverse("admin:billing_creditentry_changelist")
    give(customer, "1.00")
    admin_client.get(url)  # the first page of a session also writes the session
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(url).status_code == 200
    for _ in range(5):
        give(other_customer, "1.00")
        give(customer, "2.00", currency="IDR")
    with CaptureQueriesContext(connection) as many:
        response = admin_client.get(url)
    assert len(many.captured_queries) == len(few.captured_queries)
    assert response.context["cl"].result_count == 11

    by_currency = admin_client.get(url, {"currency": "IDR"})
    assert by_currency.context["cl"].result_count == 5
    by_kind = admin_client.get(url, {"kind__exact": "refund"})
    assert by_kind.context["cl"].result_count == 0
    by_email = admin_client.get(url, {"q": other_customer.email})
    assert by_email.context["cl"].result_count == 5


# --- What the customer sees ------------------------------------------------------------------


def test_customer_sees_balances_and_history_on_the_page_and_the_dashboard(
    client, place_order, customer, other_customer
):
    give(customer, "2.00")
    invoice = place_order().invoices.get()
    give(customer, "1.25")
    give(other_customer, "9.00")
    client.force_login(customer)

    page = client.get(reverse("account-credit")).content.decode()
    assert "1.25 USD" in page  # the balance
    assert f'href="{reverse("invoice-detail", args=[invoice.pk])}"' in page
    assert f"Applied to invoice {invoice.number}" in page
    assert "-2.00 USD" in page
    assert "+2.00 USD" in page
    assert "9.00" not in page

    dashboard = client.get(reverse("dashboard")).content.decode()
    assert "Account credit: <strong>1.25 USD</strong>" in dashboard

    detail = client.get(reverse("invoice-detail", args=[invoice.pk])).content.decode()
    assert "Account credit" in detail
    assert "Left to pay" in detail
    assert "3.50 USD" in detail


def test_credit_api_returns_balances_and_recent_entries(customer_api, customer, other_customer):
    give(customer, "2.00")
    give(customer, "3.00", currency="IDR")
    give(other_customer, "9.00")

    body = customer_api.get("/api/v1/credit/").json()

    assert body["balances"] == [
        {"currency": "IDR", "balance": "3.00"},
        {"currency": "USD", "balance": "2.00"},
    ]
    assert [(e["currency"], e["amount"], e["balance_after"]) for e in body["entries"]] == [
        ("IDR", "3.00", "3.00"),
        ("USD", "2.00", "2.00"),
    ]
    assert body["entries"][0]["kind"] == "staff_adjustment"
    assert body["entries"][0]["invoice_id"] is None


def test_credit_api_needs_a_login(api_client):
    assert api_client.get("/api/v1/credit/").status_code in (401, 403)
