"""Upgrade/downgrade quotes: the plans a live server may move to (its egg family), the
prorated amount of each for the days left in the paid period, and whether the node has room
(billing.services.plan_changes requests, pays and applies them)."""

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils.translation import gettext as _

from billing.catalog import plan_panel_spec
from billing.errors import BillingErrorCode
from billing.models import (
    BillingCycle,
    Cancellation,
    CancellationStatus,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    Order,
    Plan,
)
from billing.proration import Proration, paid_period, prorate
from billing.selectors import plan_change_targets
from common.dates import billing_today
from common.errors import ApplicationError
from provisioning.models import ProvisioningRun
from provisioning.saga.placement import node_load
from servers.models import Deployment, DeploymentStatus, Node

logger = logging.getLogger(__name__)

# PanelOperation.params["source"] of the operations this module's executor runs.


class PlanChangeNotAllowed(ApplicationError):
    default_code = BillingErrorCode.PLAN_CHANGE_NOT_ALLOWED
    http_status = 422


class PlanChangePending(ApplicationError):
    default_code = BillingErrorCode.PLAN_CHANGE_PENDING
    http_status = 409


class PlanDoesNotFitNode(ApplicationError):
    default_code = BillingErrorCode.PLAN_DOES_NOT_FIT_NODE
    http_status = 422


# ---------------------------------------------------------------------- quotes


@dataclass(frozen=True)
class PlanChangeQuote:
    deployment: Deployment
    order: Order
    from_plan: Plan
    to_plan: Plan
    # As of the day the change takes effect (today, or the due date of a scheduled downgrade).
    proration: Proration
    # The day the change is applied: today, or the next due date (a scheduled downgrade).
    apply_on: dt.date
    today: dt.date

    @property
    def direction(self) -> str:
        return str(self.proration.direction)

    @property
    def is_upgrade(self) -> bool:
        return self.proration.is_charge

    @property
    def amount(self) -> Decimal:
        """Charged (upgrade) or credited (downgrade) now."""
        return self.proration.amount

    @property
    def currency(self) -> str:
        return self.proration.currency

    @property
    def scheduled(self) -> bool:
        """Applied on a later day (a downgrade at the end of the period)."""
        return self.apply_on > self.today


Quote = PlanChangeQuote


@dataclass(frozen=True)
class _Server:
    deployment: Deployment
    order: Order
    plan: Plan
    current_price: Decimal | None
    period_start: dt.date
    period_end: dt.date


def _server_context(deployment: Deployment, *, today: dt.date) -> _Server:
    """The server's order, current plan and paid period, or why it cannot change plan now."""
    if deployment.status != DeploymentStatus.ACTIVE:
        status = {"name": deployment.name, "status": deployment.get_status_display().lower()}
        raise PlanChangeNotAllowed(
            _(
                "%(name)s is %(status)s; only an active server can change plan "
                "(pay its renewal first)."
            )
            % status
            if deployment.status == DeploymentStatus.SUSPENDED
            else _("%(name)s is %(status)s; only an active server can change plan.") % status
        )
    order = Order.objects.filter(deployment_id=deployment.pk).first()
    plan = Plan.objects.filter(slug=deployment.plan_slug).first()
    if order is None or plan is None or deployment.next_due_date is None:
        raise PlanChangeNotAllowed(
            _("%(name)s cannot change plan; contact support.") % {"name": deployment.name}
        )
    if Cancellation.objects.filter(
        deployment_id=deployment.pk, status=CancellationStatus.SCHEDULED
    ).exists():
        raise PlanChangeNotAllowed(
            _("%(name)s is scheduled to be cancelled; revoke the cancellation first.")
            % {"name": deployment.name}
        )
    unpaid = (
        Invoice.objects.filter(
            deployment_id=deployment.pk, kind=InvoiceKind.RENEWAL, status=InvoiceStatus.UNPAID
        )
        .order_by("period_start")
        .values_list("number", "period_start")
        .first()
    )
    if unpaid:
        number, starts = unpaid
        if starts is not None and starts > today:
            # Issued ahead for the next period at the current plan's price: an upgrade now
            # would leave that period billed at the old price. Paying it does not help before
            # the period starts (the next period is then paid ahead).
            raise PlanChangeNotAllowed(
                _(
                    "Renewal invoice %(number)s for %(name)s's next period (from %(date)s) is "
                    "already issued at the current plan's price, so the plan can be changed "
                    "from %(date)s, once that invoice is paid. Contact support if you need the "
                    "bigger plan sooner."
                )
                % {"number": number, "name": deployment.name, "date": starts.isoformat()}
            )
        raise PlanChangeNotAllowed(
            _(
                "Renewal invoice %(number)s of %(name)s is unpaid; pay it first, then change "
                "the plan."
            )
            % {"number": number, "name": deployment.name}
        )
    period_end = deployment.next_due_date
    # The periods' anchor day, as renewals take it: the day the server became active (its paid
    # period starts then), else of the payment.
    first_day = order.completed_at or order.confirmed_at
    anchor = billing_today(first_day).day if first_day else None
    months = BillingCycle(order.billing_cycle).months
    period_start = paid_period(period_end=period_end, months=months, anchor_day=anchor)
    if not period_start <= today < period_end:
        raise PlanChangeNotAllowed(
            _(
                "%(name)s's next period (from %(date)s) is already paid at the current plan's "
                "price; its plan can be changed from %(date)s. Contact support if you need the "
                "bigger plan sooner."
            )
            % {"name": deployment.name, "date": period_start.isoformat()}
            if today < period_start
            else _("%(name)s's paid period ended on %(date)s.")
            % {"name": deployment.name, "date": period_end.isoformat()}
        )
    current_price, _targets = plan_change_targets(
        plan=plan, billing_cycle=order.billing_cycle, currency=order.currency
    )
    return _Server(
        deployment=deployment,
        order=order,
        plan=plan,
        current_price=current_price,
        period_start=period_start,
        period_end=period_end,
    )


