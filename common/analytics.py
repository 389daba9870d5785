"""What the apps' analytics selectors share: the period, percentiles, rates.

Each app reads its own tables (provisioning/analytics.py, notifications/analytics.py,
servers/analytics.py, billing/analytics.py) with aggregate queries only: a constant number of
queries whatever the number of rows. Percentiles are PostgreSQL's `percentile_cont` (one ordered
aggregate per group); on SQLite (the demo) the one query returns the durations and Python
interpolates them the same way, which is fine at demo size.
"""

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Expression, F, FloatField, Func, QuerySet

from common.dates import billing_tz

PERCENTILES = (0.5, 0.95)


@dataclass(frozen=True)
class Period:
    """Whole days in the billing time zone, `first_day` .. `last_day` inclusive."""

    first_day: dt.date
    last_day: dt.date

    @property
    def start(self) -> dt.datetime:
        """Midnight of the first day (aware, billing time zone)."""
        return dt.datetime.combine(self.first_day, dt.time.min, tzinfo=billing_tz())

    @property
    def end(self) -> dt.datetime:
        """Midnight after the last day: the period is [start, end)."""
        return dt.datetime.combine(
            self.last_day + dt.timedelta(days=1), dt.time.min, tzinfo=billing_tz()
        )

    @property
    def days(self) -> list[dt.date]:
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + dt.timedelta(days=n) for n in range(count)]

    @classmethod
    def last_days(cls, days: int, *, today: dt.date) -> "Period":
        return cls(first_day=today - dt.timedelta(days=days - 1), last_day=today)


def rate(part: int, whole: int) -> float | None:
    """part / whole, or None when there is nothing to measure (shown as "-", never 0 %)."""
    return None if whole == 0 else part / whole


class Percentile(Aggregate):
    """PostgreSQL `percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)`."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("fraction must be within 0..1")
        # A float literal in the SQL (not a parameter): percentile_cont wants a constant.
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


class EpochSeconds(Func):
    """Seconds of an interval (PostgreSQL `EXTRACT(EPOCH FROM interval)`)."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)"
    output_field = FloatField()


def interpolated_percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """percentile_cont's definition (linear interpolation between the closest ranks)."""
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def duration_percentiles(
    queryset: QuerySet[Any],
    *,
    start_field: str,
    end_field: str | Expression,
    group_field: str | None = None,
    fractions: Sequence[float] = PERCENTILES,
) -> dict[Hashable, tuple[float | None, ...]]:
    """Percentiles of (end - start) in seconds per value of `group_field` (key None without
    one): ONE query on either backend. `end_field` may be an expression (e.g. a Coalesce)."""
    end = F(end_field) if isinstance(end_field, str) else end_field
    queryset = queryset.order_by()
    if connection.vendor == "postgresql":
        seconds = EpochSeconds(end - F(start_field))
        aggregates = {f"p{n}": Percentile(seconds, f) for n, f in enumerate(fractions)}
        if group_field is None:
            row = queryset.aggregate(**aggregates)
            return {None: tuple(row[f"p{n}"] for n in range(len(fractions)))}
        return {
            row[group_field]: tuple(row[f"p{n}"] for n in range(len(fractions)))
            for row in queryset.values(group_field).annotate(**aggregates)
        }
    # Portable fallback (SQLite): the durations in one query, interpolated here.
    values: dict[Hashable, list[float]] = defaultdict(list)
    rows = queryset.annotate(analytics_end=end).values_list(
        group_field or start_field, start_field, "analytics_end"
    )
    for group, started, ended in rows:
        if started is None or ended is None:
            continue
        values[group if group_field else None].append((ended - started).total_seconds())
    result: dict[Hashable, tuple[float | None, ...]] = {}
    for group, seconds_list in values.items():
        seconds_list.sort()
        result[group] = tuple(interpolated_percentile(seconds_list, f) for f in fractions)
    if group_field is None:
        result.setdefault(None, tuple(None for _ in fractions))
    return result
