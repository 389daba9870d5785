"""Proration of a plan change by the days left in the paid period (pure: no database).

The rule, in one place:

- The paid period is [period_start, period_end): period_end is the server's next due date (the
  first day that is not paid), period_start one billing cycle before it (anniversaries clamp to
  month end, as renewals do: common.dates.add_months).
- The change takes effect today, and today counts as a day of the NEW plan:
  days_left = (period_end - today).days. On the first day of the period every day is left; on
  the due date itself none is (days_left 0, amount 0).
- amount = quantize(|to_price - from_price| * days_left / days_in_period) in the currency's
  minor units, half up (common.money.quantize, the portal's one rounding rule). The prices are
  both plans' prices for one billing cycle in the order's currency.
- An upgrade (the new plan costs more) is charged the amount; a downgrade is credited it.
  Plans of equal price are not a change this module prices (refused).
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from common.dates import add_months
from common.money import quantize


class Direction(StrEnum):
    # The values of billing.models.PlanChangeDirection.
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"


@dataclass(frozen=True)
class Proration:
    period_start: dt.date
    period_end: dt.date
    today: dt.date
    days_in_period: int
    days_left: int
    from_price: Decimal
    to_price: Decimal
    currency: str
    # Always >= 0: charged for an upgrade, credited for a downgrade.
    amount: Decimal
    direction: Direction

    @property
    def is_charge(self) -> bool:
        return self.direction == Direction.UPGRADE

    @property
    def is_credit(self) -> bool:
        return self.direction == Direction.DOWNGRADE


def paid_period(*, period_end: dt.date, months: int, anchor_day: int | None = None) -> dt.date:
    """The first day of the period that ends on `period_end` (the next due date), one cycle of
    `months` before it; `anchor_day` is the day the server's periods start on (e.g. 31)."""
    if months < 1:
        raise ValueError("A billing cycle is at least one month.")
    return add_months(period_end, -months, anchor_day=anchor_day or period_end.day)


def direction_of(*, from_price: Decimal, to_price: Decimal) -> Direction:
    if to_price == from_price:
        raise ValueError("Plans of equal price: not an upgrade nor a downgrade.")
    return Direction.UPGRADE if to_price > from_price else Direction.DOWNGRADE


def prorate(
    *,
    period_start: dt.date,
    period_end: dt.date,
    today: dt.date,
    from_price: Decimal,
    to_price: Decimal,
    currency: str,
) -> Proration:
    """The difference between two plans' prices for the days left of the paid period.

    Raises ValueError for an empty period, a day outside [period_start, period_end], a
    negative price or equal prices."""
    if period_end <= period_start:
        raise ValueError(f"Empty period {period_start} to {period_end}.")
    if not period_start <= today <= period_end:
        raise ValueError(f"{today} is outside the paid period {period_start} to {period_end}.")
    if isinstance(from_price, float) or isinstance(to_price, float):
        raise TypeError("Money is never a float; pass Decimal, int or str.")
    from_price, to_price = Decimal(from_price), Decimal(to_price)
    if from_price < 0 or to_price < 0:
        raise ValueError("Prices are never negative.")
    direction = direction_of(from_price=from_price, to_price=to_price)
    days_in_period = (period_end - period_start).days
    days_left = (period_end - today).days
    amount = quantize(abs(to_price - from_price) * days_left / days_in_period, currency)
    return Proration(
        period_start=period_start,
        period_end=period_end,
        today=today,
        days_in_period=days_in_period,
        days_left=days_left,
        from_price=from_price,
        to_price=to_price,
        currency=currency.upper(),
        amount=amount,
        direction=direction,
    )
