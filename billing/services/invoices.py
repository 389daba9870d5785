"""Invoices: numbering, creation from priced lines, cancellation."""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from billing.models import (
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceLineKind,
    InvoiceSequence,
    InvoiceStatus,
    Order,
)
from billing.models.invoices import INVOICE_STATES
from billing.services.credit import invoice_credit_release
from common.actors import Actor
from common.dates import billing_today
from common.money import quantize
from servers.capacity import capacity_hold_release
from servers.models import Deployment


@dataclass(frozen=True)
class PricedLine:
    kind: InvoiceLineKind
    description: str
    unit_amount: Decimal
    quantity: int = 1

    @property
    def amount(self) -> Decimal:
        return self.unit_amount * self.quantity


def invoice_number_next(*, year: int) -> str:
    """Take the next gap-free number of `year`. Call inside the invoice's transaction."""
    # ON CONFLICT DO NOTHING: two first invoices of a year cannot both create the row.
    InvoiceSequence.objects.bulk_create([InvoiceSequence(year=year)], ignore_conflicts=True)
    sequence = InvoiceSequence.objects.select_for_update().get(year=year)
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    return f"{settings.BILLING_INVOICE_PREFIX}-{year}-{sequence.last_number:06d}"


def invoice_numbers_reserve(*, year: int, count: int) -> list[str]:
    """Take `count` consecutive gap-free numbers of `year` at once (the renewal job's batch):
    one row update, however many invoices. Call inside the transaction that inserts them, so a
    rollback returns the whole block and the numbers stay gap-free."""
    if count <= 0:
        return []
    InvoiceSequence.objects.bulk_create([InvoiceSequence(year=year)], ignore_conflicts=True)
    # The UPDATE locks the row until commit: a concurrent batch waits for this one's block.
    InvoiceSequence.objects.filter(year=year).update(last_number=F("last_number") + count)
    last = InvoiceSequence.objects.values_list("last_number", flat=True).get(year=year)
    prefix = settings.BILLING_INVOICE_PREFIX
    return [f"{prefix}-{year}-{number:06d}" for number in range(last - count + 1, last + 1)]


def invoice_create(
    *,
    customer: User,
    currency: str,
    lines: Sequence[PricedLine],
    kind: InvoiceKind,
    actor: Actor,
    order: Order | None = None,
    deployment: Deployment | None = None,
    due_date: dt.date | None = None,
    period_start: dt.date | None = None,
    period_end: dt.date | None = None,
) -> Invoice:
    """Create an unpaid invoice whose totals are the exact sum of its lines."""
    currency = currency.upper()
    charges = [
        quantize(line.amount, currency) for line in lines if line.kind != InvoiceLineKind.DISCOUNT
    ]
    if any(line.kind == InvoiceLineKind.CREDIT for line in lines):
        raise ValueError("Credit is applied after issue (billing.services.credit), not as a line.")
    discounts = [
        -quantize(line.amount, currency) for line in lines if line.kind == InvoiceLineKind.DISCOUNT
    ]
    subtotal = sum(charges, Decimal("0"))
    discount_total = min(sum(discounts, Decimal("0")), subtotal)
    today = billing_today()
    with transaction.atomic():
        invoice = Invoice.objects.create(
            number=invoice_number_next(year=today.year),
            customer=customer,
            order=order,
            deployment=deployment,
            kind=kind,
            currency=currency,
            subtotal=subtotal,
            discount_total=discount_total,
            total=subtotal - discount_total,
            status=InvoiceStatus.UNPAID,
            issued_at=timezone.now(),
            due_date=due_date or today + dt.timedelta(days=settings.BILLING_INVOICE_DUE_DAYS),
            period_start=period_start,
            period_end=period_end,
        )
        InvoiceLine.objects.bulk_create(
            InvoiceLine(
                invoice=invoice,
                kind=line.kind,
                description=line.description[:255],
                quantity=line.quantity,
                unit_amount=quantize(line.unit_amount, currency),
                amount=quantize(line.amount, currency),
                position=position,
            )
            for position, line in enumerate(lines)
        )
        INVOICE_STATES.record_created(
            invoice, actor=actor, reason=f"Issued for {order}" if order else "Issued"
        )
    return invoice


def invoice_cancel(*, invoice_id: int, actor: Actor, reason: str) -> Invoice:
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        INVOICE_STATES.move(invoice, InvoiceStatus.CANCELLED, actor=actor, reason=reason)
        # Credit it had spent goes back to the customer's balance.
        invoice_credit_release(invoice=invoice, actor=actor)
        if invoice.kind == InvoiceKind.NEW_ORDER and invoice.deployment_id:
            # Nobody will pay for this order's server: give its room back to other orders.
            capacity_hold_release(
                deployment_id=invoice.deployment_id,
                reason=f"invoice {invoice.number} cancelled",
                actor=actor,
            )
    return invoice
