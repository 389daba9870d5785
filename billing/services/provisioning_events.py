"""Billing's side of provisioning: orders follow their deployment's provisioning.

Registered with provisioning.listeners at startup; called inside the saga's transaction.
"""

from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.models import Invoice, InvoiceKind, InvoiceStatus, Order, OrderStatus
from billing.models.orders import ORDER_STATES
from billing.notify import notify_payment_review
from billing.services.renewals import renewal_invoices_cancel_for
from common.actors import Actor
from common.dates import billing_today


class OrderProvisioningListener:
    def provisioning_started(self, *, deployment_id: int, actor: Actor) -> None:
        self._move(
            deployment_id,
            OrderStatus.PROVISIONING,
            actor,
            "Provisioning started",
            {"last_error": ""},
        )

    def provisioning_succeeded(self, *, deployment_id: int, actor: Actor) -> None:
        self._move(
            deployment_id,
            OrderStatus.COMPLETED,
            actor,
            "Server active",
            {"completed_at": timezone.now(), "last_error": ""},
        )

    def provisioning_failed(self, *, deployment_id: int, error: str, actor: Actor) -> None:
        # As the guides say: the order returns to "confirmed", with the error, for a retry or
        # manual setup.
        self._move(
            deployment_id,
            OrderStatus.CONFIRMED,
            actor,
            f"Automatic provisioning failed: {error}"[:1000],
            {"last_error": error[:2000]},
        )

    def server_terminated(self, *, deployment_id: int, actor: Actor) -> None:
        """Nothing is owed for a server that no longer exists: void its unpaid renewals."""
        renewal_invoices_cancel_for(deployment_id=deployment_id, reason="Server terminated")
        # Paid ahead for time the server will not run (e.g. paid during the deletion): staff
        # decide on a refund.
        for invoice in Invoice.objects.filter(
            deployment_id=deployment_id,
            kind=InvoiceKind.RENEWAL,
            status=InvoiceStatus.PAID,
            period_end__gt=billing_today(),
            period_start__gt=billing_today(),
        ):
            notify_payment_review(
                provider="renewal",
                reference=invoice.number,
                reason=f"Invoice {invoice.number} was paid for a period after the server was "
                "terminated; refund it.",
                invoice=invoice,
                event_key=f"payment_review:terminated:{invoice.number}",
            )

    def _move(
        self,
        deployment_id: int,
        to_status: str,
        actor: Actor,
        reason: str,
        updates: dict[str, Any],
    ) -> None:
        with transaction.atomic():
            order = Order.objects.select_for_update().filter(deployment_id=deployment_id).first()
            if order is None or order.status == to_status:
                return
            if not ORDER_STATES.can(order, to_status):
                return  # e.g. a cancelled order: provisioning does not resurrect it
            ORDER_STATES.move(order, to_status, actor=actor, reason=reason, extra_updates=updates)