def _quote_for(server: _Server, *, to_plan: Plan, to_price: Decimal, today: dt.date) -> Quote:
    if server.current_price is None:
        raise PlanChangeNotAllowed(
            _(
                "%(plan)s has no %(cycle)s price in %(currency)s; contact support to change "
                "the plan."
            )
            % {
                "plan": server.plan.name,
                "cycle": server.order.billing_cycle,
                "currency": server.order.currency,
            }
        )
    at_period_end = to_price < server.current_price and settings.BILLING_DOWNGRADE_AT_PERIOD_END
    effective = server.period_end if at_period_end else today
    proration = prorate(
        period_start=server.period_start,
        period_end=server.period_end,
        today=effective,
        from_price=server.current_price,
        to_price=to_price,
        currency=server.order.currency,
    )
    return PlanChangeQuote(
        deployment=server.deployment,
        order=server.order,
        from_plan=server.plan,
        to_plan=to_plan,
        proration=proration,
        apply_on=effective,
        today=today,
    )


def plan_change_options(*, deployment: Deployment, today: dt.date | None = None) -> list[Quote]:
    """Every plan the server may move to now, each with its quote; raises PlanChangeNotAllowed
    when the server cannot change plan at all (not active, cancellation scheduled, ...)."""
    today = today or billing_today()
    server = _server_context(deployment, today=today)
    _current, targets = plan_change_targets(
        plan=server.plan, billing_cycle=server.order.billing_cycle, currency=server.order.currency
    )
    return [_quote_for(server, to_plan=t.plan, to_price=t.price, today=today) for t in targets]


def plan_change_quote(
    *, deployment: Deployment, to_plan_slug: str, today: dt.date | None = None
) -> Quote:
    """The quote of one target; PlanChangeNotAllowed when it is not an allowed target."""
    today = today or billing_today()
    server = _server_context(deployment, today=today)
    _current, targets = plan_change_targets(
        plan=server.plan, billing_cycle=server.order.billing_cycle, currency=server.order.currency
    )
    target = next((t for t in targets if t.plan.slug == to_plan_slug), None)
    if target is None:
        if to_plan_slug == server.plan.slug:
            raise PlanChangeNotAllowed.for_fields(
                {
                    "plan": _("%(name)s is already on %(plan)s.")
                    % {"name": deployment.name, "plan": server.plan.name}
                },
                code=BillingErrorCode.PLAN_CHANGE_NOT_ALLOWED,
            )
        raise PlanChangeNotAllowed.for_fields(
            {
                "plan": _("'%(slug)s' is not a plan %(name)s can change to.")
                % {"slug": to_plan_slug, "name": deployment.name}
            },
            code=BillingErrorCode.PLAN_CHANGE_NOT_ALLOWED,
        )
    return _quote_for(server, to_plan=target.plan, to_price=target.price, today=today)


# ---------------------------------------------------------------------- capacity


def _new_spec(quote: Quote) -> dict:
    addons = [item.addon for item in quote.order.order_addons.select_related("addon")]
    return plan_panel_spec(quote.to_plan, addons)


@dataclass(frozen=True)
class ExtraRoom:
    """What an upgrade needs on the server's node, checked and locked by _fit_check."""

    node: Node
    memory_mb: int
    disk_mb: int


def _fit_check(deployment: Deployment, spec: dict) -> ExtraRoom | None:
    """An upgrade's extra memory and disk must fit the server's node now: the panel does not
    enforce it. The node row is locked (as placement and checkout lock nodes), so the check
    and this transaction's writes (the upgrade's capacity hold) are not raced by a checkout of
    the last room. None: the upgrade needs no more memory or disk."""
    limits = deployment.spec.get("limits") or {}
    extra_memory = max(0, int(spec["limits"]["memory"]) - int(limits.get("memory") or 0))
    extra_disk = max(0, int(spec["limits"]["disk"]) - int(limits.get("disk") or 0))
    if not extra_memory and not extra_disk:
        return None
    node_id = deployment.node_id or (
        # The node its provisioning run placed it on (the deployment's own field may be unset).
        ProvisioningRun.objects.filter(deployment_id=deployment.pk, node_id__isnull=False)
        .order_by("-id")
        .values_list("node_id", flat=True)
        .first()
    )
    node = Node.objects.select_for_update().filter(pk=node_id).first() if node_id else None
    if node is None:
        raise PlanDoesNotFitNode(
            f"We cannot check the room for a bigger plan on {deployment.name}'s machine right "
            "now; contact support to upgrade."
        )
    load = node_load(node, exclude_deployment_id=deployment.pk, only_holds_ahead=False)
    if not load.fits(extra_memory, extra_disk):
        logger.info(
            "upgrade of deployment %s refused, node full: %s",
            deployment.pk,
            load.describe(extra_memory, extra_disk),
        )
        raise PlanDoesNotFitNode(
            f"The machine {deployment.name} runs on has no room for {extra_memory} MB more "
            f"memory and {extra_disk} MB more disk right now, so this upgrade cannot be done. "
            "Nothing was charged. Choose a smaller plan or contact support."
        )
    return ExtraRoom(node=node, memory_mb=extra_memory, disk_mb=extra_disk)
