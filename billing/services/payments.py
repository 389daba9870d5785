"""Applying money to invoices: manual transfers confirmed by staff, and the shared core.

What a payment buys follows in the same transaction: a new order is confirmed and handed to
provisioning (billing.services.confirmation); a renewal extends its server and lifts a
non-payment suspension (billing.services.renewals, billing.services.dunning).
"""

import logging
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.errors import BillingErrorCode
from billing.models import (
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    Payment,
    PaymentProvider,
    PaymentStatus,
)
from billing.models.invoices import INVOICE_STATES
from billing.notify import notify_payment_received
from billing.services.confirmation import order_confirm
from billing.services.dunning import unpaid_server_unsuspend_request
from billing.services.plan_changes import plan_change_paid
from billing.services.renewals import renewal_paid
from common.actors import Actor
from common.errors import ConflictError
from servers.models import Deployment, DeploymentStatus

logger = logging.getLogger(__name__)

# A renewal of a server in one of these is owed nothing any more.
_SERVER_GONE = (DeploymentStatus.TERMINATED, DeploymentStatus.CANCELLED)


def invoice_mark_paid(
    *,
    invoice_id: int,
    provider: str,
    amount: Decimal,
    currency: str,
    reference: str,
    actor: Actor,
    note: str = "",
) -> Payment | None:
    """Apply a payment of the invoice's exact total; confirm its order.

    Refuses (ConflictError) a paid, cancelled or refunded invoice and a wrong amount or currency.
    The one-succeeded-payment-per-invoice constraint makes a racing second payment fail even if
    two callers got past the status check. Returns None for a zero-total invoice (no money).
    """
    with transaction.atomic():
        invoice = _payable_invoice_lock(invoice_id)
        _amount_check(invoice, amount=amount, currency=currency)
        payment = None
        if invoice.total > 0:
            payment = _payment_record(
                invoice, provider=provider, reference=reference, actor=actor, note=note
            )
        INVOICE_STATES.move(
            invoice,
            InvoiceStatus.PAID,
            actor=actor,
            reason=f"Paid by {provider}" + (f" (ref {reference})" if reference else ""),
            extra_updates={"paid_at": timezone.now()},
        )
        notify_payment_received(invoice, payment)
        _paid_invoice_follow_up(invoice, provider=provider, actor=actor)
    logger.info("invoice %s paid by %s", invoice.number, provider)
    return payment


def payment_record_manual(
    *, invoice_id: int, reference: str, actor: Actor, note: str = ""
) -> Payment | None:
    """Staff confirm a bank transfer (the guides' "order confirm") for the invoice's total."""
    reference = reference.strip()
    invoice = Invoice.objects.get(pk=invoice_id)
    return invoice_mark_paid(
        invoice_id=invoice.pk,
        provider=PaymentProvider.MANUAL,
        amount=invoice.total,
        currency=invoice.currency,
        reference=reference,
        actor=actor,
        note=note,
    )


def _payable_invoice_lock(invoice_id: int) -> Invoice:
    """The invoice, locked for the payment's transaction, if it can still be paid."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
    if invoice.status == InvoiceStatus.PAID:
        raise ConflictError(
            f"Invoice {invoice.number} is already paid.", code=BillingErrorCode.ALREADY_PAID
        )
    if invoice.status != InvoiceStatus.UNPAID:
        raise ConflictError(
            f"Invoice {invoice.number} is {invoice.get_status_display().lower()}; "
            "it cannot be paid.",
            code=BillingErrorCode.INVOICE_NOT_PAYABLE,
        )
    if _renewal_of_a_gone_server(invoice):
        raise ConflictError(
            f"Invoice {invoice.number} is for a server that no longer exists.",
            code=BillingErrorCode.INVOICE_NOT_PAYABLE,
        )
    return invoice


def _renewal_of_a_gone_server(invoice: Invoice) -> bool:
    return bool(
        invoice.kind == InvoiceKind.RENEWAL
        and invoice.deployment_id
        and Deployment.objects.filter(pk=invoice.deployment_id, status__in=_SERVER_GONE).exists()
    )


def _amount_check(invoice: Invoice, *, amount: Decimal, currency: str) -> None:
    """Only the invoice's exact total in its currency pays it."""
    if currency.upper() != invoice.currency or Decimal(amount) != invoice.total:
        raise ConflictError(
            f"Payment of {amount} {currency.upper()} does not match invoice "
            f"{invoice.number} total {invoice.total} {invoice.currency}.",
            code=BillingErrorCode.AMOUNT_MISMATCH,
        )


def _payment_record(
    invoice: Invoice, *, provider: str, reference: str, actor: Actor, note: str
) -> Payment:
    """The money row. Its unique constraints (one succeeded payment per invoice, a provider's
    reference once) refuse a duplicate that raced past the status check."""
    try:
        with transaction.atomic():
            return Payment.objects.create(
                invoice=invoice,
                provider=provider,
                amount=invoice.total,
                currency=invoice.currency,
                reference=reference,
                status=PaymentStatus.SUCCEEDED,
                recorded_by=actor.user,
                actor_label=actor.label,
                note=note,
            )
    except IntegrityError as exc:
        raise ConflictError(
            f"A payment with reference '{reference}' is already recorded, or invoice "
            f"{invoice.number} is already paid.",
            code=BillingErrorCode.DUPLICATE_PAYMENT,
        ) from exc


def _paid_invoice_follow_up(invoice: Invoice, *, provider: str, actor: Actor) -> None:
    """What the payment buys: a new order is confirmed (and provisioned); a renewal extends its
    server, and a server suspended for non-payment is unsuspended."""
    if invoice.order_id and invoice.kind == InvoiceKind.NEW_ORDER:
        order_confirm(
            order_id=invoice.order_id,
            actor=actor,
            reason=f"Invoice {invoice.number} paid by {provider}",
        )
    if (
        invoice.kind == InvoiceKind.RENEWAL
        and invoice.deployment_id
        and renewal_paid(invoice=invoice, actor=actor)
    ):
        # A panel operation row, run by the drain after this payment commits.
        unpaid_server_unsuspend_request(
            deployment_id=invoice.deployment_id,
            reason=f"Renewal invoice {invoice.number} paid",
        )
    if invoice.kind == InvoiceKind.UPGRADE:
        # The plan change is queued for the panel (a panel operation, after commit), or, for a
        # server cancelled meanwhile, refunded to credit.
        plan_change_paid(invoice=invoice, actor=actor)
