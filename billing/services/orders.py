"""Orders: placing (quote, write, first invoice) and cancelling an unpaid order.

Quoting is billing.services.quotes; confirming a paid order is billing.services.confirmation,
which billing.services.payments calls (a zero total is settled here through payments at once).

Account credit is spent first: the new invoice takes what the customer's balance in its
currency covers (billing.services.credit) before the customer is told or sent to pay, so the
invoice, its messages and its Stripe Checkout session all ask only for what is left. Credit
that covers it all settles it here, like a 100% coupon: the order is confirmed at once.
"""

import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing.errors import BillingErrorCode
from billing.models import (
    Coupon,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    Order,
    OrderAddon,
    OrderStatus,
    PaymentProvider,
)
from billing.models.orders import ORDER_STATES
from billing.notify import notify_order_placed
from billing.services.accounts import account_order_check
from billing.services.checkout_expiry import checkout_sessions_expire_later
from billing.services.credit import invoice_credit_apply
from billing.services.invoices import invoice_cancel, invoice_create
from billing.services.payments import invoice_mark_paid
from billing.services.quotes import OrderQuote, coupon_problem, order_quote
from common.actors import Actor
from common.errors import ApplicationError, ConflictError
from servers.capacity import capacity_hold_release, capacity_hold_take
from servers.models import DeploymentStatus
from servers.services import deployment_create, deployment_transition

logger = logging.getLogger(__name__)


