"""Account credit: the ledger's writes (billing.models.credit.CreditEntry).

Every movement is a row with the balance after it. Writers lock the customer's user row first,
so two movements of one customer are serialized and balance_after is exact; the model's check
constraint (balance never below zero) refuses what a bug would overspend.

Credit is spent on invoices first: invoice_credit_apply runs when an invoice is issued (new
orders, renewals, upgrades) and takes what the balance covers as a negative "Account credit"
line. A fully covered invoice is left at 0.00 for its caller to settle the way every zero-total
invoice is settled (through billing.services.payments), so what a payment buys still follows:
new orders in billing.services.orders, renewal batches in billing.services.renewal_credit.

The customer is told (credit_added) of every credit given to them that is not an invoice's own
credit coming back: downgrades, cancellations, refunds to credit, staff adjustments upwards.
"""

import logging
from collections.abc import Iterable
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection, transaction
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
from billing.notify import notify_credit_added
from common.actors import Actor
from common.errors import ApplicationError, CommonErrorCode
from common.money import SUPPORTED_CURRENCIES, quantize

logger = logging.getLogger(__name__)

# Credit given to the customer that they are told about (credit_added). An invoice's credit
# coming back (INVOICE_RELEASED) is part of the cancellation they are told about already.
NOTIFIED_KINDS = frozenset(
    {
        CreditEntryKind.DOWNGRADE,
        CreditEntryKind.CANCELLATION,
        CreditEntryKind.REFUND,
        CreditEntryKind.STAFF_ADJUSTMENT,
    }
)


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
        entry = CreditEntry.objects.create(
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
        if amount > 0 and kind in NOTIFIED_KINDS:
            notify_credit_added(entry)
    logger.info(
        "credit %s %s for customer %s (%s), balance %s",
        amount,
        currency,
        customer_id,
        kind,
        entry.balance_after,
    )
    return entry


def credit_staff_adjust(
    *, customer_id: int, currency: str, amount: Decimal, reason: str, actor: Actor
) -> CreditEntry:
    """Staff add credit (positive) or take it back (negative), saying why. Refuses, as field
    errors, a missing reason, an unknown currency, zero, and taking more than the balance."""
    reason = (reason or "").strip()
    currency = (currency or "").strip().upper()
    errors: dict[str, str] = {}
    if not reason:
        errors["reason"] = "Say why the credit is adjusted (the customer's ledger shows it)."
    if currency not in SUPPORTED_CURRENCIES:
        errors["currency"] = f"Choose one of {', '.join(SUPPORTED_CURRENCIES)}."
    elif quantize(Decimal(amount), currency) == 0:
        errors["amount"] = "Enter an amount other than zero (negative takes credit back)."
    if errors:
        raise ApplicationError.for_fields(errors)
    try:
        return credit_add(
            customer_id=customer_id,
            currency=currency,
            amount=amount,
            kind=CreditEntryKind.STAFF_ADJUSTMENT,
            description=reason,
            actor=actor,
        )
    except InsufficientCredit as exc:
        raise ApplicationError.for_fields(
            {"amount": f"{exc.message} The balance cannot go below zero."},
            code=BillingErrorCode.INSUFFICIENT_CREDIT,
        ) from exc


def customers_with_credit(*, pairs: Iterable[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which (customer, currency) pairs of `pairs` have a positive balance: one query whatever
    their number (the newest ledger row per pair, read through credit_balance_idx), so a batch
    job asks once and touches only the rare invoices of customers with credit."""
    wanted = set(pairs)
    customer_ids = {customer_id for customer_id, _currency in wanted}
    if not customer_ids:
        return set()
    entries = CreditEntry.objects.filter(customer_id__in=customer_ids)
    if connection.vendor == "postgresql":
        rows = (
            entries.order_by("customer_id", "currency", "-id")
            .distinct("customer_id", "currency")
            .values_list("customer_id", "currency", "balance_after")
        )
        latest = {(customer_id, currency): balance for customer_id, currency, balance in rows}
    else:  # SQLite (the demo) has no DISTINCT ON: the newest row per pair in Python
        latest = {}
        for customer_id, currency, balance in entries.order_by("-id").values_list(
            "customer_id", "currency", "balance_after"
        ):
            latest.setdefault((customer_id, currency), balance)
    return {pair for pair in wanted if latest.get(pair, Decimal("0")) > 0}


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


def invoice_credit_refund(*, invoice: Invoice, actor: Actor) -> CreditEntry | None:
    """A paid invoice that spent credit is refunded by the way it was paid (a paid order
    without a server, billing.services.waiting_orders): the credit part comes back as credit,
    once (the ledger's one REFUND row per invoice). Refunding it all to credit is
    billing.services.credit_refunds."""
    if not invoice.credit_applied:
        return None
    if CreditEntry.objects.filter(invoice=invoice, kind=CreditEntryKind.REFUND).exists():
        return None
    return credit_add(
        customer_id=invoice.customer_id,
        currency=invoice.currency,
        amount=invoice.credit_applied,
        kind=CreditEntryKind.REFUND,
        description=f"Invoice {invoice.number} refunded; the account credit it used returned",
        actor=actor,
        invoice=invoice,
    )
