"""What an invoice document prints (a selector): the invoice, its lines and payments, the
seller from settings, the customer, and the bank account while something is due.

The customer ("Bill to") is printed with the billing details in effect when the invoice was
issued: the last "billing details changed" AccountEvent before `issued_at` (those rows are the
snapshots, so editing the details never rewrites an issued invoice, and the renewal COPY path
needs no new column). Without billing details then: the name and e-mail. Account credit spent
on the invoice is its negative "Account credit" line and "Credit applied" in the totals; the
total and the amount due are what is left after it."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import JSONField, OuterRef, Prefetch, Subquery
from django_countries import countries

from billing.invoice_pdf import (
    BankAccount,
    DocumentLine,
    DocumentPayment,
    InvoiceDocument,
    Party,
    render_invoice_pdf,
)
from billing.models import (
    AccountEvent,
    AccountEventKind,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentProvider,
    PaymentStatus,
)
from common.dates import billing_today

_PAYMENT_METHODS = {
    PaymentProvider.MANUAL: "Bank transfer",
    PaymentProvider.STRIPE: "Card (Stripe)",
}


def _lines_of(setting: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in re.split(r"[|\n]", setting) if part.strip())


def seller_party() -> Party:
    return Party(
        name=settings.BILLING_COMPANY_NAME,
        address_lines=_lines_of(settings.BILLING_COMPANY_ADDRESS),
        tax_id=settings.BILLING_COMPANY_TAX_ID,
        email=settings.SUPPORT_EMAIL,
    )


def bank_account() -> BankAccount | None:
    """The configured account for bank transfers, or None when no account number is set."""
    if not settings.BILLING_BANK_ACCOUNT_NUMBER:
        return None
    return BankAccount(
        bank_name=settings.BILLING_BANK_NAME,
        account_name=settings.BILLING_BANK_ACCOUNT_NAME or settings.BILLING_COMPANY_NAME,
        account_number=settings.BILLING_BANK_ACCOUNT_NUMBER,
        swift=settings.BILLING_BANK_SWIFT,
        iban=settings.BILLING_BANK_IBAN,
    )


def bill_to_snapshot() -> Subquery:
    """For an Invoice queryset: the billing details (a dict) in effect at its issue, or None."""
    return Subquery(
        AccountEvent.objects.filter(
            user_id=OuterRef("customer_id"),
            kind=AccountEventKind.BILLING_DETAILS_CHANGED,
            created_at__lte=OuterRef("issued_at"),
        )
        .order_by("-created_at", "-id")
        .values("data")[:1],
        output_field=JSONField(),
    )


def bill_to_party(*, customer: Any, details: dict[str, str] | None) -> Party:
    """The "Bill to" block: the billing details, else the name and e-mail."""
    person = customer.get_full_name() or customer.email or customer.get_username()
    details = details or {}
    company = details.get("company_name", "")
    country = details.get("country", "")
    city_line = " ".join(p for p in (details.get("postcode", ""), details.get("city", "")) if p)
    lines = (
        person if company else "",
        details.get("address_line1", ""),
        details.get("address_line2", ""),
        city_line,
        details.get("region", ""),
        str(countries.name(country)) if country else "",
    )
    return Party(
        name=company or person,
        address_lines=tuple(line for line in lines if line),
        tax_id=details.get("tax_id", ""),
        email=customer.email,
    )


def invoice_bill_to(*, invoice: Invoice) -> Party:
    """The "Bill to" block of one invoice (for the invoice page; one query)."""
    details = (
        AccountEvent.objects.filter(
            user_id=invoice.customer_id,
            kind=AccountEventKind.BILLING_DETAILS_CHANGED,
            created_at__lte=invoice.issued_at,
        )
        .order_by("-created_at", "-id")
        .values_list("data", flat=True)
        .first()
    )
    return bill_to_party(customer=invoice.customer, details=details)


def invoice_document(*, invoice_id: int) -> InvoiceDocument:
    """The printable invoice (3 queries: invoice with customer, lines, succeeded payments)."""
    invoice = (
        Invoice.objects.select_related("customer")
        .annotate(bill_to=bill_to_snapshot())
        .prefetch_related(
            "lines",
            Prefetch(
                "payments",
                queryset=Payment.objects.filter(status=PaymentStatus.SUCCEEDED).order_by(
                    "created_at"
                ),
                to_attr="succeeded_payments",
            ),
        )
        .get(pk=invoice_id)
    )
    paid = sum((p.amount for p in invoice.succeeded_payments), Decimal("0"))
    amount_due = (
        max(invoice.total - paid, Decimal("0"))
        if invoice.status == InvoiceStatus.UNPAID
        else Decimal("0")
    )
    period = (
        (invoice.period_start, invoice.period_end)
        if invoice.period_start and invoice.period_end
        else None
    )
    return InvoiceDocument(
        number=invoice.number,
        status_label=str(invoice.get_status_display()),
        issued_on=billing_today(invoice.issued_at),
        due_on=invoice.due_date,
        currency=invoice.currency,
        seller=seller_party(),
        customer=bill_to_party(customer=invoice.customer, details=invoice.bill_to),
        lines=tuple(
            DocumentLine(line.description, line.quantity, line.unit_amount, line.amount)
            for line in invoice.lines.all()
        ),
        subtotal=invoice.subtotal,
        discount_total=invoice.discount_total,
        credit_applied=invoice.credit_applied,
        total=invoice.total,
        amount_due=amount_due,
        payments=tuple(
            DocumentPayment(
                date=billing_today(p.created_at),
                method=_PAYMENT_METHODS.get(p.provider, p.provider),
                reference=p.reference,
                amount=p.amount,
            )
            for p in invoice.succeeded_payments
        ),
        period=period,
        bank_account=bank_account() if amount_due > 0 else None,
    )


def invoice_pdf(*, invoice_id: int) -> bytes:
    return render_invoice_pdf(invoice_document(invoice_id=invoice_id))
