"""What an invoice document prints (a selector): the invoice, its lines and payments, the
seller from settings, the customer, and the bank account while something is due.

The customer is printed with their name and e-mail: the portal keeps no billing address or tax
id for customers yet (notifications.CustomerProfile holds contact preferences only). Account
credit spent on the invoice is its negative "Account credit" line and "Credit applied" in the
totals; the total and the amount due are what is left after it."""

from __future__ import annotations

import re
from decimal import Decimal

from django.conf import settings
from django.db.models import Prefetch

from billing.invoice_pdf import (
    BankAccount,
    DocumentLine,
    DocumentPayment,
    InvoiceDocument,
    Party,
    render_invoice_pdf,
)
from billing.models import Invoice, InvoiceStatus, Payment, PaymentProvider, PaymentStatus
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


def _customer_party(invoice: Invoice) -> Party:
    customer = invoice.customer
    name = customer.get_full_name() or customer.email or customer.get_username()
    return Party(name=name, email=customer.email)


def invoice_document(*, invoice_id: int) -> InvoiceDocument:
    """The printable invoice (3 queries: invoice with customer, lines, succeeded payments)."""
    invoice = (
        Invoice.objects.select_related("customer")
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
        customer=_customer_party(invoice),
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
