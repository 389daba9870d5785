"""Quoting an order: validating what the customer asked for and pricing it. Writes nothing.

Each field is checked by its own step, which adds its problems to one dict of field errors, so
the customer sees every problem of the form at once (in the form's order).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from billing.catalog import plan_panel_spec
from billing.models import (
    Addon,
    AddonPrice,
    BillingCycle,
    Coupon,
    CouponKind,
    InvoiceLineKind,
    Order,
    OrderStatus,
    Plan,
    PlanPrice,
)
from billing.services.invoices import PricedLine
from common.errors import ApplicationError
from common.money import quantize
from servers.capacity import capacity_room_check
from servers.egg_rules import build_environment
from servers.models import Location
from servers.selectors import egg_variable_rules

_ENV_KEY_MAX = 191
_ENV_VALUE_MAX = 1024
_SERVER_NAME_MAX = 191

# Field name ("plan", "variables.SERVER_JARFILE") -> its messages, as ApplicationError.for_fields
# renders them.
FieldErrors = dict[str, list[str]]


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
        return sum(
            (line.amount for line in self.lines if line.kind != InvoiceLineKind.DISCOUNT),
            Decimal("0"),
        )

    @property
    def discount_total(self) -> Decimal:
        return -sum(
            (line.amount for line in self.lines if line.kind == InvoiceLineKind.DISCOUNT),
            Decimal("0"),
        )

    @property
    def total(self) -> Decimal:
        return self.subtotal - self.discount_total


def order_quote(
    *,
    customer: User,
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
    plan = _active_plan(plan_slug)  # nothing else can be checked without it
    errors: FieldErrors = {}
    plan_price = _plan_price(plan, billing_cycle, currency, errors)
    location = _orderable_location(plan, location_code, errors)
    addons, addon_amounts = _priced_addons(plan, addon_slugs, billing_cycle, currency, errors)
    coupon = _usable_coupon(
        coupon_code, plan=plan, currency=currency, customer=customer, errors=errors
    )
    server_name = _server_name(server_name, plan, errors)
    spec = plan_panel_spec(plan, addons)
    customer_variables = _customer_variables(plan, spec, variables, errors)
    if errors or plan_price is None or location is None:  # (a missing one left a field error)
        raise ApplicationError.for_fields(errors)
    # Sold out is said before the review page, not after it; checkout's hold is the binding
    # check (room can go between the two).
    capacity_room_check(
        location=location,
        memory_mb=int(spec["limits"]["memory"]),
        disk_mb=int(spec["limits"]["disk"]),
        plan_name=plan.name,
    )
    return OrderQuote(
        plan=plan,
        billing_cycle=billing_cycle,
        location=location,
        currency=currency,
        server_name=server_name,
        addons=addons,
        addon_amounts=addon_amounts,
        coupon=coupon,
        lines=_priced_lines(
            plan=plan,
            plan_price=plan_price,
            billing_cycle=billing_cycle,
            addons=addons,
            addon_amounts=addon_amounts,
            coupon=coupon,
            currency=currency,
        ),
        spec=spec,
        customer_variables=customer_variables,
    )


def coupon_problem(coupon: Coupon, *, plan: Plan, currency: str, customer: User) -> str | None:
    """Why `coupon` cannot be used on this order now, or None. Checked when quoting and again
    under the coupon's row lock when the order is written."""
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


def _active_plan(plan_slug: str) -> Plan:
    plan = Plan.objects.filter(slug=plan_slug, is_active=True).first()
    if plan is None:
        raise ApplicationError.for_fields({"plan": f"No active plan '{plan_slug}'."})
    return plan


def _plan_price(
    plan: Plan, billing_cycle: str, currency: str, errors: FieldErrors
) -> PlanPrice | None:
    if billing_cycle not in BillingCycle.values:
        errors["billing_cycle"] = [
            f"'{billing_cycle}' is not a billing cycle; choose {', '.join(BillingCycle.values)}."
        ]
        return None
    plan_price = PlanPrice.objects.filter(
        plan=plan, billing_cycle=billing_cycle, currency=currency, is_active=True
    ).first()
    if plan_price is None:
        errors["billing_cycle"] = [f"{plan.name} is not offered {billing_cycle} in {currency}."]
    return plan_price


