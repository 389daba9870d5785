"""Orders: quoting (validation and prices), placing, confirming, cancelling."""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing.catalog import plan_panel_spec
from billing.models import (
    Addon,
    AddonPrice,
    BillingCycle,
    Coupon,
    CouponKind,
    Invoice,
    InvoiceKind,
    InvoiceLineKind,
    InvoiceStatus,
    Order,
    OrderAddon,
    OrderEvent,
    OrderStatus,
    Plan,
    PlanPrice,
)
from billing.models.orders import ORDER_TRANSITIONS
from billing.notify import notify_order_placed
from billing.services.checkout_expiry import checkout_sessions_expire_later
from billing.services.invoices import PricedLine, invoice_cancel, invoice_create
from common.actors import Actor
from common.dates import add_months, billing_today
from common.errors import ApplicationError, ConflictError
from common.money import quantize
from common.state import apply_transition
from provisioning.services import provisioning_request_create
from servers.capacity import (
    capacity_hold_keep,
    capacity_hold_release,
    capacity_hold_take,
    capacity_room_check,
)
from servers.egg_rules import build_environment
from servers.models import Location
from servers.selectors import egg_variable_rules
from servers.services import deployment_create, deployment_set_next_due_date, deployment_transition

logger = logging.getLogger(__name__)

_ENV_KEY_MAX = 191
_ENV_VALUE_MAX = 1024


@dataclass
class OrderQuote:
    """A validated, priced order that has not been written yet."""

    plan: Plan
    billing_cycle: str
    location: Location
    currency: str
    server_name: str
    addons: list[Addon] = field(default_factory=list)
    addon_amounts: dict[int, Decimal] = field(default_factory=dict)
    coupon: Coupon | None = None
    lines: list[PricedLine] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)
    customer_variables: dict[str, str] = field(default_factory=dict)

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines if line.kind != "discount"), Decimal("0"))

    @property
    def discount_total(self) -> Decimal:
        return -sum((line.amount for line in self.lines if line.kind == "discount"), Decimal("0"))

    @property
    def total(self) -> Decimal:
        return self.subtotal - self.discount_total


def _coupon_problem(
    coupon: Coupon, *, plan: Plan, currency: str, customer: AbstractBaseUser
) -> str | None:
    now = timezone.now()
    if not coupon.is_active or (coupon.valid_until and coupon.valid_until < now):
        return "This coupon has expired."
    if coupon.valid_from and coupon.valid_from > now:
        return "This coupon is not valid yet."
    if coupon.plans.exists() and not coupon.plans.filter(pk=plan.pk).exists():
        return f"This coupon does not apply to the {plan.name} plan."
    if coupon.kind == CouponKind.FIXED and coupon.currency.upper() != currency:
        return f"This coupon is in {coupon.currency}; the order is in {currency}."
    if coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        return "This coupon has been used up."
    if coupon.max_redemptions_per_customer is not None:
        used = (
            Order.objects.filter(customer=customer, coupon=coupon)
            .exclude(status=OrderStatus.CANCELLED)
            .count()
        )
        if used >= coupon.max_redemptions_per_customer:
            return "You have already used this coupon."
    return None


def _validate_variables(
    plan: Plan, spec: dict[str, Any], variables: Mapping[str, Any], errors: dict[str, list[str]]
) -> dict[str, str]:
    """Check the customer's egg variables against the egg's rules as far as we know them."""
    rules = egg_variable_rules(egg_panel_id=spec["egg_id"])
    if rules is None:
        # Egg not synced yet: accept plain strings; the panel validates at provisioning.
        clean: dict[str, str] = {}
        for key, value in variables.items():
            if not isinstance(key, str) or not key or len(key) > _ENV_KEY_MAX:
                errors.setdefault("variables", []).append(f"Invalid variable name {key!r}.")
            elif not isinstance(value, str) or len(value) > _ENV_VALUE_MAX:
                errors.setdefault(f"variables.{key}", []).append(
                    f"{key} must be text of at most {_ENV_VALUE_MAX} characters."
                )
            else:
                clean[key] = value
        spec["environment"] = {**plan.environment, **clean}
        return clean
    environment, problems = build_environment(
        rules, plan_values=plan.environment, customer_values=variables
    )
    for key, messages in problems.items():
        errors.setdefault(f"variables.{key}", []).extend(messages)
    spec["environment"] = environment
    return {k: str(v) for k, v in variables.items()}


