"""Keeping servers renewed: renewal invoices, reminders, suspension and termination when unpaid.

Jobs work on sets and are safe to run twice or concurrently (two beats): an invoice is unique
per (deployment, period), each message has its own event key, and the panel operations check
the server's state under a row lock before acting.
"""

import datetime as dt
import logging

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from billing.models import (
    AddonPrice,
    BillingCycle,
    Invoice,
    InvoiceKind,
    InvoiceLineKind,
    InvoiceStatus,
    Order,
    Plan,
    PlanPrice,
)
from billing.notify import notify_invoice_due
from billing.services.invoices import PricedLine, invoice_cancel, invoice_create
from common.actors import Actor
from common.dates import add_months, billing_today
from common.errors import ApplicationError
from servers.models import Deployment, DeploymentStatus
from servers.services import deployment_set_next_due_date

logger = logging.getLogger(__name__)

LIVE = (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED)
NONPAYMENT = "nonpayment"


def _renewal_lines(order: Order, deployment: Deployment) -> list[PricedLine]:
    """Today's catalog prices for the server's current plan (after any plan change), cycle and
    add-ons (no setup fee, no coupon: those apply to the first invoice only)."""
    cycle_label = BillingCycle(order.billing_cycle).label
    plan = Plan.objects.filter(slug=deployment.plan_slug).first() or order.plan
    price = PlanPrice.objects.filter(
        plan=plan, billing_cycle=order.billing_cycle, currency=order.currency
    ).first()
    if price is None:
        raise ApplicationError(
            f"{plan.name} has no {order.billing_cycle} price in {order.currency}; "
            "cannot issue its renewal invoice."
        )
    lines = [PricedLine(InvoiceLineKind.PLAN, f"{plan.name} renewal ({cycle_label})", price.amount)]
    for item in order.order_addons.select_related("addon"):
        addon_price = AddonPrice.objects.filter(
            addon=item.addon, billing_cycle=order.billing_cycle, currency=order.currency
        ).first()
        amount = addon_price.amount if addon_price else item.amount
        lines.append(PricedLine(InvoiceLineKind.ADDON, f"{item.name} ({cycle_label})", amount))
    return lines


def renewal_invoices_issue(*, today: dt.date | None = None) -> int:
    """Issue the next period's invoice for every live server due within
    BILLING_RENEWAL_INVOICE_DAYS. Returns how many were issued."""
    today = today or billing_today()
    horizon = today + dt.timedelta(days=settings.BILLING_RENEWAL_INVOICE_DAYS)
    already = Invoice.objects.filter(
        deployment=OuterRef("pk"), kind=InvoiceKind.RENEWAL, period_start=OuterRef("next_due_date")
    )
    due = (
        Deployment.objects.filter(status__in=LIVE, next_due_date__lte=horizon)
        .annotate(invoiced=Exists(already))
        .filter(invoiced=False)
        .values_list("pk", flat=True)
    )
    issued = 0
    for deployment_id in list(due):
        try:
            with transaction.atomic():
                renewal_invoice_create(deployment_id=deployment_id)
            issued += 1
        except IntegrityError:
            continue  # issued meanwhile by a concurrent run
        except ApplicationError as exc:
            logger.error("renewal of deployment %s not invoiced: %s", deployment_id, exc.message)
    return issued


def renewal_invoice_create(*, deployment_id: int) -> Invoice:
    deployment = Deployment.objects.select_for_update().get(pk=deployment_id)
    order = Order.objects.select_related("plan").get(deployment=deployment)
    months = BillingCycle(order.billing_cycle).months
    start = deployment.next_due_date
    # Anniversaries keep the first period's day (Jan 31 -> Feb 28 -> Mar 31, no drift).
    anchor_day = billing_today(order.confirmed_at).day if order.confirmed_at else start.day
    # Issued late (e.g. its price was missing): the customer still gets the reminder period.
    due_date = max(start, billing_today() + dt.timedelta(days=settings.BILLING_REMINDER_DAYS))
    invoice = invoice_create(
        customer=deployment.customer,
        currency=order.currency,
        lines=_renewal_lines(order, deployment),
        kind=InvoiceKind.RENEWAL,
        order=order,
        deployment=deployment,
        actor=Actor.system("renewals"),
        due_date=due_date,
        period_start=start,
        period_end=add_months(start, months, anchor_day=anchor_day),
    )
    notify_invoice_due(invoice, event="invoice_created")
    return invoice


