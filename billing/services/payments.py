"""Applying money to invoices: manual transfers confirmed by staff, and the shared core."""

import logging
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.models import (
    Invoice,
    InvoiceEvent,
    InvoiceKind,
    InvoiceStatus,
    Payment,
    PaymentProvider,
    PaymentStatus,
)
from billing.models.invoices import INVOICE_TRANSITIONS
from billing.notify import notify_payment_received
from billing.services.orders import order_confirm
from common.actors import Actor
from common.errors import ConflictError
from common.state import apply_transition
from servers.models import Deployment, DeploymentStatus

logger = logging.getLogger(__name__)


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
        invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
        if invoice.status == InvoiceStatus.PAID:
            raise ConflictError(f"Invoice {invoice.number} is already paid.", code="already_paid")
        if invoice.status != InvoiceStatus.UNPAID:
            raise ConflictError(
                f"Invoice {invoice.number} is {invoice.get_status_display().lower()}; "
                "it cannot be paid.",
                code="invoice_not_payable",
            )
        if (
            invoice.kind == InvoiceKind.RENEWAL
            and invoice.deployment_id
            and (
                Deployment.objects.filter(
                    pk=invoice.deployment_id,
                    status__in=[DeploymentStatus.TERMINATED, DeploymentStatus.CANCELLED],
                ).exists()
            )
        ):
            raise ConflictError(
                f"Invoice {invoice.number} is for a server that no longer exists.",
                code="invoice_not_payable",
            )
        if currency.upper() != invoice.currency or Decimal(amount) != invoice.total:
            raise ConflictError(
                f"Payment of {amount} {currency.upper()} does not match invoice "
                f"{invoice.number} total {invoice.total} {invoice.currency}.",
                code="amount_mismatch",
            )
        payment = None
        if invoice.total > 0:
            try:
                with transaction.atomic():
                    payment = Payment.objects.create(
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
                    code="duplicate_payment",
                ) from exc
        apply_transition(
            invoice,
            table=INVOICE_TRANSITIONS,
            to_status=InvoiceStatus.PAID,
            actor=actor,
            reason=f"Paid by {provider}" + (f" (ref {reference})" if reference else ""),
            event_model=InvoiceEvent,
            event_fk="invoice",
            extra_updates={"paid_at": timezone.now()},
        )
        notify_payment_received(invoice, payment)
        if invoice.order_id and invoice.kind == InvoiceKind.NEW_ORDER:
            order_confirm(
                order_id=invoice.order_id,
                actor=actor,
                reason=f"Invoice {invoice.number} paid by {provider}",
            )
        if invoice.kind == InvoiceKind.RENEWAL and invoice.deployment_id:
            from billing.services.renewals import renewal_paid  # (renewals imports this module)

            if renewal_paid(invoice=invoice, actor=actor):
                from billing.services.dunning import unpaid_server_unsuspend_request

                # A panel operation row, run by the drain after this payment commits.
                unpaid_server_unsuspend_request(
                    deployment_id=invoice.deployment_id,
                    reason=f"Renewal invoice {invoice.number} paid",
                )
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
