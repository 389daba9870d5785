"""Staff actions on a paid order that has no server yet: move it to a location with room, or
refund it (waiting for capacity, or failed).

Refund, in one transaction: the waiting provisioning run is ended (nothing of the order
exists on the panel), each paid invoice is refunded (a Stripe refund on its PaymentIntent,
idempotent by payment; a bank transfer is recorded as owed back, staff pay it out by hand),
unpaid ones are cancelled, the order and deployment are cancelled, the room is released and
the customer is told. A server that exists on the panel is not refunded here: terminate it
(issue 12 brings cancellation with refund rules for active servers).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from billing import stripe_client
from billing.errors import BillingErrorCode
from billing.models import (
    Invoice,
    InvoiceStatus,
    Order,
    OrderStatus,
    Payment,
    PaymentProvider,
    PaymentStatus,
)
from billing.models.invoices import INVOICE_STATES
from billing.models.orders import ORDER_STATES
from billing.notify import NOTHING_CHARGED, notify_order_refunded
from billing.services.credit import invoice_credit_refund
from billing.services.orders import order_close_cancelled
from common.actors import Actor
from common.errors import ApplicationError, ConflictError
from common.money import to_minor_units
from provisioning.models import ACTIVE_RUN_STATUSES, ProvisioningRun
from provisioning.saga.capacity_wait import provisioning_waiting_cancel, provisioning_waiting_move
from servers.models import Location

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PaymentRefund:
    invoice_number: str
    amount: str
    currency: str
    provider: str  # a PaymentProvider, or NOTHING_CHARGED
    reference: str  # Stripe refund id, or the bank transfer's reference


def order_move_location(*, order_id: int, location_id: int, actor: Actor, reason: str) -> Order:
    """Move an order waiting for capacity to another location with room now; it starts there
    at once. Raises SoldOutError (nothing changed) when that location is full as well."""
    reason = (reason or "").strip() or "moved by staff"
    with transaction.atomic():
        order = Order.objects.select_for_update().select_related("location").get(pk=order_id)
        location = Location.objects.filter(pk=location_id, is_active=True).first()
        if location is None:
            raise ApplicationError.for_fields({"location": "Choose an active location."})
        old = order.location
        provisioning_waiting_move(
            deployment_id=order.deployment_id, location=location, actor=actor, reason=reason
        )
        order.location = location
        order.save(update_fields=["location", "updated_at"])
        ORDER_STATES.note(
            order,
            actor=actor,
            reason=f"Moved from {old} to {location} (waiting for capacity): {reason}"[:1000],
        )
    return order


def order_refund(*, order_id: int, actor: Actor, reason: str) -> list[PaymentRefund]:
    """Cancel a paid order whose server was never created and give the money back.

    Allowed while the order waits for capacity (its run is ended here) or after its run
    failed (the order is back to "confirmed"). Refuses (ConflictError) an order with a server
    on the panel, one whose provisioning is running, and an unpaid or finished one. A Stripe
    failure leaves everything as it was (the refund can be retried; Stripe's idempotency key
    makes a repeat return the first refund). Returns what was refunded.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError.for_fields({"reason": "Say why the order is refunded."})
    with transaction.atomic():
        # Invoices, then the order: the order a payment takes them in (no deadlock).
        invoices = list(
            Invoice.objects.select_for_update().filter(order_id=order_id).order_by("pk")
        )
        order = (
            Order.objects.select_for_update()
            .select_related("deployment", "plan", "customer")
            .get(pk=order_id)
        )
        deployment = order.deployment
        if order.status not in (OrderStatus.CONFIRMED, OrderStatus.PROVISIONING):
            raise ConflictError(
                f"{order} is {order.get_status_display().lower()}: only a paid order without "
                "a server can be refunded here (cancel an unpaid order; terminate a server).",
                code=BillingErrorCode.ORDER_NOT_REFUNDABLE,
            )
        if deployment.panel_server_id:
            raise ConflictError(
                f"{order} has a server on the panel (#{deployment.panel_server_id}): "
                "terminate it instead.",
                code=BillingErrorCode.ORDER_HAS_SERVER,
            )
        run_active = ProvisioningRun.objects.filter(
            deployment_id=deployment.pk, status__in=ACTIVE_RUN_STATUSES
        ).exists()
        if run_active:
            # Only a run waiting for room may be ended here (raises otherwise).
            provisioning_waiting_cancel(deployment_id=deployment.pk, actor=actor, reason=reason)
        refunds = [
            _invoice_refund(invoice, order=order, actor=actor, reason=reason)
            for invoice in invoices
            if invoice.status == InvoiceStatus.PAID
        ]
        total = ", ".join(f"{r.amount} {r.currency}" for r in refunds) or "nothing was paid"
        order_close_cancelled(
            order,
            invoice_ids=[invoice.pk for invoice in invoices],
            actor=actor,
            reason=f"Order refunded: {reason}",
            order_reason=f"Cancelled and refunded ({total}): {reason}",
        )
        notify_order_refunded(order, refunds=refunds, reason=reason)
    logger.info("order %s refunded by %s: %s", order.pk, actor, total)
    return refunds


def _invoice_refund(invoice: Invoice, *, order: Order, actor: Actor, reason: str) -> PaymentRefund:
    payment = (
        Payment.objects.select_for_update()
        .filter(invoice=invoice, status=PaymentStatus.SUCCEEDED)
        .first()
    )
    if payment is None:  # paid in full by a coupon or credit: nothing to give back
        refund = PaymentRefund(invoice.number, "0.00", invoice.currency, NOTHING_CHARGED, "")
        note = "nothing was charged"
    elif payment.provider == PaymentProvider.STRIPE:
        if not payment.reference.startswith("pi_"):
            raise ConflictError(
                f"Payment {payment.reference or payment.pk} has no Stripe PaymentIntent to "
                "refund; refund it in the Stripe dashboard, then cancel the order.",
                code=BillingErrorCode.REFUND_NOT_POSSIBLE,
            )
        result = stripe_client.refund_create(
            payment_intent=payment.reference,
            amount_minor=to_minor_units(payment.amount, payment.currency),
            idempotency_key=f"refund:payment-{payment.pk}",
            metadata={"invoice_number": invoice.number, "order_id": str(order.pk)},
        )
        refund = PaymentRefund(
            invoice.number, str(payment.amount), payment.currency, PaymentProvider.STRIPE, result.id
        )
        note = f"Stripe refund {result.id} ({result.status})"
    else:
        refund = PaymentRefund(
            invoice.number,
            str(payment.amount),
            payment.currency,
            PaymentProvider.MANUAL,
            payment.reference,
        )
        note = "owed back by bank transfer: staff pay it out by hand"
    if payment is not None:
        payment.status = PaymentStatus.REFUNDED
        payment.note = f"{payment.note}\n{timezone.now():%Y-%m-%d %H:%M} {actor.label}: {note}"
        payment.note = payment.note.strip()
        payment.save(update_fields=["status", "note", "updated_at"])
    INVOICE_STATES.move(
        invoice, InvoiceStatus.REFUNDED, actor=actor, reason=f"Refunded, {note}: {reason}"[:1000]
    )
    # Account credit the invoice spent goes back to the customer's credit (told separately).
    invoice_credit_refund(invoice=invoice, actor=actor)
    return refund