def renewal_paid(*, invoice: Invoice, actor: Actor) -> bool:
    """A renewal invoice was paid (inside the payment's transaction): extend the server's
    paid-through date. Returns True when the server is suspended and should be unsuspended."""
    deployment = Deployment.objects.select_for_update().get(pk=invoice.deployment_id)
    if deployment.next_due_date is None or deployment.next_due_date < invoice.period_end:
        deployment_set_next_due_date(
            deployment_id=deployment.pk,
            next_due_date=invoice.period_end,
            actor=actor,
            reason=f"Invoice {invoice.number} paid for {invoice.period_start} to "
            f"{invoice.period_end}",
        )
    return (
        deployment.status == DeploymentStatus.SUSPENDED
        and deployment.suspension_cause == NONPAYMENT
        and not _has_overdue_renewal(deployment.pk)
    )


def _unpaid_renewals():
    return Invoice.objects.filter(
        kind=InvoiceKind.RENEWAL, status=InvoiceStatus.UNPAID, deployment__status__in=LIVE
    ).select_related("deployment", "customer")


def dunning_run(*, today: dt.date | None = None) -> dict[str, list[int]]:
    """Reminders, overdue notices, and the lists of servers to suspend or terminate.

    Returns deployment ids to suspend and to terminate; the caller queues one panel task each
    (a task per panel call, so the rate budget and retries apply per server).
    """
    today = today or billing_today()
    grace = dt.timedelta(days=settings.SUSPENSION_GRACE_DAYS)
    reminder_day = today + dt.timedelta(days=settings.BILLING_REMINDER_DAYS)
    for invoice in _unpaid_renewals().filter(due_date__lte=reminder_day, due_date__gte=today):
        with transaction.atomic():
            notify_invoice_due(invoice, event="invoice_reminder")
    to_suspend: list[int] = []
    for invoice in _unpaid_renewals().filter(due_date__lt=today):
        with transaction.atomic():
            notify_invoice_due(
                invoice, event="invoice_overdue", suspension_date=invoice.due_date + grace
            )
        if invoice.due_date + grace <= today and (
            invoice.deployment.status == DeploymentStatus.ACTIVE
        ):
            to_suspend.append(invoice.deployment_id)
    cutoff = timezone.now() - dt.timedelta(days=settings.TERMINATION_GRACE_DAYS)
    unpaid_suspended = Deployment.objects.filter(
        status=DeploymentStatus.SUSPENDED, suspension_cause=NONPAYMENT
    )
    to_terminate = [
        d.pk
        for d in unpaid_suspended.filter(suspended_at__lte=cutoff)
        if _has_overdue_renewal(d.pk, today=today)
    ]
    # Paid, but still suspended (e.g. the panel was down when the payment came): every run
    # retries until the panel takes the unsuspension.
    to_unsuspend = [d.pk for d in unpaid_suspended if not _has_overdue_renewal(d.pk, today=today)]
    return {
        "suspend": sorted(set(to_suspend)),
        "terminate": to_terminate,
        "unsuspend": to_unsuspend,
    }


def renewal_invoices_cancel_for(*, deployment_id: int, reason: str) -> None:
    """After termination: unpaid renewal invoices of the server are void."""
    for invoice in Invoice.objects.filter(
        deployment_id=deployment_id, kind=InvoiceKind.RENEWAL, status=InvoiceStatus.UNPAID
    ):
        invoice_cancel(invoice_id=invoice.pk, actor=Actor.system("renewals"), reason=reason)


def _has_overdue_renewal(deployment_id: int, *, today: dt.date | None = None) -> bool:
    """An unpaid renewal invoice past its due date plus the suspension grace."""
    grace = dt.timedelta(days=settings.SUSPENSION_GRACE_DAYS)
    return Invoice.objects.filter(
        deployment_id=deployment_id,
        kind=InvoiceKind.RENEWAL,
        status=InvoiceStatus.UNPAID,
        due_date__lte=(today or billing_today()) - grace,
    ).exists()


