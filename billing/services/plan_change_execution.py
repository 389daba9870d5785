"""Applying a queued plan change on the panel: the drain's executor for PanelOperations of
source "plan_change" (registered in billing.apps), and what follows the panel's answer
(applied: the customer is told; failed after the retries or abandoned because the server went
away: staff are told, a paid upgrade's money goes to credit). The request, payment and
cancellation side is billing.services.plan_changes."""

import logging
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from billing.catalog import plan_panel_spec
from billing.models import CreditEntryKind, Invoice, InvoiceStatus, PlanChange, PlanChangeStatus
from billing.models.lifecycle import PLAN_CHANGE_OPEN, PLAN_CHANGE_STATES
from billing.services.credit import credit_add
from common.actors import Actor
from common.errors import ApplicationError
from notifications.services import notification_send
from provisioning.fleet.operations import OperationResult
from provisioning.models import PanelOperation
from provisioning.operations import deployment_change_build
from provisioning.pterodactyl import PanelError, PterodactylClient
from servers.capacity import capacity_hold_release, capacity_hold_upgrade_applied
from servers.models import Deployment, DeploymentStatus

logger = logging.getLogger(__name__)

PCS = PlanChangeStatus
# A change is applied only to a live server; otherwise it is abandoned.
LIVE_STATUSES = (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED)


def plan_change_execute(*, operation: PanelOperation, client: PterodactylClient) -> OperationResult:
    """Apply one change on the panel (the drain calls this; no transaction is open). Checks
    again that it is still wanted (open, paid, its server live; whether a scheduled one is due
    is the job's decision, made with its `today`); retryable panel errors are raised for the
    drain's backoff; a terminal error or the last attempt moves the change to failed and tells
    staff."""
    change = (
        PlanChange.objects.select_related("deployment", "order", "from_plan", "to_plan", "invoice")
        .filter(pk=operation.params.get("plan_change_id"))
        .first()
    )
    if change is None or change.status not in PLAN_CHANGE_OPEN:
        return OperationResult(outcome="plan change no longer open", skipped=True)
    if change.status == PCS.AWAITING_PAYMENT and (
        change.invoice is None or change.invoice.status != InvoiceStatus.PAID
    ):
        return OperationResult(outcome=f"plan change #{change.pk} is not paid", skipped=True)
    if change.deployment.status not in LIVE_STATUSES:
        _abandon(change, reason=f"the server is {change.deployment.get_status_display().lower()}")
        return OperationResult(outcome=f"plan change #{change.pk}: server gone", skipped=True)
    addons = [item.addon for item in change.order.order_addons.select_related("addon")]
    try:
        deployment_change_build(
            deployment_id=change.deployment_id,
            spec=plan_panel_spec(change.to_plan, addons),
            plan_slug=change.to_plan.slug,
            plan_name=change.to_plan.name,
            actor=Actor.system("plan-changes"),
            client=client,
        )
    except ApplicationError as exc:
        cause = exc.__cause__
        retryable = isinstance(cause, PanelError) and cause.retryable
        if retryable and operation.attempts < settings.PANEL_OPERATIONS_MAX_ATTEMPTS:
            _attempt_record(change, error=exc.message)
            raise
        _failed(change, error=exc.message)
        return OperationResult(
            outcome=f"plan change #{change.pk} failed: {exc.message}; staff told", failed=True
        )
    _applied(change)
    return OperationResult(outcome=f"plan change #{change.pk} applied", verified=True)


def _attempt_record(change: PlanChange, *, error: str) -> None:
    with transaction.atomic():
        locked = PlanChange.objects.select_for_update().get(pk=change.pk)
        locked.attempts += 1
        locked.last_error = error[:2000]
        locked.save(update_fields=["attempts", "last_error", "updated_at"])
        PLAN_CHANGE_STATES.note(
            locked,
            actor=Actor.system("plan-changes"),
            reason=f"Attempt {locked.attempts} failed, retried: {error}",
        )