def order_place(
    *,
    customer: User,
    plan_slug: str,
    billing_cycle: str,
    location_code: str,
    addon_slugs: Sequence[str] = (),
    coupon_code: str = "",
    variables: Mapping[str, Any] | None = None,
    server_name: str = "",
    idempotency_key: str = "",
    actor: Actor,
) -> Order:
    """Create the order, its deployment (pending) and its invoice in one transaction.

    With an idempotency key, a repeated call returns the first order instead of a second one.
    """
    if idempotency_key:
        existing = Order.objects.filter(customer=customer, idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    account_order_check(user=customer)
    quote = order_quote(
        customer=customer,
        plan_slug=plan_slug,
        billing_cycle=billing_cycle,
        location_code=location_code,
        addon_slugs=addon_slugs,
        coupon_code=coupon_code,
        variables=variables,
        server_name=server_name,
    )
    try:
        with transaction.atomic():
            order, invoice = _order_write(
                customer=customer, quote=quote, key=idempotency_key, actor=actor
            )
            if invoice.total == 0:
                # Nothing to pay (a 100% coupon, or account credit covered it all): settled in
                # the same transaction, so an order is never left with an unpayable 0.00 invoice.
                invoice_mark_paid(
                    invoice_id=invoice.pk,
                    provider=PaymentProvider.MANUAL,
                    amount=Decimal("0"),
                    currency=quote.currency,
                    reference="",
                    actor=Actor.system("credit" if invoice.credit_applied else "zero-total"),
                )
    except IntegrityError:
        if idempotency_key:
            existing = Order.objects.filter(
                customer=customer, idempotency_key=idempotency_key
            ).first()
            if existing is not None:
                return existing
        raise
    order.refresh_from_db()
    return order


def _order_write(
    *, customer: User, quote: OrderQuote, key: str, actor: Actor
) -> tuple[Order, Invoice]:
    """The order's rows (inside order_place's transaction): coupon use, deployment, capacity
    hold, order, add-ons, history and the first invoice, with the customer's credit spent on
    it; then the customer's messages (showing what is left to pay)."""
    if quote.coupon is not None:
        _coupon_redeem(quote.coupon, quote=quote, customer=customer)
    deployment = deployment_create(
        customer=customer,
        name=quote.server_name,
        plan_slug=quote.plan.slug,
        plan_name=quote.plan.name,
        billing_cycle=quote.billing_cycle,
        location=quote.location,
        spec=quote.spec,
        addons=[{"slug": a.slug, "name": a.name} for a in quote.addons],
        variables=quote.customer_variables,
        actor=actor,
    )
    # Room on a node for this order, taken before the customer is asked to pay: the node locks
    # it takes are held until this transaction commits, so the last slot is sold once and the
    # next checkout is refused as sold out (SoldOutError, rolling back everything above).
    capacity_hold_take(
        deployment=deployment,
        location=quote.location,
        memory_mb=int(quote.spec["limits"]["memory"]),
        disk_mb=int(quote.spec["limits"]["disk"]),
        actor=actor,
    )
    order = Order.objects.create(
        customer=customer,
        plan=quote.plan,
        billing_cycle=quote.billing_cycle,
        location=quote.location,
        currency=quote.currency,
        coupon=quote.coupon,
        server_name=quote.server_name,
        variables=quote.customer_variables,
        deployment=deployment,
        status=OrderStatus.PENDING,
        idempotency_key=key,
    )
    OrderAddon.objects.bulk_create(
        OrderAddon(order=order, addon=a, name=a.name, amount=quote.addon_amounts[a.pk])
        for a in quote.addons
    )
    ORDER_STATES.record_created(
        order,
        actor=actor,
        reason=f"Placed: {quote.plan.name} {quote.billing_cycle} in {quote.location.short_code}",
    )
    invoice = invoice_create(
        customer=customer,
        currency=quote.currency,
        lines=quote.lines,
        kind=InvoiceKind.NEW_ORDER,
        order=order,
        deployment=deployment,
        actor=actor,
    )
    if invoice_credit_apply(invoice_id=invoice.pk, actor=Actor.system("credit")):
        invoice.refresh_from_db()
    notify_order_placed(order, invoice)
    return order, invoice


def _coupon_redeem(coupon: Coupon, *, quote: OrderQuote, customer: User) -> None:
    """Count one use of the coupon, checked again under its row lock (a concurrent order may
    have used it up since the quote)."""
    coupon = Coupon.objects.select_for_update().get(pk=coupon.pk)
    problem = coupon_problem(coupon, plan=quote.plan, currency=quote.currency, customer=customer)
    if problem:
        raise ApplicationError.for_fields({"coupon": problem})
    # The CheckConstraint stops a race past max_redemptions even without the lock.
    Coupon.objects.filter(pk=coupon.pk).update(times_redeemed=F("times_redeemed") + 1)


def order_cancel(*, order_id: int, actor: Actor, reason: str) -> Order:
    """Cancel an unpaid order: its invoice is cancelled and its coupon use given back."""
    with transaction.atomic():
        # Invoice rows first, then the order: the same order as a payment takes them, so a
        # cancel racing a payment waits instead of deadlocking.
        invoice_ids = list(
            Invoice.objects.select_for_update()
            .filter(order_id=order_id)
            .values_list("pk", flat=True)
        )
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.status != OrderStatus.PENDING:
            raise ConflictError(
                f"{order} is {order.get_status_display().lower()}; only unpaid orders can be "
                "cancelled here. Terminate the server instead.",
                code=BillingErrorCode.ORDER_NOT_CANCELLABLE,
            )
        order_close_cancelled(
            order, invoice_ids=invoice_ids, actor=actor, reason=reason, order_reason=reason
        )
    return order


def order_close_cancelled(
    order: Order, *, invoice_ids: list[int], actor: Actor, reason: str, order_reason: str
) -> None:
    """Cancel an order whose rows the caller has locked (invoices, then the order): its room,
    its unpaid invoices and their payment pages, its coupon use and its deployment go with it.
    Shared by the unpaid-order cancel and the refund of an order without a server."""
    ORDER_STATES.move(
        order,
        OrderStatus.CANCELLED,
        actor=actor,
        reason=order_reason[:1000],
        extra_updates={"cancelled_at": timezone.now()},
    )
    capacity_hold_release(
        deployment_id=order.deployment_id, reason=f"{order} cancelled", actor=actor
    )
    for invoice in Invoice.objects.filter(pk__in=invoice_ids, status=InvoiceStatus.UNPAID):
        invoice_cancel(invoice_id=invoice.pk, actor=actor, reason=f"{order} cancelled")
        # Close its card payment pages at Stripe so nobody pays a cancelled invoice.
        checkout_sessions_expire_later(invoice_id=invoice.pk)
    if order.coupon_id:
        Coupon.objects.filter(pk=order.coupon_id, times_redeemed__gt=0).update(
            times_redeemed=F("times_redeemed") - 1
        )
    deployment_transition(
        deployment_id=order.deployment_id,
        to_status=DeploymentStatus.CANCELLED,
        actor=actor,
        reason=reason,
    )
