"""Refund to account credit: a paid invoice's money goes back to the customer's credit.

Staff choose it (billing admin, invoice action) instead of money back through the bank or
Stripe: in one transaction the invoice moves to refunded (INVOICE_STATES), its succeeded
payments are marked refunded with a note (as billing.services.waiting_orders records a refund),
and the customer's ledger gets one REFUND row for what the invoice was paid with, money and
credit alike (total + credit_applied). The ledger's unique (invoice, kind) constraint and the
status check under the invoice's lock make it happen once; the customer is told
(credit_added, sent by credit_add).

What the invoice bought is not undone here: a server it paid for keeps running until staff
cancel or terminate it (billing.services.cancellations).
"""

import logging
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.errors import BillingErrorCode
from billing.models import (
    CreditEntry,
    CreditEntryKind,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentStatus,
)
from billing.models.invoices import INVOICE_STATES
from billing.services.credit import credit_add
from common.actors import Actor
from common.errors import ConflictError

logger = logging.getLogger(__name__)


def invoice_refund_to_credit(*, invoice_id: int, actor: Actor, reason: str = "") -> CreditEntry:
    """Refund a paid invoice to the customer's account credit; returns the ledger row.

    Refuses (ConflictError, nothing changed) an invoice that is not paid (unpaid, cancelled,
    already refunded) and one that was paid with nothing (a 100% coupon)."""
    reason = (reason or "").strip() or "refunded by staff"
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.status != InvoiceStatus.PAID:
            raise ConflictError(
                f"Invoice {invoice.number} is {invoice.get_status_display().lower()}; only a "
                "paid invoice can be refunded to credit.",
                code=BillingErrorCode.REFUND_NOT_POSSIBLE,
            )
        already = CreditEntry.objects.filter(invoice=invoice, kind=CreditEntryKind.REFUND).first()
        if already is not None:
            # E.g. an upgrade paid after its server was cancelled (billing.services.plan_changes
            # gave it to credit) or a paid order that never got a server (waiting_orders).
            raise ConflictError(
                f"Invoice {invoice.number} was already refunded to account credit "
                f"({already.amount} {already.currency} on {already.created_at:%Y-%m-%d}); "
                "it is not refunded twice.",
                code=BillingErrorCode.REFUND_NOT_POSSIBLE,
            )
        payments = list(
            Payment.objects.select_for_update().filter(
                invoice=invoice, status=PaymentStatus.SUCCEEDED
            )
        )
        paid = sum((p.amount for p in payments), Decimal("0")) + invoice.credit_applied
        if paid <= 0:
            raise ConflictError(
                f"Invoice {invoice.number} was paid with nothing (e.g. a 100% coupon); there is "
                "nothing to refund.",
                code=BillingErrorCode.REFUND_NOT_POSSIBLE,
            )
        stamp = f"{timezone.now():%Y-%m-%d %H:%M} {actor.label}"
        for payment in payments:
            payment.status = PaymentStatus.REFUNDED
            payment.note = f"{payment.note}\n{stamp}: refunded to account credit".strip()
            payment.save(update_fields=["status", "note", "updated_at"])
        INVOICE_STATES.move(
            invoice,
            InvoiceStatus.REFUNDED,
            actor=actor,
            reason=f"Refunded to account credit ({paid} {invoice.currency}): {reason}"[:1000],
        )
        entry = credit_add(
            customer_id=invoice.customer_id,
            currency=invoice.currency,
            amount=paid,
            kind=CreditEntryKind.REFUND,
            description=f"Invoice {invoice.number} refunded to account credit",
            actor=actor,
            invoice=invoice,
        )
    logger.info("invoice %s refunded to credit (%s %s)", invoice.number, paid, invoice.currency)
    return entry
