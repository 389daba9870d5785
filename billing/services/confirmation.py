"""Confirming a paid order: its paid-through date, its room kept, its hand-off to provisioning.

Called by billing.services.payments when an order's first invoice is paid; below payments and
orders (which place orders and may settle a zero total at once), so nothing imports back.

Billing rule: the paid period starts when the server becomes active, not at payment. At
confirmation the paid-through date is provisional (payment day + one billing cycle, so pages
and staff see a sane date while the order waits or retries); when the order's server first
becomes active, order_paid_period_start sets it again from that day (called by
billing.services.provisioning_events). A failed, delayed or capacity-waiting run therefore does
not eat the customer's days. Nothing bills on the provisional date: renewals are issued only
for live (active or suspended) servers, and only after activation has set the real one.
"""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from billing.errors import BillingErrorCode
from billing.models import BillingCycle, Order, OrderStatus
from billing.models.orders import ORDER_STATES
from common.actors import Actor
from common.dates import add_months, billing_today
from common.errors import ConflictError
from provisioning.services import provisioning_request_create
from servers.capacity import capacity_hold_keep
from servers.services import deployment_set_next_due_date


def order_confirm(*, order_id: int, actor: Actor, reason: str) -> Order:
    """Paid: confirm the order, set the paid-through date, hand it to provisioning.

    Runs inside the payment's transaction: the provisioning request is written atomically with
    the confirmation (never lost between commit and hand-off), and its work is queued on commit.
    """
    with transaction.atomic():
        order = Order.objects.select_for_update().select_related("plan").get(pk=order_id)
        if order.status != OrderStatus.PENDING:
            raise ConflictError(
                f"{order} is already {order.get_status_display().lower()}.",
                code=BillingErrorCode.ORDER_CANCELLED
                if order.status == OrderStatus.CANCELLED
                else BillingErrorCode.ORDER_ALREADY_CONFIRMED,
            )
        now = timezone.now()
        ORDER_STATES.move(
            order,
            OrderStatus.CONFIRMED,
            actor=actor,
            reason=reason,
            extra_updates={"confirmed_at": now},
        )
        _paid_through_set(order, period_start=billing_today(now), actor=actor)
        # Paid: the room stays until the server exists (taken again if it lapsed; never
        # refused here: with no room, provisioning waits for capacity).
        capacity_hold_keep(deployment_id=order.deployment_id, actor=actor)
        provisioning_request_create(
            deployment_id=order.deployment_id, order_reference=str(order), actor=actor
        )
    return order


def _paid_through_set(order: Order, *, period_start: dt.date, actor: Actor) -> None:
    """The first period, provisionally: from the day of payment, one billing cycle (set again
    from the activation day by order_paid_period_start)."""
    months = BillingCycle(order.billing_cycle).months
    deployment_set_next_due_date(
        deployment_id=order.deployment_id,
        next_due_date=add_months(period_start, months),
        actor=actor,
        reason=f"{order} paid for {months} month(s) from {period_start.isoformat()} "
        "(provisional: the paid period starts when the server becomes active)",
    )


def order_paid_period_start(*, order_id: int, activated_at: dt.datetime, actor: Actor) -> None:
    """The order's server became active for the first time: its first paid period starts on
    that day (in the billing time zone) and lasts one billing cycle, whatever day it was paid.

    Called once, inside the transaction that completes the order (the listener calls it only
    when the order moves to completed, which happens once); a later re-provisioning of the same
    server does not move the date."""
    order = Order.objects.only("pk", "billing_cycle", "deployment_id").get(pk=order_id)
    months = BillingCycle(order.billing_cycle).months
    start = billing_today(activated_at)
    deployment_set_next_due_date(
        deployment_id=order.deployment_id,
        next_due_date=add_months(start, months),
        actor=actor,
        reason=f"Paid period starts when the server becomes active (billing rule): {order}, "
        f"{months} month(s) from {start.isoformat()}",
    )
