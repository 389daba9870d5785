"""Proration arithmetic: month ends, leap years, both directions, exact Decimals."""

import datetime as dt
from decimal import Decimal

import pytest

from billing.proration import Direction, paid_period, prorate
from common.dates import add_months

D = dt.date


def test_jan_31_plus_one_month_is_feb_28_and_29_in_a_leap_year():
    assert add_months(D(2027, 1, 31), 1) == D(2027, 2, 28)
    assert add_months(D(2028, 1, 31), 1) == D(2028, 2, 29)


def test_period_before_a_due_date_keeps_the_anchor_day():
    # Due Mar 31 for a server whose periods start on the 31st: the period began Feb 28.
    assert paid_period(period_end=D(2027, 3, 31), months=1, anchor_day=31) == D(2027, 2, 28)
    assert paid_period(period_end=D(2028, 3, 31), months=1, anchor_day=31) == D(2028, 2, 29)
    # Due Feb 28 (anchor 31): the period began Jan 31.
    assert paid_period(period_end=D(2027, 2, 28), months=1, anchor_day=31) == D(2027, 1, 31)
    # Annual across the leap day.
    assert paid_period(period_end=D(2029, 2, 28), months=12, anchor_day=29) == D(2028, 2, 29)
    with pytest.raises(ValueError, match="at least one month"):
        paid_period(period_end=D(2027, 3, 31), months=0)


def test_upgrade_in_february_of_a_common_year():
    # Jan 31 -> Feb 28 2027: 28 days; on Feb 14, 14 days are left.
    p = prorate(
        period_start=D(2027, 1, 31),
        period_end=D(2027, 2, 28),
        today=D(2027, 2, 14),
        from_price=Decimal("4.00"),
        to_price=Decimal("8.00"),
        currency="USD",
    )
    assert (p.days_in_period, p.days_left) == (28, 14)
    assert p.amount == Decimal("2.00")
    assert p.direction == Direction.UPGRADE
    assert p.is_charge
    assert not p.is_credit


def test_leap_february_has_29_days():
    # Jan 31 -> Feb 29 2028: 29 days; on Feb 28, 1 day is left: 11.00 / 29 = 0.3793... -> 0.38
    p = prorate(
        period_start=D(2028, 1, 31),
        period_end=D(2028, 2, 29),
        today=D(2028, 2, 28),
        from_price=Decimal("4.00"),
        to_price=Decimal("15.00"),
        currency="USD",
    )
    assert (p.days_in_period, p.days_left) == (29, 1)
    assert p.amount == Decimal("0.38")


def test_period_starting_on_the_leap_day():
    # Feb 29 2028 -> Mar 31 2028 (anchor 31): 31 days; on Mar 1, 30 left.
    p = prorate(
        period_start=D(2028, 2, 29),
        period_end=D(2028, 3, 31),
        today=D(2028, 3, 1),
        from_price=Decimal("8.00"),
        to_price=Decimal("4.00"),
        currency="USD",
    )
    assert (p.days_in_period, p.days_left) == (31, 30)
    # 4.00 * 30 / 31 = 3.870967... -> 3.87, credited
    assert p.amount == Decimal("3.87")
    assert p.direction == Direction.DOWNGRADE
    assert p.is_credit


def test_annual_cycle_across_a_leap_day_has_366_days():
    p = prorate(
        period_start=D(2027, 6, 1),
        period_end=D(2028, 6, 1),
        today=D(2028, 3, 1),
        from_price=Decimal("40.80"),
        to_price=Decimal("81.60"),
        currency="USD",
    )
    assert (p.days_in_period, p.days_left) == (366, 92)
    # 40.80 * 92 / 366 = 10.2557... -> 10.26
    assert p.amount == Decimal("10.26")


def test_first_day_of_the_period_is_the_whole_difference():
    p = prorate(
        period_start=D(2027, 3, 10),
        period_end=D(2027, 4, 10),
        today=D(2027, 3, 10),
        from_price=Decimal("4.00"),
        to_price=Decimal("8.00"),
        currency="USD",
    )
    assert (p.days_in_period, p.days_left) == (31, 31)
    assert p.amount == Decimal("4.00")


