"""Billing's side of provisioning: orders follow their deployment's provisioning.

Registered with provisioning.listeners at startup; called inside the saga's transaction.
"""

from typing import Any

from django.db import transaction
from django.utils import timezone

from billing.models import Invoice, InvoiceKind, InvoiceStatus, Order, OrderStatus
from billing.models.orders import ORDER_STATES
from billing.notify import notify_payment_review
from billing.services.cancellations import cancellation_complete_for
from billing.services.confirmation import order_paid_period_start
from billing.services.renewals import renewal_invoices_cancel_for
from common.actors import Actor
from common.dates import billing_today
from servers.models import Deployment
from servers.services import deployment_set_next_due_date


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
        """The server is active. The first time (the order completes), its paid period starts
        now (billing.services.confirmation.order_paid_period_start); a later re-provisioning
        of a completed order moves nothing."""
        now = timezone.now()
        with transaction.atomic():
            order = Order.objects.select_for_update().filter(deployment_id=deployment_id).first()
            first_activation = order is not None and ORDER_STATES.can(order, OrderStatus.COMPLETED)
            self._move(
                deployment_id,
                OrderStatus.COMPLETED,
                actor,
                "Server active",
                {"completed_at": now, "last_error": ""},
            )
            if order is not None and first_activation:
                order_paid_period_start(order_id=order.pk, activated_at=now, actor=actor)

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
        # A scheduled cancellation is done, whoever terminated the server (an immediate one
        # gives the unused paid days back per BILLING_CANCEL_IMMEDIATE_REFUND).
        cancellation_complete_for(deployment_id=deployment_id, actor=actor)
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

    def server_restored(self, *, deployment_id: int, actor: Actor) -> None:
        """Staff restored a terminated server within the restore window. A paid-through date
        that passed meanwhile (typically a termination for non-payment) restarts today: the
        renewal job then invoices the period from today, due today, with the usual grace,
        instead of billing the days the server was gone."""
        today = billing_today()
        deployment = Deployment.objects.get(pk=deployment_id)
        if deployment.next_due_date is None or deployment.next_due_date < today:
            deployment_set_next_due_date(
                deployment_id=deployment_id,
                next_due_date=today,
                actor=actor,
                reason="Restored after termination; the paid period restarts today and the "
                "renewal job invoices it",
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
