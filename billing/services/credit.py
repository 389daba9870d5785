"""Account credit: the ledger's writes (billing.models.credit.CreditEntry).

Every movement is a row with the balance after it. Writers lock the customer's user row first,
so two movements of one customer are serialized and balance_after is exact; the model's check
constraint (balance never below zero) refuses what a bug would overspend.

Credit is spent on invoices first: invoice_credit_apply runs when an invoice is issued (new
orders, renewals, upgrades) and takes what the balance covers as a negative "Account credit"
line. A fully covered invoice is left at 0.00 for its caller to settle the way every zero-total
invoice is settled (through billing.services.payments), so what a payment buys still follows.
"""

import logging
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Max

from billing.errors import BillingErrorCode
from billing.models import (
    CreditEntry,
    CreditEntryKind,
    Invoice,
    InvoiceLine,
    InvoiceLineKind,
    InvoiceStatus,
)
from billing.models.invoices import INVOICE_STATES
from common.actors import Actor
from common.errors import ApplicationError, CommonErrorCode
from common.money import quantize

logger = logging.getLogger(__name__)


class InsufficientCredit(ApplicationError):
    default_code = BillingErrorCode.INSUFFICIENT_CREDIT


def _customer_lock(customer_id: int) -> None:
    get_user_model().objects.select_for_update().filter(pk=customer_id).values_list(
        "pk", flat=True
    ).get()


def _balance_locked(customer_id: int, currency: str) -> Decimal:
    last = (
        CreditEntry.objects.filter(customer_id=customer_id, currency=currency)
        .order_by("-id")
        .values_list("balance_after", flat=True)
        .first()
    )
    return last if last is not None else Decimal("0")


def credit_add(
    *,
    customer_id: int,
    currency: str,
    amount: Decimal,
    kind: CreditEntryKind,
    description: str,
    actor: Actor,
    invoice: Invoice | None = None,
) -> CreditEntry:
    """Write one movement (positive: credit given; negative: credit taken back by staff or
    spent). Refuses (InsufficientCredit) a movement that would take the balance below zero."""
    currency = currency.upper()
    amount = quantize(Decimal(amount), currency)
    if amount == 0:
        raise ApplicationError("A credit movement cannot be zero.", code=CommonErrorCode.INVALID)
    with transaction.atomic():
        _customer_lock(customer_id)
        balance = _balance_locked(customer_id, currency)
        if balance + amount < 0:
            raise InsufficientCredit(
                f"The customer has {balance} {currency} of credit; {-amount} {currency} "
                "cannot be taken."
            )
        return CreditEntry.objects.create(
            customer_id=customer_id,
            currency=currency,
            amount=amount,
            balance_after=balance + amount,
            kind=kind,
            invoice=invoice,
            description=description[:255],
            recorded_by=actor.user,
            actor_label=actor.label,
        )


def invoice_credit_apply(*, invoice_id: int, actor: Actor) -> Decimal:
    """Spend the customer's credit in the invoice's currency on an unpaid invoice that has none
    applied yet; returns the amount applied (0 when there is no credit or nothing to pay).

    Runs in the caller's transaction when the invoice is issued, before anyone can pay it (a
    Stripe Checkout session holds the amount it was opened with)."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.status != InvoiceStatus.UNPAID or invoice.credit_applied or invoice.total <= 0:
            return Decimal("0")
        _customer_lock(invoice.customer_id)
        balance = _balance_locked(invoice.customer_id, invoice.currency)
        applied = min(balance, invoice.total)
        if applied <= 0:
            return Decimal("0")
        position = (invoice.lines.aggregate(last=Max("position"))["last"] or 0) + 1
        InvoiceLine.objects.create(
            invoice=invoice,
            kind=InvoiceLineKind.CREDIT,
            description="Account credit",
            unit_amount=-applied,
            amount=-applied,
            position=position,
        )
        Invoice.objects.filter(pk=invoice.pk).update(
            credit_applied=F("credit_applied") + applied, total=F("total") - applied
        )
        CreditEntry.objects.create(
            customer_id=invoice.customer_id,
            currency=invoice.currency,
            amount=-applied,
            balance_after=balance - applied,
            kind=CreditEntryKind.INVOICE_APPLIED,
            invoice=invoice,
            description=f"Applied to invoice {invoice.number}",
            recorded_by=actor.user,
            actor_label=actor.label,
        )
        INVOICE_STATES.note(
            invoice,
            actor=actor,
            reason=f"{applied} {invoice.currency} of account credit applied; "
            f"{invoice.total - applied} {invoice.currency} left to pay",
        )
    return applied


def invoice_credit_release(*, invoice: Invoice, actor: Actor) -> CreditEntry | None:
    """An invoice that spent credit was cancelled unpaid: the credit goes back (once)."""
    if not invoice.credit_applied or invoice.status != InvoiceStatus.CANCELLED:
        return None
    if CreditEntry.objects.filter(invoice=invoice, kind=CreditEntryKind.INVOICE_RELEASED).exists():
        return None
    return credit_add(
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        amount=invoice.credit_applied,
        kind=CreditEntryKind.INVOICE_RELEASED,
        description=f"Invoice {invoice.number} cancelled; its credit returned",
        actor=actor,
        invoice=invoice,
    )
