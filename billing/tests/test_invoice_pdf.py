"""The invoice PDF, parsed back: number, parties, lines, totals, payments, bank details."""

import datetime as dt
import io
from decimal import Decimal

from pypdf import PdfReader

from billing.invoice_pdf import (
    BankAccount,
    DocumentLine,
    DocumentPayment,
    InvoiceDocument,
    Party,
    render_invoice_pdf,
)


def _document(**overrides) -> InvoiceDocument:
    fields = {
        "number": "INV-2026-000123",
        "status_label": "Unpaid",
        "issued_on": dt.date(2026, 2, 28),
        "due_on": dt.date(2026, 3, 7),
        "currency": "IDR",
        "seller": Party(
            "GameHost Nusantara", ("Jl. Sudirman 1", "Jakarta 10210"), "01.234.567.8-901.000"
        ),
        "customer": Party("Budi Santoso", ("Jl. Merdeka 5", "Bandung"), "", "budi@example.com"),
        "lines": (
            DocumentLine(
                "Gold (monthly) 2026-02-28 to 2026-03-27",
                1,
                Decimal("150000.00"),
                Decimal("150000.00"),
            ),
            DocumentLine("Extra backups", 2, Decimal("10000.00"), Decimal("20000.00")),
        ),
        "subtotal": Decimal("170000.00"),
        "discount_total": Decimal("17000.00"),
        "total": Decimal("153000.00"),
        "amount_due": Decimal("153000.00"),
        "period": (dt.date(2026, 2, 28), dt.date(2026, 3, 27)),
        "bank_account": BankAccount(
            "Bank Central Asia", "PT GameHost Nusantara", "1234567890", "CENAIDJA"
        ),
    }
    fields.update(overrides)
    return InvoiceDocument(**fields)