def order_quote(
    *,
    customer: AbstractBaseUser,
    plan_slug: str,
    billing_cycle: str,
    location_code: str,
    addon_slugs: Sequence[str] = (),
    coupon_code: str = "",
    variables: Mapping[str, Any] | None = None,
    server_name: str = "",
    currency: str | None = None,
) -> OrderQuote:
    """Validate an order and price it. Writes nothing. Raises ApplicationError with fields."""
    currency = (currency or settings.BILLING_DEFAULT_CURRENCY).upper()
    errors: dict[str, list[str]] = {}

    plan = Plan.objects.filter(slug=plan_slug, is_active=True).first()
    if plan is None:
        raise ApplicationError.for_fields({"plan": f"No active plan '{plan_slug}'."})

    plan_price = None
    if billing_cycle not in BillingCycle.values:
        errors["billing_cycle"] = [
            f"'{billing_cycle}' is not a billing cycle; choose {', '.join(BillingCycle.values)}."
        ]
    else:
        plan_price = PlanPrice.objects.filter(
            plan=plan, billing_cycle=billing_cycle, currency=currency, is_active=True
        ).first()
        if plan_price is None:
            errors["billing_cycle"] = [f"{plan.name} is not offered {billing_cycle} in {currency}."]

    location = Location.objects.filter(short_code=location_code, is_active=True).first()
    if location is None:
        errors["location"] = [f"No location '{location_code}'."]
    elif (
        plan.allowed_locations.exists()
        and not plan.allowed_locations.filter(pk=location.pk).exists()
    ):
        errors["location"] = [f"{plan.name} is not available in {location.short_code}."]

    addons: list[Addon] = []
    addon_amounts: dict[int, Decimal] = {}
    for slug in dict.fromkeys(addon_slugs):
        addon = Addon.objects.filter(slug=slug, is_active=True).first()
        if addon is None:
            errors.setdefault("addons", []).append(f"No add-on '{slug}'.")
            continue
        if (
            addon.compatible_plans.exists()
            and not addon.compatible_plans.filter(pk=plan.pk).exists()
        ):
            errors.setdefault("addons", []).append(f"{addon.name} cannot be added to {plan.name}.")
            continue
        price = AddonPrice.objects.filter(
            addon=addon, billing_cycle=billing_cycle, currency=currency
        ).first()
        if price is None:
            errors.setdefault("addons", []).append(
                f"{addon.name} is not offered {billing_cycle} in {currency}."
            )
            continue
        addons.append(addon)
        addon_amounts[addon.pk] = price.amount

    coupon = None
    if coupon_code.strip():
        coupon = Coupon.objects.filter(code=coupon_code.strip().upper()).first()
        problem = (
            "Unknown coupon code."
            if coupon is None
            else _coupon_problem(coupon, plan=plan, currency=currency, customer=customer)
        )
        if problem:
            errors["coupon"] = [problem]

    server_name = (server_name or "").strip() or f"{plan.name} server"
    if len(server_name) > 191:
        errors["server_name"] = ["At most 191 characters."]

    spec = plan_panel_spec(plan, addons)
    if variables is not None and not isinstance(variables, Mapping):
        errors["variables"] = ["Variables must be an object of NAME: value."]
        variables = {}
    customer_variables = _validate_variables(plan, spec, variables or {}, errors)

    if errors:
        raise ApplicationError.for_fields(errors)
    # Sold out is said before the review page, not after it; checkout's hold is the binding
    # check (room can go between the two).
    capacity_room_check(
        location=location,
        memory_mb=int(spec["limits"]["memory"]),
        disk_mb=int(spec["limits"]["disk"]),
        plan_name=plan.name,
    )

    cycle_label = BillingCycle(billing_cycle).label
    lines = [PricedLine(InvoiceLineKind.PLAN, f"{plan.name} ({cycle_label})", plan_price.amount)]
    if plan_price.setup_fee > 0:
        lines.append(
            PricedLine(InvoiceLineKind.SETUP_FEE, f"{plan.name} setup fee", plan_price.setup_fee)
        )
    lines.extend(
        PricedLine(InvoiceLineKind.ADDON, f"{addon.name} ({cycle_label})", addon_amounts[addon.pk])
        for addon in addons
    )
    if coupon is not None:
        eligible = plan_price.amount + sum(addon_amounts.values(), Decimal("0"))
        if coupon.applies_to_setup_fee:
            eligible += plan_price.setup_fee
        if coupon.kind == CouponKind.PERCENT:
            discount = quantize(eligible * coupon.value / 100, currency)
        else:
            discount = min(quantize(coupon.value, currency), eligible)
        if discount > 0:
            lines.append(PricedLine(InvoiceLineKind.DISCOUNT, f"Coupon {coupon.code}", -discount))

    return OrderQuote(
        plan=plan,
        billing_cycle=billing_cycle,
        location=location,
        currency=currency,
        server_name=server_name,
        addons=addons,
        addon_amounts=addon_amounts,
        coupon=coupon,
        lines=lines,
        spec=spec,
        customer_variables=customer_variables,
    )


