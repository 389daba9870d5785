"""Reads for billing: catalog, orders and invoices as customers and staff see them."""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import Prefetch, Q, QuerySet

from billing.models import (
    Addon,
    AddonPrice,
    CreditEntry,
    Invoice,
    Order,
    Plan,
    PlanChange,
    PlanPrice,
)
from common.errors import NotFoundError
from servers.capacity import location_availability
from servers.models import Location
from servers.selectors import location_list_active


def plan_list_active(*, currency: str | None = None) -> QuerySet[Plan]:
    prices = PlanPrice.objects.filter(is_active=True)
    if currency:
        prices = prices.filter(currency=currency)
    return Plan.objects.filter(is_active=True).prefetch_related(
        Prefetch("prices", queryset=prices.order_by("id")),
        "allowed_locations",
    )


def plan_get_active(*, slug: str) -> Plan:
    plan = plan_list_active().filter(slug=slug).first()
    if plan is None:
        raise NotFoundError(f"No active plan '{slug}'.")
    return plan


@dataclass(frozen=True)
class LocationOffer:
    location: Location
    # From live capacity (node mirror, in-flight runs, capacity holds): a new order of the plan
    # would find room there now. Checkout's capacity hold is the binding check.
    available: bool

    @property
    def sold_out(self) -> bool:
        return not self.available


@dataclass(frozen=True)
class PlanOffer:
    plan: Plan
    locations: list[LocationOffer]

    @property
    def sold_out(self) -> bool:
        return not any(offer.available for offer in self.locations)


def plan_locations(plan: Plan, *, active_locations: list[Location]) -> list[Location]:
    """Where the plan can be ordered: its allowed locations that are active, else every active
    location. Uses the prefetched allowed_locations."""
    allowed = [loc for loc in plan.allowed_locations.all() if loc.is_active]
    return allowed or active_locations


def plan_offers(
    plans: Iterable[Plan], *, active_locations: list[Location] | None = None
) -> list[PlanOffer]:
    """Each plan with its locations and whether each is sold out, in a constant number of
    queries however many plans (the plan list, the order form, the API)."""
    plans = list(plans)
    if active_locations is None:
        active_locations = list(location_list_active())
    per_plan = {plan.pk: plan_locations(plan, active_locations=active_locations) for plan in plans}
    locations = {loc.pk: loc for locs in per_plan.values() for loc in locs}
    availability = location_availability(plans, locations.values())
    return [
        PlanOffer(
            plan=plan,
            locations=[
                LocationOffer(location=loc, available=availability[(plan.pk, loc.pk)])
                for loc in per_plan[plan.pk]
            ],
        )
        for plan in plans
    ]


def addon_catalog(*, currency: str) -> list[Addon]:
    """Active add-ons with their prices in `currency` and compatible plans (one query each)."""
    return list(
        Addon.objects.filter(is_active=True).prefetch_related(
            Prefetch("prices", queryset=AddonPrice.objects.filter(currency=currency)),
            "compatible_plans",
        )
    )


def addon_list_for_plan(
    *, plan: Plan, currency: str, catalog: list[Addon] | None = None
) -> list[tuple[Addon, list[AddonPrice]]]:
    """The add-ons that fit `plan`: those with no plan list, or with `plan` in it."""
    addons = catalog if catalog is not None else addon_catalog(currency=currency)
    result = []
    for addon in addons:
        compatible = {p.pk for p in addon.compatible_plans.all()}
        if not compatible or plan.pk in compatible:
            result.append((addon, list(addon.prices.all())))
    return result


def order_list_for_customer(*, customer: User) -> QuerySet[Order]:
    return (
        Order.objects.filter(customer=customer)
        .select_related("plan", "location", "deployment", "coupon")
        .prefetch_related("invoices__lines", "invoices__payments", "order_addons__addon")
    )


def order_get_for_customer(*, order_id: int, customer: User) -> Order:
    order = order_list_for_customer(customer=customer).filter(pk=order_id).first()
    if order is None:
        raise NotFoundError("No such order.")
    return order


def invoice_list_for_customer(*, customer: User) -> QuerySet[Invoice]:
    return Invoice.objects.filter(customer=customer).prefetch_related("lines", "payments")