def _already(exc: ApplicationError) -> bool:
    """A concurrent run (two beats) got there first."""
    return getattr(exc, "code", "") in ("invalid_state", "invalid_transition")


def unpaid_server_suspend(*, deployment_id: int) -> str:
    """Suspend on the panel if still unpaid past the grace period (checked again here)."""
    from provisioning.operations import deployment_suspend, deployment_unsuspend

    if not _has_overdue_renewal(deployment_id):
        return "paid meanwhile"
    try:
        deployment_suspend(
            deployment_id=deployment_id,
            actor=Actor.system("dunning"),
            reason="Renewal invoice unpaid past the grace period",
            cause=NONPAYMENT,
        )
    except ApplicationError as exc:
        if _already(exc):
            return "not active"
        raise
    if not _has_overdue_renewal(deployment_id):
        # Paid while the panel call ran (the payment saw the server still active).
        deployment_unsuspend(
            deployment_id=deployment_id,
            actor=Actor.system("dunning"),
            reason="Renewal paid during the suspension",
        )
        return "paid during suspension"
    return "suspended"


def unpaid_server_terminate(*, deployment_id: int) -> str:
    """Terminate a server suspended for non-payment that is still overdue past the grace."""
    from provisioning.operations import deployment_terminate

    deployment = Deployment.objects.get(pk=deployment_id)
    cutoff = timezone.now() - dt.timedelta(days=settings.TERMINATION_GRACE_DAYS)
    if not (
        deployment.status == DeploymentStatus.SUSPENDED
        and deployment.suspension_cause == NONPAYMENT
        and deployment.suspended_at
        and deployment.suspended_at <= cutoff
        and _has_overdue_renewal(deployment_id)
    ):
        return "not due"
    try:
        # Its unpaid renewal invoices are voided by billing's termination listener.
        deployment_terminate(
            deployment_id=deployment_id,
            actor=Actor.system("dunning"),
            reason="Suspended and unpaid past the termination grace period",
        )
    except ApplicationError as exc:
        if _already(exc):
            return "already terminated"
        raise
    return "terminated"


def paid_server_unsuspend(*, deployment_id: int) -> str:
    """Lift a non-payment suspension once nothing is overdue (never a staff suspension)."""
    from provisioning.operations import deployment_unsuspend

    deployment = Deployment.objects.get(pk=deployment_id)
    if deployment.status != DeploymentStatus.SUSPENDED:
        return "not suspended"
    if deployment.suspension_cause != NONPAYMENT:
        return "suspended by staff"
    if _has_overdue_renewal(deployment_id):
        return "still owes an overdue invoice"
    try:
        deployment_unsuspend(
            deployment_id=deployment_id, actor=Actor.system("renewals"), reason="Renewal paid"
        )
    except ApplicationError as exc:
        if _already(exc):
            return "not suspended"
        raise
    return "unsuspended"


def dunning_panel_problem(*, deployment_id: int, operation: str, error: str) -> None:
    """Tell staff once that a renewal job cannot act on a server on the panel."""
    from django.urls import reverse

    from notifications.services import notification_send

    deployment = Deployment.objects.select_related("customer").get(pk=deployment_id)
    order = Order.objects.filter(deployment=deployment).first()
    with transaction.atomic():
        notification_send(
            event="provisioning_failed_staff",
            staff=True,
            context={
                "order_id": order.pk if order else "-",
                "step": f"renewals: {operation}",
                "error": error,
                "retry_url": settings.PORTAL_BASE_URL.rstrip("/")
                + reverse("admin:servers_deployment_change", args=[deployment_id]),
                "customer_email": deployment.customer.email,
                "deployment_id": deployment_id,
                "server_name": deployment.name,
            },
            event_key=f"dunning:{operation}:deployment-{deployment_id}",
        )
    logger.error("renewals: cannot %s deployment %s: %s", operation, deployment_id, error)