def order_place(
    *,
    customer: AbstractBaseUser,
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
            order = _order_write(customer=customer, quote=quote, key=idempotency_key, actor=actor)
            if quote.total == 0:
                # Nothing to pay (e.g. a 100% coupon): settled in the same transaction, so an
                # order is never left with an unpayable 0.00 invoice.
                from billing.services.payments import invoice_mark_paid  # (imports this module)

                invoice_mark_paid(
                    invoice_id=order.invoices.get().pk,
                    provider="manual",
                    amount=Decimal("0"),
                    currency=quote.currency,
                    reference="",
                    actor=Actor.system("zero-total"),
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


def _order_write(*, customer: AbstractBaseUser, quote: OrderQuote, key: str, actor: Actor) -> Order:
    if quote.coupon is not None:
        coupon = Coupon.objects.select_for_update().get(pk=quote.coupon.pk)
        problem = _coupon_problem(
            coupon, plan=quote.plan, currency=quote.currency, customer=customer
        )
        if problem:
            raise ApplicationError.for_fields({"coupon": problem})
        # The CheckConstraint stops a race past max_redemptions even without the lock.
        Coupon.objects.filter(pk=coupon.pk).update(times_redeemed=F("times_redeemed") + 1)
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
    OrderEvent.objects.create(
        order=order,
        actor=actor.user,
        actor_label=actor.label,
        from_status="",
        to_status=OrderStatus.PENDING,
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
    notify_order_placed(order, invoice)
    return order


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
                code="order_already_confirmed"
                if order.status != "cancelled"
                else "order_cancelled",
            )
        now = timezone.now()
        apply_transition(
            order,
            table=ORDER_TRANSITIONS,
            to_status=OrderStatus.CONFIRMED,
            actor=actor,
            reason=reason,
            event_model=OrderEvent,
            event_fk="order",
            extra_updates={"confirmed_at": now},
        )
        period_start = billing_today(now)
        months = BillingCycle(order.billing_cycle).months
        deployment_set_next_due_date(
            deployment_id=order.deployment_id,
            next_due_date=add_months(period_start, months),
            actor=actor,
            reason=f"{order} paid for {months} month(s) from {period_start.isoformat()}",
        )
        # Paid: the room stays until the server exists (taken again if it lapsed; never
        # refused here: with no room, provisioning waits for capacity).
        capacity_hold_keep(deployment_id=order.deployment_id, actor=actor)
        provisioning_request_create(
            deployment_id=order.deployment_id, order_reference=str(order), actor=actor
        )
    return order


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
                code="order_not_cancellable",
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
    apply_transition(
        order,
        table=ORDER_TRANSITIONS,
        to_status=OrderStatus.CANCELLED,
        actor=actor,
        reason=order_reason[:1000],
        event_model=OrderEvent,
        event_fk="order",
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
        deployment_id=order.deployment_id, to_status="cancelled", actor=actor, reason=reason
    )
