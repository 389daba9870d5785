"""The admin's analytics page (admin/analytics/): provisioning, notifications, nodes and money
over a chosen period, as SVG charts and tables.

Thin: the form picks the period, each app's analytics selectors compute their figures with
aggregate queries (a constant number whatever the data size), and this module only formats
them. Staff with the second factor only (PortalAdminSite.admin_view, as every admin page).
"""

import datetime as dt
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.admin import charts
from billing.analytics import BillingAnalytics, billing_analytics
from common.analytics import Period
from common.dates import billing_today
from notifications.analytics import ChannelDeliveries, delivery_analytics
from provisioning.analytics import ProvisioningAnalytics, provisioning_analytics
from servers.analytics import Churn, NodeUtilisation, deployment_churn, node_utilisation

PRESET_DAYS = (7, 30, 90, 365)
DEFAULT_DAYS = 30
CUSTOM = "custom"
# A per-day chart of more than two years says nothing more; bounds the page's work too.
MAX_CUSTOM_DAYS = 731
EARLIEST_DAY = dt.date(2000, 1, 1)


class AnalyticsPeriodForm(forms.Form):
    period = forms.ChoiceField(
        label=gettext_lazy("Period"),
        choices=[
            ("7", gettext_lazy("Last 7 days")),
            ("30", gettext_lazy("Last 30 days")),
            ("90", gettext_lazy("Last 90 days")),
            ("365", gettext_lazy("Last 365 days")),
            (CUSTOM, gettext_lazy("From - to")),
        ],
        initial=str(DEFAULT_DAYS),
    )
    date_from = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, today: dt.date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("period") != CUSTOM:
            return data
        first, last = data.get("date_from"), data.get("date_to")
        if "date_from" in self.errors or "date_to" in self.errors:
            return data  # a date that is no date: its own field error says so
        if first is None:
            self.add_error("date_from", _("Give the first day of the period."))
        if last is None:
            self.add_error("date_to", _("Give the last day of the period."))
        if first is None or last is None:
            return data
        if first < EARLIEST_DAY:
            # Also keeps midnight of the day representable in UTC whatever the billing zone.
            self.add_error(
                "date_from",
                _("The first day cannot be before %(day)s.") % {"day": EARLIEST_DAY.isoformat()},
            )
        elif first > last:
            self.add_error("date_to", _("The last day cannot be before the first day."))
        elif last > self.today:
            self.add_error("date_to", _("The last day cannot be in the future."))
        elif (last - first).days + 1 > MAX_CUSTOM_DAYS:
            self.add_error(
                "date_from",
                _("A period is at most %(days)s days long.") % {"days": MAX_CUSTOM_DAYS},
            )
        return data

    def selected_period(self) -> Period:
        """The period of a valid form."""
        data = self.cleaned_data
        if data["period"] == CUSTOM:
            return Period(first_day=data["date_from"], last_day=data["date_to"])
        return Period.last_days(int(data["period"]), today=self.today)


# ---------------------------------------------------------------------- formatting


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return _("%(n)s s") % {"n": f"{seconds:.1f}"}
    if seconds < 3600:
        return _("%(n)s min") % {"n": f"{seconds / 60:.1f}"}
    if seconds < 86400:
        return _("%(n)s h") % {"n": f"{seconds / 3600:.1f}"}
    return _("%(n)s d") % {"n": f"{seconds / 86400:.1f}"}


def _day_label(day: dt.date, *, long_period: bool) -> str:
    return date_format(day, "M y" if long_period else "d M")


def _provisioning_charts(figures: ProvisioningAnalytics, period: Period) -> dict[str, Any]:
    long_period = len(period.days) > 120
    labels = [_day_label(d.day, long_period=long_period) for d in figures.per_day]
    return {
        "runs_per_day": charts.stacked_columns(
            title=_("Provisioning runs finished per day"),
            labels=labels,
            series=[
                charts.Series(
                    _("succeeded"), "chart-bar-good", [d.succeeded for d in figures.per_day]
                ),
                charts.Series(_("failed"), "chart-bar-bad", [d.failed for d in figures.per_day]),
            ],
        ),
        "failures_by_step": charts.horizontal_bars(
            title=_("Failed runs by step"),
            rows=[
                charts.BarRow(
                    label=step.step or _("(no step)"),
                    value=step.total,
                    text=str(step.total),
                    css="chart-bar-bad",
                )
                for step in figures.failures_by_step
            ],
        ),
    }