def _text_of(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_unpaid_invoice_shows_number_parties_lines_totals_and_bank_account():
    pdf = render_invoice_pdf(_document())
    assert pdf.startswith(b"%PDF-")
    text = _text_of(pdf)
    for expected in (
        "Invoice INV-2026-000123",
        "GameHost Nusantara",
        "Tax ID: 01.234.567.8-901.000",
        "Budi Santoso",
        "budi@example.com",
        "Extra backups",
        "20,000.00 IDR",
        "170,000.00 IDR",
        "-17,000.00 IDR",
        "153,000.00 IDR",
        "2026-02-28 to 2026-03-27",
        "Pay by bank transfer",
        "1234567890",
        "CENAIDJA",
    ):
        assert expected in text, expected


def test_paid_invoice_lists_the_payment_and_no_bank_details():
    pdf = render_invoice_pdf(
        _document(
            status_label="Paid",
            amount_due=Decimal("0.00"),
            payments=(
                DocumentPayment(
                    dt.date(2026, 3, 1), "Card (Stripe)", "pi_3Q", Decimal("153000.00")
                ),
            ),
        )
    )
    text = _text_of(pdf)
    assert "Payments" in text
    assert "pi_3Q" in text
    assert "Amount due" in text
    assert "0.00 IDR" in text
    assert "Pay by bank transfer" not in text
    assert "1234567890" not in text


def test_markup_and_characters_outside_latin1_do_not_break_the_pdf():
    pdf = render_invoice_pdf(
        _document(customer=Party("<b>Ayu & Co</b> 株式会社", ("Jl. <Melati>",)))
    )
    text = _text_of(pdf)
    assert "<b>Ayu & Co</b>" in text
    assert "Jl. <Melati>" in text


# --- From the database: what invoice_document prints for a real invoice ----------------------


def test_invoice_document_of_an_unpaid_order_invoice_has_its_lines_and_the_bank_account(
    place_order, settings, django_assert_max_num_queries
):
    from billing.invoice_documents import invoice_document, invoice_pdf

    settings.BILLING_COMPANY_NAME = "PT GameHost Nusantara"
    settings.BILLING_COMPANY_ADDRESS = "Jl. Sudirman 1|Jakarta 10220"
    settings.BILLING_COMPANY_TAX_ID = "01.234.567.8-901.000"
    settings.BILLING_BANK_NAME = "BCA"
    settings.BILLING_BANK_ACCOUNT_NUMBER = "1234567890"
    invoice = place_order().invoices.get()

    with django_assert_max_num_queries(3):
        document = invoice_document(invoice_id=invoice.pk)
    assert document.number == invoice.number
    assert document.seller.address_lines == ("Jl. Sudirman 1", "Jakarta 10220")
    assert [line.amount for line in document.lines] == [Decimal("4.00"), Decimal("1.50")]
    assert document.total == document.amount_due == Decimal("5.50")
    assert document.bank_account is not None
    assert document.bank_account.account_name == "PT GameHost Nusantara"  # defaults to the seller

    text = _text_of(invoice_pdf(invoice_id=invoice.pk))
    assert invoice.number in text
    assert "5.50 USD" in text
    assert "1234567890" in text
    assert "Tax ID: 01.234.567.8-901.000" in text


def test_invoice_document_of_a_paid_invoice_shows_the_payment_and_nothing_due(
    place_order, staff, settings
):
    from billing.invoice_documents import invoice_document
    from billing.services.payments import payment_record_manual
    from common.actors import Actor

    settings.BILLING_BANK_ACCOUNT_NUMBER = "1234567890"
    invoice = place_order().invoices.get()
    payment_record_manual(invoice_id=invoice.pk, reference="BCA-778", actor=Actor.staff(staff))

    document = invoice_document(invoice_id=invoice.pk)
    assert document.status_label == "Paid"
    assert document.amount_due == Decimal("0")
    assert document.bank_account is None
    assert [(p.method, p.reference, p.amount) for p in document.payments] == [
        ("Bank transfer", "BCA-778", Decimal("5.50"))
    ]


def test_the_customer_downloads_their_invoice_pdf_and_nobody_else_can(place_order, customer):
    from django.test import Client
    from django.urls import reverse

    from tests.factories import UserFactory

    invoice = place_order().invoices.get()
    url = reverse("invoice-pdf", args=[invoice.pk])
    assert Client().get(url).status_code == 302  # to the login page

    owner = Client()
    owner.force_login(customer)
    response = owner.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="{invoice.number}.pdf"' in response["Content-Disposition"]
    assert invoice.number in _text_of(response.content)
    page = owner.get(reverse("invoice-detail", args=[invoice.pk])).content.decode()
    assert url in page

    stranger = Client()
    stranger.force_login(UserFactory())
    assert stranger.get(url).status_code == 404


def test_account_credit_is_a_line_and_a_total_and_the_amount_due_is_what_is_left():
    pdf = render_invoice_pdf(
        _document(
            currency="USD",
            lines=(
                DocumentLine("Bronze (monthly)", 1, Decimal("4.00"), Decimal("4.00")),
                DocumentLine("Setup fee", 1, Decimal("1.50"), Decimal("1.50")),
                DocumentLine("Account credit", 1, Decimal("-2.00"), Decimal("-2.00")),
            ),
            subtotal=Decimal("5.50"),
            discount_total=Decimal("0.00"),
            credit_applied=Decimal("2.00"),
            total=Decimal("3.50"),
            amount_due=Decimal("3.50"),
        )
    )
    text = _text_of(pdf)
    for expected in ("Account credit", "Credit applied", "-2.00 USD", "5.50 USD", "3.50 USD"):
        assert expected in text, expected
    assert "Discount" not in text  # no zero rows


def test_invoice_document_of_an_invoice_partly_paid_by_credit(place_order, customer, settings):
    from billing.invoice_documents import invoice_document, invoice_pdf
    from billing.models import CreditEntryKind
    from billing.services.credit import credit_add
    from common.actors import Actor

    settings.BILLING_BANK_ACCOUNT_NUMBER = "1234567890"
    credit_add(
        customer_id=customer.pk,
        currency="USD",
        amount=Decimal("2.00"),
        kind=CreditEntryKind.STAFF_ADJUSTMENT,
        description="goodwill",
        actor=Actor.system("test"),
    )
    invoice = place_order().invoices.get()

    document = invoice_document(invoice_id=invoice.pk)
    assert [(line.description, line.amount) for line in document.lines][-1] == (
        "Account credit",
        Decimal("-2.00"),
    )
    assert (document.subtotal, document.credit_applied, document.total, document.amount_due) == (
        Decimal("5.50"),
        Decimal("2.00"),
        Decimal("3.50"),
        Decimal("3.50"),
    )
    assert document.customer.name == customer.email  # no full name: the e-mail
    assert document.customer.email == customer.email

    text = _text_of(invoice_pdf(invoice_id=invoice.pk))
    assert invoice.number in text
    assert "Credit applied" in text
    assert "-2.00 USD" in text
    assert "Amount due" in text
    assert "3.50 USD" in text  # the total, the amount due and the bank transfer's amount
    assert "alice@example.com" in text


# --- The customer's billing details in "Bill to" ---------------------------------------------


def test_bill_to_prints_the_billing_details_in_effect_at_issue(place_order, customer):
    from billing.invoice_documents import invoice_document, invoice_pdf
    from billing.services.accounts import account_name_update, billing_profile_update
    from common.actors import Actor

    actor = Actor.customer(customer)
    account_name_update(user=customer, first_name="Budi", last_name="Santoso", actor=actor)
    billing_profile_update(
        user=customer,
        actor=actor,
        company_name="PT Budi Game",
        address_line1="Jl. Merdeka 5",
        city="Bandung",
        postcode="40111",
        region="Jawa Barat",
        country="ID",
        tax_id="02.345.678.9-012.000",
    )
    invoice = place_order().invoices.get()
    billing_profile_update(user=customer, actor=actor, company_name="PT Changed Later")

    document = invoice_document(invoice_id=invoice.pk)
    assert document.customer.name == "PT Budi Game"
    assert document.customer.address_lines == (
        "Budi Santoso",
        "Jl. Merdeka 5",
        "40111 Bandung",
        "Jawa Barat",
        "Indonesia",
    )
    text = _text_of(invoice_pdf(invoice_id=invoice.pk))
    for expected in (
        "Bill to",
        "PT Budi Game",
        "Budi Santoso",
        "Jl. Merdeka 5",
        "40111 Bandung",
        "Indonesia",
        "Tax ID: 02.345.678.9-012.000",
        "alice@example.com",
    ):
        assert expected in text, expected
    assert "PT Changed Later" not in text

    later = place_order().invoices.get()
    assert "PT Changed Later" in _text_of(invoice_pdf(invoice_id=later.pk))


def test_bill_to_falls_back_to_the_name_and_email(place_order, customer):
    from billing.invoice_documents import invoice_pdf
    from billing.services.accounts import account_name_update
    from common.actors import Actor

    account_name_update(
        user=customer, first_name="Budi", last_name="Santoso", actor=Actor.customer(customer)
    )
    invoice = place_order().invoices.get()
    text = _text_of(invoice_pdf(invoice_id=invoice.pk))
    assert "Budi Santoso" in text
    assert "alice@example.com" in text
    assert "Tax ID: 02" not in text