def invoice_get_for_customer(*, invoice_id: int, customer: User) -> Invoice:
    invoice = invoice_list_for_customer(customer=customer).filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFoundError("No such invoice.")
    return invoice


def order_get_by_reference(*, reference: str) -> Order:
    """An order by id, '#12' or 'order-12' (as staff type it on the command line)."""
    digits = reference.strip().lstrip("#").removeprefix("order-").removeprefix("ORD-")
    if not (digits.isascii() and digits.isdigit()):
        raise NotFoundError(f"'{reference}' is not an order number.")
    order = (
        Order.objects.select_related("plan", "location", "deployment", "customer", "coupon")
        .filter(pk=int(digits))
        .first()
    )
    if order is None:
        raise NotFoundError(f"Order {reference} does not exist.")
    return order


def credit_balances(*, customer_id: int) -> dict[str, Decimal]:
    """The customer's account credit per currency (the newest ledger row's balance_after);
    currencies whose balance is zero are left out."""
    latest = (
        CreditEntry.objects.filter(customer_id=customer_id)
        .order_by("currency", "-id")
        .distinct("currency")
        if connection.vendor == "postgresql"
        else None
    )
    rows: Iterable[tuple[str, Decimal]]
    if latest is not None:
        rows = latest.values_list("currency", "balance_after")
    else:  # SQLite (the demo) has no DISTINCT ON: the newest row per currency in Python
        seen: dict[str, Decimal] = {}
        for currency, balance in (
            CreditEntry.objects.filter(customer_id=customer_id)
            .order_by("-id")
            .values_list("currency", "balance_after")
        ):
            seen.setdefault(currency, balance)
        rows = seen.items()
    return {currency: balance for currency, balance in rows if balance}


def credit_history(*, customer_id: int, limit: int = 50) -> list[CreditEntry]:
    """The customer's newest ledger rows, with the invoice each one concerns."""
    return list(
        CreditEntry.objects.filter(customer_id=customer_id)
        .select_related("invoice")
        .order_by("-id")[:limit]
    )


# ---------------------------------------------------------------------- plan changes


def plan_family(*, plan: Plan) -> QuerySet[Plan]:
    """The active plans a server on `plan` may move to: the same "egg family" (same category
    and same panel nest), so a Minecraft server is never offered Discord-bot tiers. Excludes
    `plan` itself."""
    return (
        Plan.objects.filter(is_active=True, category=plan.category, nest_id=plan.nest_id)
        .exclude(pk=plan.pk)
        .order_by("display_order", "name")
    )


@dataclass(frozen=True)
class PlanChangeTarget:
    plan: Plan
    # The target's active price for one billing cycle in the order's cycle and currency.
    price: Decimal
    # billing.models.PlanChangeDirection's value: by price against the current plan.
    direction: str


def plan_change_targets(
    *, plan: Plan, billing_cycle: str, currency: str
) -> tuple[Decimal | None, list[PlanChangeTarget]]:
    """The current plan's price (None when it has none in the cycle and currency) and the
    plans of its family with an active price there, each marked upgrade or downgrade; plans of
    the same price are left out (not a change proration prices). Two queries."""
    family = list(plan_family(plan=plan))
    prices = dict(
        PlanPrice.objects.filter(
            plan_id__in=[plan.pk, *(p.pk for p in family)],
            billing_cycle=billing_cycle,
            currency=currency,
        )
        .filter(Q(is_active=True) | Q(plan_id=plan.pk))
        .order_by()
        .values_list("plan_id", "amount")
    )
    current = prices.get(plan.pk)
    if current is None:
        return None, []
    targets = [
        PlanChangeTarget(
            plan=p,
            price=prices[p.pk],
            direction="upgrade" if prices[p.pk] > current else "downgrade",
        )
        for p in family
        if p.pk in prices and prices[p.pk] != current
    ]
    return current, targets


def plan_changes_for_deployment(*, deployment_id: int, limit: int = 20) -> list[PlanChange]:
    """The server's plan changes, newest first, with their plans and invoice (one query)."""
    return list(
        PlanChange.objects.filter(deployment_id=deployment_id)
        .select_related("from_plan", "to_plan", "invoice")
        .order_by("-id")[:limit]
    )
