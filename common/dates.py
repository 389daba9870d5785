"""Billing dates: calendar dates in the billing time zone; anniversaries clamp to month end."""

import calendar
import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone


def billing_tz() -> ZoneInfo:
    return ZoneInfo(settings.BILLING_TIME_ZONE)


def billing_today(now: dt.datetime | None = None) -> dt.date:
    """Today's date where the hosting company bills (e.g. Asia/Jakarta), not in UTC."""
    return (now or timezone.now()).astimezone(billing_tz()).date()


def add_months(start: dt.date, months: int, *, anchor_day: int | None = None) -> dt.date:
    """`start` plus whole months, keeping the anchor day where the month has it.

    Jan 31 + 1 -> Feb 28/29; with anchor_day=31, Feb 29 + 1 -> Mar 31 (no drift).
    """
    day = anchor_day or start.day
    month_index = start.month - 1 + months
    year = start.year + month_index // 12
    month = month_index % 12 + 1
    last_day = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(day, last_day))