def _orderable_location(plan: Plan, location_code: str, errors: FieldErrors) -> Location | None:
    location = Location.objects.filter(short_code=location_code, is_active=True).first()
    if location is None:
        errors["location"] = [f"No location '{location_code}'."]
    elif (
        plan.allowed_locations.exists()
        and not plan.allowed_locations.filter(pk=location.pk).exists()
    ):
        errors["location"] = [f"{plan.name} is not available in {location.short_code}."]
    return location


def _priced_addons(
    plan: Plan,
    addon_slugs: Sequence[str],
    billing_cycle: str,
    currency: str,
    errors: FieldErrors,
) -> tuple[list[Addon], dict[int, Decimal]]:
    """The add-ons asked for (each once) that fit the plan and have a price, and those prices."""
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
    return addons, addon_amounts


def _usable_coupon(
    coupon_code: str,
    *,
    plan: Plan,
    currency: str,
    customer: User,
    errors: FieldErrors,
) -> Coupon | None:
    if not coupon_code.strip():
        return None
    coupon = Coupon.objects.filter(code=coupon_code.strip().upper()).first()
    problem = (
        "Unknown coupon code."
        if coupon is None
        else coupon_problem(coupon, plan=plan, currency=currency, customer=customer)
    )
    if problem:
        errors["coupon"] = [problem]
    return coupon


def _server_name(server_name: str, plan: Plan, errors: FieldErrors) -> str:
    name = (server_name or "").strip() or f"{plan.name} server"
    if len(name) > _SERVER_NAME_MAX:
        errors["server_name"] = [f"At most {_SERVER_NAME_MAX} characters."]
    return name


def _customer_variables(
    plan: Plan, spec: dict[str, Any], variables: Any, errors: FieldErrors
) -> dict[str, str]:
    """The customer's egg variables, checked; sets the spec's environment (plan's + theirs)."""
    if variables is not None and not isinstance(variables, Mapping):
        errors["variables"] = ["Variables must be an object of NAME: value."]
        variables = {}
    variables = variables or {}
    rules = egg_variable_rules(egg_panel_id=spec["egg_id"])
    if rules is None:
        # Egg not synced yet: accept plain strings; the panel validates at provisioning.
        clean = _plain_variables(variables, errors)
        spec["environment"] = {**plan.environment, **clean}
        return clean
    environment, problems = build_environment(
        rules, plan_values=plan.environment, customer_values=variables
    )
    for key, messages in problems.items():
        errors.setdefault(f"variables.{key}", []).extend(messages)
    spec["environment"] = environment
    return {k: str(v) for k, v in variables.items()}


def _plain_variables(variables: Mapping[str, Any], errors: FieldErrors) -> dict[str, str]:
    """Variables of an egg whose rules we do not know yet: names and text of bounded size."""
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
    return clean


def _priced_lines(
    *,
    plan: Plan,
    plan_price: PlanPrice,
    billing_cycle: str,
    addons: list[Addon],
    addon_amounts: dict[int, Decimal],
    coupon: Coupon | None,
    currency: str,
) -> list[PricedLine]:
    """The first invoice's lines: the plan, its setup fee, the add-ons, the coupon's discount."""
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
        discount = _coupon_discount(
            coupon, plan_price=plan_price, addon_amounts=addon_amounts, currency=currency
        )
        if discount > 0:
            lines.append(PricedLine(InvoiceLineKind.DISCOUNT, f"Coupon {coupon.code}", -discount))
    return lines


def _coupon_discount(
    coupon: Coupon, *, plan_price: PlanPrice, addon_amounts: dict[int, Decimal], currency: str
) -> Decimal:
    """A percentage of, or a fixed amount up to, the plan and add-ons (and the setup fee when
    the coupon says so)."""
    eligible = plan_price.amount + sum(addon_amounts.values(), Decimal("0"))
    if coupon.applies_to_setup_fee:
        eligible += plan_price.setup_fee
    if coupon.kind == CouponKind.PERCENT:
        return quantize(eligible * coupon.value / 100, currency)
    return min(quantize(coupon.value, currency), eligible)
