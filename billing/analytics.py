"""Money figures for the admin's analytics page: aggregate queries only (4 queries).

Every amount is per currency (common.money.Money): amounts in two currencies are never added.
- revenue: succeeded payments recorded in the period (a refunded payment is not revenue);
- MRR: what the active servers renew at (the catalog's price of their plan, cycle and currency,
  plus their add-ons at the catalog's price, else the price they were sold at, as the renewal
  job bills them), divided by the cycle's months;
- renewals paid on time: renewal invoices due in the period (cancelled ones are not due any
  more) paid on or before their due date (dates in the billing time zone).
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, DecimalField, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate

from billing.models import (
    AddonPrice,
    BillingCycle,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    Order,
    OrderAddon,
    Payment,
    PaymentStatus,
    PlanPrice,
)
from common.analytics import Period, rate
from common.dates import billing_tz
from common.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS, Money
from servers.models import DeploymentStatus

MONEY_FIELD: DecimalField = DecimalField(
    max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES
)
ZERO = Value(Decimal("0"), output_field=MONEY_FIELD)


@dataclass(frozen=True)
class CurrencyRevenue:
    revenue: Money
    payments: int


@dataclass(frozen=True)
class RevenueOnDay:
    day: dt.date
    amount: Decimal


@dataclass(frozen=True)
class CurrencyMrr:
    mrr: Money
    servers: int


@dataclass(frozen=True)
class RenewalPunctuality:
    due: int
    paid_on_time: int
    paid_late: int

    @property
    def unpaid(self) -> int:
        return self.due - self.paid_on_time - self.paid_late

    @property
    def on_time_rate(self) -> float | None:
        return rate(self.paid_on_time, self.due)


@dataclass(frozen=True)
class BillingAnalytics:
    revenue: list[CurrencyRevenue]
    # Per currency, one entry per day of the period (0 on days without payments).
    revenue_per_day: dict[str, list[RevenueOnDay]]
    mrr: list[CurrencyMrr]
    renewals: RenewalPunctuality


def _revenue(period: Period) -> tuple[list[CurrencyRevenue], dict[str, list[RevenueOnDay]]]:
    payments = Payment.objects.filter(
        status=PaymentStatus.SUCCEEDED, created_at__gte=period.start, created_at__lt=period.end
    ).order_by()
    daily = (
        payments.annotate(day=TruncDate("created_at", tzinfo=billing_tz()))
        .values("currency", "day")
        .annotate(amount=Sum("amount"), n=Count("id"))
        .order_by("currency", "day")
    )
    amounts: dict[str, dict[dt.date, Decimal]] = defaultdict(dict)
    counts: dict[str, int] = defaultdict(int)
    # The period totals are the sums of its days: one query for both.
    for row in daily:
        amounts[row["currency"]][row["day"]] = row["amount"]
        counts[row["currency"]] += row["n"]
    revenue = [
        CurrencyRevenue(
            revenue=Money(sum(days.values(), Decimal(0)), currency), payments=counts[currency]
        )
        for currency, days in sorted(amounts.items())
    ]
    per_day = {
        currency: [RevenueOnDay(day=day, amount=days.get(day, Decimal(0))) for day in period.days]
        for currency, days in sorted(amounts.items())
    }
    return revenue, per_day


def _mrr() -> list[CurrencyMrr]:
    plan_price = PlanPrice.objects.filter(
        plan__slug=OuterRef("deployment__plan_slug"),
        billing_cycle=OuterRef("billing_cycle"),
        currency=OuterRef("currency"),
    ).values("amount")[:1]
    addon_price = AddonPrice.objects.filter(
        addon_id=OuterRef("addon_id"),
        billing_cycle=OuterRef("order__billing_cycle"),
        currency=OuterRef("order__currency"),
    ).values("amount")[:1]
    addons_total = (
        OrderAddon.objects.filter(order_id=OuterRef("pk"))
        .order_by()
        .values("order_id")
        .annotate(total=Sum(Coalesce(Subquery(addon_price), F("amount"))))
        .values("total")
    )
    rows = (
        Order.objects.filter(deployment__status=DeploymentStatus.ACTIVE)
        .order_by()
        .annotate(
            recurring=Coalesce(Subquery(plan_price), ZERO) + Coalesce(Subquery(addons_total), ZERO)
        )
        .values("currency", "billing_cycle")
        .annotate(total=Sum("recurring", output_field=MONEY_FIELD), servers=Count("id"))
    )
    totals: dict[str, Decimal] = defaultdict(Decimal)
    servers: dict[str, int] = defaultdict(int)
    for row in rows:
        months = BillingCycle(row["billing_cycle"]).months
        totals[row["currency"]] += (row["total"] or Decimal(0)) / months
        servers[row["currency"]] += row["servers"]
    return [
        CurrencyMrr(mrr=Money(total, currency), servers=servers[currency])
        for currency, total in sorted(totals.items())
    ]


def _renewals(period: Period) -> RenewalPunctuality:
    paid_day = TruncDate("paid_at", tzinfo=billing_tz())
    paid = Q(paid_at__isnull=False, status__in=[InvoiceStatus.PAID, InvoiceStatus.REFUNDED])
    totals = (
        Invoice.objects.filter(
            kind=InvoiceKind.RENEWAL,
            due_date__gte=period.first_day,
            due_date__lte=period.last_day,
        )
        .exclude(status=InvoiceStatus.CANCELLED)
        .order_by()
        .alias(paid_day=paid_day)
        .aggregate(
            due=Count("id"),
            on_time=Count("id", filter=paid & Q(paid_day__lte=F("due_date"))),
            late=Count("id", filter=paid & Q(paid_day__gt=F("due_date"))),
        )
    )
    return RenewalPunctuality(
        due=totals["due"], paid_on_time=totals["on_time"], paid_late=totals["late"]
    )


def billing_analytics(*, period: Period) -> BillingAnalytics:
    revenue, per_day = _revenue(period)
    return BillingAnalytics(
        revenue=revenue, revenue_per_day=per_day, mrr=_mrr(), renewals=_renewals(period)
    )
