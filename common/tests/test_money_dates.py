import datetime as dt
from decimal import Decimal

import pytest

from common.dates import add_months, billing_today
from common.money import Money, from_minor_units, quantize, to_minor_units


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("1.005", "USD", Decimal("1.01")),
        ("1.004", "USD", Decimal("1.00")),
        ("15000.505", "IDR", Decimal("15000.51")),
        ("1500.5", "JPY", Decimal("1501")),
        ("1.0005", "KWD", Decimal("1.001")),
    ],
)
def test_quantize_rounds_half_up_to_the_currency_unit(amount, currency, expected):
    assert quantize(amount, currency) == expected


def test_float_is_refused():
    with pytest.raises(TypeError):
        quantize(1.1, "USD")


def test_minor_units_round_trip():
    assert to_minor_units(Decimal("5.50"), "USD") == 550
    assert to_minor_units(Decimal("50000"), "IDR") == 5_000_000  # Stripe: IDR has 2 decimals
    assert to_minor_units(Decimal("1500"), "JPY") == 1500
    assert from_minor_units(550, "usd") == Decimal("5.50")


def test_money_refuses_mixed_currencies():
    assert Money(Decimal("1.10"), "usd") + Money(Decimal("2"), "USD") == Money(
        Decimal("3.10"), "USD"
    )
    with pytest.raises(ValueError, match="Cannot combine"):
        Money(Decimal("1"), "USD") + Money(Decimal("1"), "EUR")


@pytest.mark.parametrize(
    ("start", "months", "anchor", "expected"),
    [
        (dt.date(2027, 1, 31), 1, None, dt.date(2027, 2, 28)),
        (dt.date(2028, 1, 31), 1, None, dt.date(2028, 2, 29)),
        (dt.date(2027, 2, 28), 1, 31, dt.date(2027, 3, 31)),
        (dt.date(2027, 11, 30), 3, None, dt.date(2028, 2, 29)),
        (dt.date(2027, 8, 31), 6, None, dt.date(2028, 2, 29)),
        (dt.date(2027, 5, 15), 12, None, dt.date(2028, 5, 15)),
    ],
)
def test_add_months_clamps_to_month_end(start, months, anchor, expected):
    assert add_months(start, months, anchor_day=anchor) == expected


def test_billing_today_uses_billing_time_zone(settings):
    settings.BILLING_TIME_ZONE = "Asia/Jakarta"
    late_utc = dt.datetime(2027, 3, 1, 18, 30, tzinfo=dt.UTC)
    assert billing_today(late_utc) == dt.date(2027, 3, 2)
    settings.BILLING_TIME_ZONE = "UTC"
    assert billing_today(late_utc) == dt.date(2027, 3, 1)