def _delivery_chart(channels: list[ChannelDeliveries]) -> charts.Chart:
    return charts.horizontal_bars(
        title=_("Delivery rate by channel"),
        rows=[
            charts.BarRow(
                label=row.label,
                value=row.delivery_rate or 0,
                text=_percent(row.delivery_rate),
                css="chart-bar-good",
            )
            for row in channels
        ],
        maximum=1,
    )


def _node_chart(nodes: list[NodeUtilisation]) -> charts.Chart:
    rows = []
    for node in nodes:
        for what, share, css in (
            (_("memory"), node.memory_share, "chart-bar-primary"),
            (_("disk"), node.disk_share, "chart-bar-secondary"),
        ):
            rows.append(
                charts.BarRow(
                    label=f"{node.name} {what}",
                    value=share or 0,
                    text=_percent(share),
                    css="chart-bar-bad" if share is not None and share > 1 else css,
                )
            )
    return charts.horizontal_bars(
        title=_("Node allocation (share of capacity incl. overallocation)"),
        rows=rows,
        maximum=max([1.0, *(r.value for r in rows)]),
    )


def _revenue_charts(figures: BillingAnalytics, period: Period) -> list[dict[str, Any]]:
    long_period = len(period.days) > 120
    result = []
    for currency, days in figures.revenue_per_day.items():
        labels = [_day_label(d.day, long_period=long_period) for d in days]
        result.append(
            {
                "currency": currency,
                "chart": charts.line(
                    title=_("Revenue per day (%(currency)s)") % {"currency": currency},
                    labels=labels,
                    values=[float(d.amount) for d in days],
                    css="chart-line-primary",
                    value_format="{:,.0f}",
                ),
                "days": [d for d in days if d.amount != Decimal(0)],
            }
        )
    return result


def analytics_view(request: HttpRequest) -> HttpResponse:
    today = billing_today()
    form = AnalyticsPeriodForm(
        request.GET if request.GET else {"period": str(DEFAULT_DAYS)}, today=today
    )
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": _("Analytics"),
        "form": form,
    }
    if form.is_valid():
        period = form.selected_period()
        provisioning = provisioning_analytics(period=period)
        deliveries = delivery_analytics(period=period)
        nodes = node_utilisation()
        churn: Churn = deployment_churn(period=period)
        money = billing_analytics(period=period)
        context.update(
            period=period,
            provisioning=provisioning,
            provisioning_rate=_percent(provisioning.success_rate),
            time_to_active=(
                _duration(provisioning.time_to_active_p50_s),
                _duration(provisioning.time_to_active_p95_s),
            ),
            deliveries=[
                {
                    "row": row,
                    "rate": _percent(row.delivery_rate),
                    "p50": _duration(row.latency_p50_s),
                    "p95": _duration(row.latency_p95_s),
                }
                for row in deliveries
            ],
            delivery_chart=_delivery_chart(deliveries),
            nodes=[
                {
                    "node": node,
                    "memory": _percent(node.memory_share),
                    "disk": _percent(node.disk_share),
                }
                for node in nodes
            ],
            node_chart=_node_chart(nodes) if nodes else None,
            churn=churn,
            churn_rate=_percent(churn.rate),
            money=money,
            renewals_rate=_percent(money.renewals.on_time_rate),
            revenue_charts=_revenue_charts(money, period),
            **_provisioning_charts(provisioning, period),
        )
    status = 200 if form.is_valid() else 400
    return TemplateResponse(request, "admin/analytics.html", context, status=status)


admin.site.register_page(
    "analytics/", analytics_view, name="analytics", title=gettext_lazy("Analytics")
)