def test_last_day_of_the_period_is_one_day():
    p = prorate(
        period_start=D(2027, 3, 10),
        period_end=D(2027, 4, 10),
        today=D(2027, 4, 9),
        from_price=Decimal("4.00"),
        to_price=Decimal("8.00"),
        currency="USD",
    )
    assert p.days_left == 1
    # 4.00 / 31 = 0.129 -> 0.13
    assert p.amount == Decimal("0.13")


def test_zero_days_left_on_the_due_date():
    p = prorate(
        period_start=D(2027, 3, 10),
        period_end=D(2027, 4, 10),
        today=D(2027, 4, 10),
        from_price=Decimal("8.00"),
        to_price=Decimal("4.00"),
        currency="USD",
    )
    assert p.days_left == 0
    assert p.amount == Decimal("0.00")
    assert p.direction == Direction.DOWNGRADE


def test_half_up_rounding_and_idr():
    # 0.01 * 15 / 30 = 0.005 -> 0.01 (half up, never banker's rounding)
    p = prorate(
        period_start=D(2027, 4, 1),
        period_end=D(2027, 5, 1),
        today=D(2027, 4, 16),
        from_price=Decimal("1.00"),
        to_price=Decimal("1.01"),
        currency="USD",
    )
    assert p.amount == Decimal("0.01")
    p = prorate(
        period_start=D(2027, 4, 1),
        period_end=D(2027, 5, 1),
        today=D(2027, 4, 11),
        from_price=Decimal("50000"),
        to_price=Decimal("100000"),
        currency="idr",
    )
    # 50,000 * 20 / 30 = 33,333.333... -> 33333.33 (IDR has 2 decimals, as Stripe counts it)
    assert p.amount == Decimal("33333.33")
    assert p.currency == "IDR"


def test_both_directions_give_the_same_amount():
    kwargs = {
        "period_start": D(2027, 1, 31),
        "period_end": D(2027, 2, 28),
        "today": D(2027, 2, 1),
        "currency": "USD",
    }
    up = prorate(from_price=Decimal("4.00"), to_price=Decimal("15.00"), **kwargs)
    down = prorate(from_price=Decimal("15.00"), to_price=Decimal("4.00"), **kwargs)
    # 11.00 * 27 / 28 = 10.607... -> 10.61
    assert up.amount == down.amount == Decimal("10.61")
    assert (up.direction, down.direction) == (Direction.UPGRADE, Direction.DOWNGRADE)


@pytest.mark.parametrize(
    ("start", "end", "today", "from_price", "to_price", "why"),
    [
        (D(2027, 1, 1), D(2027, 2, 1), D(2027, 1, 15), "4.00", "4.00", "equal price"),
        (D(2027, 1, 1), D(2027, 2, 1), D(2026, 12, 31), "4.00", "8.00", "outside"),
        (D(2027, 1, 1), D(2027, 2, 1), D(2027, 2, 2), "4.00", "8.00", "outside"),
        (D(2027, 1, 1), D(2027, 1, 1), D(2027, 1, 1), "4.00", "8.00", "Empty period"),
        (D(2027, 1, 1), D(2027, 2, 1), D(2027, 1, 15), "-1.00", "8.00", "never negative"),
    ],
)
def test_refused(start, end, today, from_price, to_price, why):
    with pytest.raises(ValueError, match=why):
        prorate(
            period_start=start,
            period_end=end,
            today=today,
            from_price=Decimal(from_price),
            to_price=Decimal(to_price),
            currency="USD",
        )


def test_float_prices_are_refused():
    with pytest.raises(TypeError):
        prorate(
            period_start=D(2027, 1, 1),
            period_end=D(2027, 2, 1),
            today=D(2027, 1, 15),
            from_price=4.0,
            to_price=8.0,
            currency="USD",
        )