def _failed(change: PlanChange, *, error: str) -> None:
    with transaction.atomic():
        locked = PlanChange.objects.select_for_update().get(pk=change.pk)
        if locked.status not in PLAN_CHANGE_OPEN:
            return
        PLAN_CHANGE_STATES.move(
            locked,
            PCS.FAILED,
            actor=Actor.system("plan-changes"),
            reason=f"The panel did not apply it: {error}",
            extra_updates={"attempts": locked.attempts + 1, "last_error": error[:2000]},
        )
        plan_change_staff_tell(
            locked,
            title=f"Plan change failed: {change.deployment.name}",
            detail=f"Plan change #{change.pk} ({change.from_plan.name} → {change.to_plan.name}) "
            f"could not be applied on the panel after {locked.attempts} attempt(s): {error}. "
            "Retry it from the admin once the panel is fixed.",
            key=f"failed-{locked.attempts}",
        )


def _applied(change: PlanChange) -> None:
    with transaction.atomic():
        locked = PlanChange.objects.select_for_update().get(pk=change.pk)
        if locked.status not in PLAN_CHANGE_OPEN:
            return
        PLAN_CHANGE_STATES.move(
            locked,
            PCS.APPLIED,
            actor=Actor.system("plan-changes"),
            reason=f"Applied on the panel and read back: now {change.to_plan.name}",
            extra_updates={"applied_at": timezone.now(), "attempts": locked.attempts + 1},
        )
        capacity_hold_upgrade_applied(deployment_id=change.deployment_id)
        deployment = Deployment.objects.select_related("customer").get(pk=change.deployment_id)
        limits = deployment.spec.get("limits") or {}
        notification_send(
            event="plan_changed",
            user=deployment.customer,
            context={
                "server_name": deployment.name,
                "old_plan": change.from_plan.name,
                "new_plan": change.to_plan.name,
                "memory_mb": limits.get("memory", ""),
                "cpu_percent": limits.get("cpu", ""),
                "disk_mb": limits.get("disk", ""),
                "server_url": settings.PORTAL_BASE_URL.rstrip("/")
                + reverse("deployment-detail", args=[deployment.pk]),
            },
            event_key=f"plan_changed:{change.pk}",
        )


def _abandon(change: PlanChange, *, reason: str) -> None:
    """The server went away before its change was applied: cancelled; a paid upgrade's money
    goes to credit (plan_change_paid's rule) and staff are told."""
    with transaction.atomic():
        invoice = (
            Invoice.objects.select_for_update().get(pk=change.invoice_id)
            if change.invoice_id
            else None
        )
        locked = PlanChange.objects.select_for_update().get(pk=change.pk)
        if locked.status not in PLAN_CHANGE_OPEN:
            return
        actor = Actor.system("plan-changes")
        PLAN_CHANGE_STATES.move(locked, PCS.CANCELLED, actor=actor, reason=f"Not applied: {reason}")
        capacity_hold_release(
            deployment_id=change.deployment_id,
            reason=f"plan change #{change.pk} not applied",
            actor=actor,
        )
        paid = (
            invoice.subtotal - invoice.discount_total
            if invoice is not None and invoice.status == InvoiceStatus.PAID
            else Decimal("0")
        )
        if invoice is not None and paid > 0:
            credit_add(
                customer_id=invoice.customer_id,
                currency=invoice.currency,
                amount=paid,
                kind=CreditEntryKind.REFUND,
                description=f"Upgrade invoice {invoice.number}: not applied, {reason}",
                actor=actor,
                invoice=invoice,
            )
        plan_change_staff_tell(
            locked,
            title=f"Plan change not applied: {change.deployment.name}",
            detail=f"Plan change #{change.pk} was cancelled: {reason}."
            + (f" {paid} {invoice.currency} went to account credit." if invoice and paid else ""),
            key="abandoned",
        )


def plan_change_staff_tell(change: PlanChange, *, title: str, detail: str, key: str) -> None:
    """The staff alert of a change (failed, abandoned, paid after a cancellation)."""
    deployment = Deployment.objects.select_related("customer").get(pk=change.deployment_id)
    notification_send(
        event="plan_change_staff",
        staff=True,
        context={
            "title": title,
            "detail": detail,
            "admin_url": settings.PORTAL_BASE_URL.rstrip("/")
            + reverse("admin:billing_planchange_change", args=[change.pk]),
            "server_name": deployment.name,
            "customer_email": deployment.customer.email,
        },
        event_key=f"plan_change_staff:{change.pk}:{key}",
    )
    logger.warning("plan change %s: %s", change.pk, title)
