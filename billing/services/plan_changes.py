"""Moving a live server to another plan: the customer's upgrades and downgrades with proration,
and staff's direct change.

Rules (billing.proration has the arithmetic):

- Targets: active plans of the same egg family (same category and nest, billing.selectors
  plan_family) with an active price in the order's cycle and currency and a different price
  than the current plan (Deployment.plan_slug: the plan after earlier changes).
- Only an ACTIVE server (a suspended one pays its renewal first), with no scheduled
  cancellation, no unpaid renewal invoice and today inside its paid period; one open change per
  server (the partial unique constraint decides a race: IntegrityError -> PLAN_CHANGE_PENDING).
- An upgrade must fit the server's node first (node mirror + in-flight runs + holds, the
  placement formula: provisioning.saga.placement.node_load): refused before any invoice.
- Upgrade: an UPGRADE invoice for the prorated difference (credit applied first; a 0.00 total
  is settled at once through billing.services.payments), applied when paid. A prorated 0.00
  upgrade is applied at once without an invoice.
- Downgrade, applied at once (default): the prorated difference is credited at once (ledger
  kind DOWNGRADE). With BILLING_DOWNGRADE_AT_PERIOD_END it is applied on the next due date and
  nothing is credited: the customer keeps the bigger plan for every paid day, and the renewal
  of the next period is priced with the new plan (billing.services.renewals).
- Applying is panel work queued as a PanelOperation (source "plan_change", run by the drain
  with its budget, leases and backoff; billing.services.plan_change_execution): the build is
  applied and read back (provisioning.operations.deployment_change_build), the change moves to
  applied and the customer is told; after the retries it moves to failed and staff are told
  (retry from the admin). The fleet job `plan_changes_apply_due` queues scheduled changes that
  are due and paid ones whose operation could not be queued (another one was open on the
  server).
- An upgrade paid after the server was cancelled or terminated (or with a cancellation
  scheduled) is not applied: what was paid goes to account credit and staff are told.
"""

import datetime as dt
import logging
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.catalog import plan_panel_spec
from billing.errors import BillingErrorCode
from billing.models import (
    Cancellation,
    CancellationStatus,
    CreditEntryKind,
    Invoice,
    InvoiceKind,
    InvoiceLineKind,
    InvoiceStatus,
    Order,
    PaymentProvider,
    Plan,
    PlanChange,
    PlanChangeDirection,
    PlanChangeStatus,
)
from billing.models.lifecycle import PLAN_CHANGE_STATES
from billing.notify import invoice_message_context
from billing.services.checkout_expiry import checkout_sessions_expire_later
from billing.services.credit import credit_add, invoice_credit_apply
from billing.services.invoices import PricedLine, invoice_cancel, invoice_create
from billing.services.plan_change_execution import LIVE_STATUSES, plan_change_staff_tell
from billing.services.plan_change_quotes import (
    PlanChangeNotAllowed,
    PlanChangePending,
    PlanChangeQuote,
    PlanDoesNotFitNode,
    Quote,
    _fit_check,
    _new_spec,
    plan_change_options,
    plan_change_quote,
)
from common.actors import Actor
from common.dates import billing_today
from common.errors import ApplicationError, ConflictError, NotFoundError
from notifications.services import notification_send
from provisioning.fleet.operations import (
    OperationRequest,
    panel_operations_request,
)
from provisioning.models import PanelOperationKind
from provisioning.operations import deployment_change_build
from servers.capacity import (
    capacity_hold_keep_upgrade,
    capacity_hold_release,
    capacity_hold_take_upgrade,
)
from servers.models import Deployment

logger = logging.getLogger(__name__)

# PanelOperation.params["source"] of the operations this module's executor runs.
PLAN_CHANGE_SOURCE = "plan_change"
PCS = PlanChangeStatus


# ---------------------------------------------------------------------- staff's direct change


def plan_family_check(*, from_plan_slug: str, plan: Plan) -> None:
    """Refuse a plan of another egg family than the server's current plan (PLAN_CHANGE_NOT_
    ALLOWED): a Minecraft server never gets a Discord-bot plan's egg limits."""
    current = Plan.objects.filter(slug=from_plan_slug).first()
    if current is not None and (current.category, current.nest_id) != (
        plan.category,
        plan.nest_id,
    ):
        raise PlanChangeNotAllowed(
            _(
                "%(plan)s is not of the same kind as %(current)s (another category or egg "
                "family); it cannot be applied to this server."
            )
            % {"plan": plan.name, "current": current.name}
        )


def order_plan_change(*, order: Order, plan: Plan, actor: Actor) -> Deployment:
    """Apply `plan` (and the add-ons the order was sold with) to the order's server on the
    panel; raises ApplicationError when the server is not live, the plan is of another egg
    family, or the panel refuses."""
    if order.deployment_id is None:
        raise PlanChangeNotAllowed(f"{order} has no server.")
    deployment = Deployment.objects.get(pk=order.deployment_id)
    plan_family_check(from_plan_slug=deployment.plan_slug, plan=plan)
    addons = [item.addon for item in order.order_addons.select_related("addon")]
    return deployment_change_build(
        deployment_id=order.deployment_id,
        spec=plan_panel_spec(plan, addons),
        plan_slug=plan.slug,
        plan_name=plan.name,
        actor=actor,
    )


# ---------------------------------------------------------------------- requests


def plan_change_request(
    *,
    deployment_id: int,
    to_plan_slug: str,
    actor: Actor,
    customer: User | None = None,
    today: dt.date | None = None,
) -> PlanChange:
    """The customer asks to move the server to `to_plan_slug` (see the module's rules).

    `customer`: the signed-in customer; another customer's server is "not found". Raises
    PlanChangeNotAllowed, PlanChangePending or PlanDoesNotFitNode; writes nothing then."""
    today = today or billing_today()
    with transaction.atomic():
        deployments = Deployment.objects.all()
        if customer is not None:
            deployments = deployments.filter(customer=customer)
        deployment = deployments.filter(pk=deployment_id).first()
        if deployment is None:
            raise NotFoundError(_("No such server."))
        quote = plan_change_quote(deployment=deployment, to_plan_slug=to_plan_slug, today=today)
        extra = _fit_check(deployment, _new_spec(quote)) if quote.is_upgrade else None
        change = _change_insert(quote, actor=actor)
        if quote.is_upgrade and quote.amount > 0:
            if extra is not None:
                # The room checked above stays the customer's while they pay (the node is
                # still locked: no checkout can take it in between).
                capacity_hold_take_upgrade(
                    deployment_id=deployment.pk,
                    node=extra.node,
                    memory_mb=extra.memory_mb,
                    disk_mb=extra.disk_mb,
                    reference=f"plan change #{change.pk} to {quote.to_plan.name}",
                    actor=actor,
                )
            _upgrade_invoice(change, quote=quote, actor=actor)
        else:
            if not quote.is_upgrade and quote.amount > 0:
                credit_add(
                    customer_id=deployment.customer_id,
                    currency=quote.currency,
                    amount=quote.amount,
                    kind=CreditEntryKind.DOWNGRADE,
                    description=f"Downgrade of {deployment.name}: {quote.from_plan.name} → "
                    f"{quote.to_plan.name}, {quote.proration.days_left} of "
                    f"{quote.proration.days_in_period} days unused",
                    actor=actor,
                )
            if change.apply_on is not None and change.apply_on <= today:
                _apply_request([change], actor=actor)
    return change


def _change_insert(quote: Quote, *, actor: Actor) -> PlanChange:
    p = quote.proration
    waits_for_payment = quote.is_upgrade and quote.amount > 0
    try:
        with transaction.atomic():
            change = PlanChange.objects.create(
                deployment=quote.deployment,
                order=quote.order,
                from_plan=quote.from_plan,
                to_plan=quote.to_plan,
                direction=PlanChangeDirection(quote.direction),
                status=PCS.AWAITING_PAYMENT if waits_for_payment else PCS.SCHEDULED,
                billing_cycle=quote.order.billing_cycle,
                currency=p.currency,
                period_start=p.period_start,
                period_end=p.period_end,
                days_in_period=p.days_in_period,
                days_left=p.days_left,
                from_price=p.from_price,
                to_price=p.to_price,
                prorated_amount=p.amount,
                apply_on=None if waits_for_payment else quote.apply_on,
                requested_by=actor.user,
            )
    except IntegrityError as exc:
        # The partial unique constraint: one open change per server, whatever raced.
        raise PlanChangePending(
            f"{quote.deployment.name} already has a plan change in progress; finish or cancel "
            "it first."
        ) from exc
    what = (
        f"{quote.direction.capitalize()} {quote.from_plan.name} → {quote.to_plan.name}: "
        f"{p.days_left} of {p.days_in_period} days left, "
        f"{'charge' if quote.is_upgrade else 'credit'} {p.amount} {p.currency}"
    )
    if change.apply_on is not None:
        what += f"; applied on {change.apply_on.isoformat()}"
    PLAN_CHANGE_STATES.record_created(change, actor=actor, reason=what)
    return change


def _upgrade_invoice(change: PlanChange, *, quote: Quote, actor: Actor) -> Invoice:
    p = quote.proration
    deployment = quote.deployment
    invoice = invoice_create(
        customer=deployment.customer,
        currency=p.currency,
        lines=[
            PricedLine(
                InvoiceLineKind.PLAN,
                f"Upgrade {quote.from_plan.name} → {quote.to_plan.name} "
                f"({p.days_left} of {p.days_in_period} days left)",
                p.amount,
            )
        ],
        kind=InvoiceKind.UPGRADE,
        actor=actor,
        order=quote.order,
        deployment=deployment,
        period_start=p.today,
        period_end=p.period_end,
    )
    PlanChange.objects.filter(pk=change.pk).update(invoice=invoice, updated_at=timezone.now())
    change.invoice = invoice
    invoice_credit_apply(invoice_id=invoice.pk, actor=actor)
    invoice.refresh_from_db()
    notification_send(
        event="invoice_created",
        user=deployment.customer,
        context={
            **invoice_message_context(invoice),
            "order_id": quote.order.pk,
            "package": f"{quote.from_plan.name} → {quote.to_plan.name}",
        },
        event_key=f"invoice_created:{invoice.number}",
    )
    if invoice.total == 0:
        # Covered by credit: settled now, the way every zero-total invoice is (payments calls
        # plan_change_paid, which queues the change).
        from billing.services.payments import invoice_mark_paid  # (payments imports this module)

        invoice_mark_paid(
            invoice_id=invoice.pk,
            provider=PaymentProvider.MANUAL,
            amount=Decimal("0"),
            currency=invoice.currency,
            reference="",
            actor=Actor.system("zero-total"),
        )
    return invoice


def _apply_request(changes: list[PlanChange], *, actor: Actor) -> int:
    """Queue the panel work of `changes` (one operation per server; an open one is kept and
    the job queues the change again later). Returns how many were queued."""
    return panel_operations_request(
        requests=[
            OperationRequest(
                kind=PanelOperationKind.REAPPLY_BUILD,
                deployment_id=change.deployment_id,
                reason=f"Plan change #{change.pk} ({change.direction})",
                params={"source": PLAN_CHANGE_SOURCE, "plan_change_id": change.pk},
            )
            for change in changes
        ],
        actor=actor,
    )


# ---------------------------------------------------------------------- payment, cancel


def _server_gone_or_leaving(deployment_id: int) -> str:
    deployment = Deployment.objects.get(pk=deployment_id)
    if deployment.status not in LIVE_STATUSES:
        return f"the server is {deployment.get_status_display().lower()}"
    if Cancellation.objects.filter(
        deployment_id=deployment_id, status=CancellationStatus.SCHEDULED
    ).exists():
        return "the server's cancellation is scheduled"
    return ""


def plan_change_paid(*, invoice: Invoice, actor: Actor) -> None:
    """The UPGRADE invoice was paid (inside the payment's transaction; no panel call here): the
    change is queued for the panel after commit. Paid after the server was cancelled or
    terminated (or with a cancellation scheduled): not applied; what was paid (money and credit
    spent) goes to account credit and staff are told."""
    change = (
        PlanChange.objects.select_for_update()
        .select_related("deployment", "from_plan", "to_plan")
        .filter(invoice_id=invoice.pk)
        .first()
    )
    if change is None or change.status != PCS.AWAITING_PAYMENT:
        logger.error("upgrade invoice %s paid but it has no waiting plan change", invoice.number)
        return
    gone = _server_gone_or_leaving(change.deployment_id)
    if not gone:
        PLAN_CHANGE_STATES.note(
            change, actor=actor, reason=f"Invoice {invoice.number} paid; applying on the panel"
        )
        capacity_hold_keep_upgrade(
            deployment_id=change.deployment_id, requested_at=change.created_at, actor=actor
        )
        _apply_request([change], actor=actor)
        return
    capacity_hold_release(
        deployment_id=change.deployment_id,
        reason=f"plan change #{change.pk} not applied ({gone})",
        actor=actor,
    )
    PLAN_CHANGE_STATES.move(
        change,
        PCS.CANCELLED,
        actor=actor,
        reason=f"Invoice {invoice.number} paid after {gone}: not applied, refunded to credit",
    )
    paid = invoice.subtotal - invoice.discount_total
    if paid > 0:
        credit_add(
            customer_id=invoice.customer_id,
            currency=invoice.currency,
            amount=paid,
            kind=CreditEntryKind.REFUND,
            description=f"Upgrade invoice {invoice.number} paid after {gone}",
            actor=actor,
            invoice=invoice,
        )
    plan_change_staff_tell(
        change,
        title=f"Upgrade paid after cancellation: {change.deployment.name}",
        detail=f"Invoice {invoice.number} ({paid} {invoice.currency}) was paid after {gone}. "
        f"The upgrade was not applied; {paid} {invoice.currency} went to the customer's "
        "account credit. Refund it to the card or bank instead if the customer asks.",
        key="paid-after-cancel",
    )


def plan_change_cancel(*, change_id: int, actor: Actor, customer: User | None = None) -> PlanChange:
    """Cancel a change that has not happened yet: an upgrade whose invoice is unpaid (the
    invoice is cancelled and any credit it spent given back) or a downgrade scheduled for a
    later day. `customer`: only their own (others: not found)."""
    changes = PlanChange.objects.all()
    if customer is not None:
        changes = changes.filter(deployment__customer=customer)
    found = (
        changes.filter(pk=change_id)
        .values("invoice_id", "deployment_id", "status", "apply_on", "to_plan__name")
        .first()
    )
    if found is None:
        raise NotFoundError(_("No such plan change."))
    with transaction.atomic():
        # The invoices first, then the change: the order a payment locks them in.
        invoice = (
            Invoice.objects.select_for_update().get(pk=found["invoice_id"])
            if found["invoice_id"]
            else None
        )
        # A scheduled downgrade's next period may already be invoiced at the new plan's price
        # (billing.services.renewals prices it so): kept on the old plan, that price is wrong.
        next_renewals = (
            list(
                Invoice.objects.select_for_update()
                .filter(
                    deployment_id=found["deployment_id"],
                    kind=InvoiceKind.RENEWAL,
                    period_start=found["apply_on"],
                    status__in=(InvoiceStatus.UNPAID, InvoiceStatus.PAID),
                )
                .order_by("pk")
            )
            if found["status"] == PCS.SCHEDULED and found["apply_on"]
            else []
        )
        change = PlanChange.objects.select_for_update().get(pk=change_id)
        today = billing_today()
        cancellable = (
            change.status == PCS.AWAITING_PAYMENT
            and (invoice is None or invoice.status == InvoiceStatus.UNPAID)
        ) or (change.status == PCS.SCHEDULED and change.apply_on and change.apply_on > today)
        if not cancellable:
            raise ConflictError(
                _(
                    "Plan change #%(id)s is %(status)s and being applied; it can no longer be "
                    "cancelled."
                )
                % {"id": change.pk, "status": change.get_status_display().lower()},
                code=BillingErrorCode.PLAN_CHANGE_NOT_ALLOWED,
            )
        paid_ahead = [r for r in next_renewals if r.status == InvoiceStatus.PAID]
        if change.status == PCS.SCHEDULED and paid_ahead:
            starts = change.apply_on.isoformat() if change.apply_on else ""
            raise ConflictError(
                _(
                    "Renewal invoice %(number)s for the period from %(date)s is already paid at "
                    "%(plan)s's price, so this downgrade can no longer be cancelled. From "
                    "%(date)s you can upgrade again (charged only for the days left)."
                )
                % {"number": paid_ahead[0].number, "date": starts, "plan": found["to_plan__name"]},
                code=BillingErrorCode.PLAN_CHANGE_NOT_ALLOWED,
            )
        if invoice is not None:
            invoice_cancel(
                invoice_id=invoice.pk, actor=actor, reason=f"Plan change #{change.pk} cancelled"
            )
            checkout_sessions_expire_later(invoice_id=invoice.pk)
            # The room held for the unpaid upgrade goes back to new orders.
            capacity_hold_release(
                deployment_id=change.deployment_id,
                reason=f"plan change #{change.pk} cancelled",
                actor=actor,
            )
        for renewal in next_renewals if change.status == PCS.SCHEDULED else []:
            # Voided (any credit it spent comes back); the renewal job issues the period again
            # at the price of the plan the server keeps (its unique index ignores voided ones).
            invoice_cancel(
                invoice_id=renewal.pk,
                actor=actor,
                reason=f"Plan change #{change.pk} cancelled: this period was priced at "
                f"{found['to_plan__name']}; it is invoiced again at the plan kept",
            )
            checkout_sessions_expire_later(invoice_id=renewal.pk)
        PLAN_CHANGE_STATES.move(
            change,
            PCS.CANCELLED,
            actor=actor,
            reason="Cancelled"
            + (
                f"; renewal invoice(s) {', '.join(r.number for r in next_renewals)} voided, "
                "to be issued again at the plan kept"
                if next_renewals and change.status == PCS.SCHEDULED
                else ""
            ),
        )
    return change


def plan_change_retry(*, change_id: int, actor: Actor) -> PlanChange:
    """Staff: queue a failed change for the panel again."""
    with transaction.atomic():
        change = PlanChange.objects.select_for_update().get(pk=change_id)
        if change.status != PCS.FAILED:
            raise ConflictError(
                f"Plan change #{change.pk} is {change.get_status_display().lower()}; only a "
                "failed one is retried.",
                code=BillingErrorCode.PLAN_CHANGE_NOT_ALLOWED,
            )
        if not _apply_request([change], actor=actor):
            raise ConflictError(
                f"Another panel operation is open on {change.deployment}; retry when it ends.",
                code=BillingErrorCode.PLAN_CHANGE_PENDING,
            )
        PLAN_CHANGE_STATES.note(change, actor=actor, reason="Retry requested")
    return change


# ---------------------------------------------------------------------- the fleet job


def _due(today: dt.date) -> QuerySet[PlanChange]:
    # The partial index plan_change_scheduled_idx (apply_on, id) WHERE status = 'scheduled'.
    return PlanChange.objects.filter(status=PCS.SCHEDULED, apply_on__lte=today).order_by(
        "apply_on", "id"
    )


def plan_changes_apply_due(
    *, today: dt.date | None = None, dry_run: bool = False, batch_size: int | None = None
) -> dict[str, int]:
    """Queue every scheduled change due by `today` and every paid upgrade not applied yet, in
    batches (one operations request per batch); cancel upgrades whose invoice stayed unpaid
    until the end of the period they prorate. Safe to run twice: an open operation of the server
    is kept (one per server, a constraint), an applied change is no longer selected."""
    today = today or billing_today()
    size = batch_size or max(1, settings.FLEET_BATCH_SIZE)
    actor = Actor.system("plan-changes")
    counts = {"due": 0, "queued": 0, "batches": 0, "expired": 0}
    cursor: tuple[dt.date, int] | None = None
    while True:
        due = _due(today)
        if cursor is not None:
            due = due.filter(Q(apply_on__gt=cursor[0]) | Q(apply_on=cursor[0], id__gt=cursor[1]))
        rows = list(due.values_list("pk", "deployment_id", "direction", "apply_on")[:size])
        if not rows:
            break
        cursor = (rows[-1][3] or today, rows[-1][0])
        batch = [
            PlanChange(pk=pk, deployment_id=deployment_id, direction=direction)
            for pk, deployment_id, direction, _apply_on in rows
        ]
        counts["batches"] += 1
        counts["due"] += len(batch)
        if not dry_run:
            counts["queued"] += _apply_request(batch, actor=actor)
    # Paid, not applied (its operation was not queued: another was open on the server). Few.
    paid = list(
        PlanChange.objects.filter(status=PCS.AWAITING_PAYMENT, invoice__status=InvoiceStatus.PAID)
        .order_by("id")
        .only("pk", "deployment_id", "direction")
    )
    counts["due"] += len(paid)
    if paid and not dry_run:
        counts["queued"] += _apply_request(paid, actor=actor)
    stale = PlanChange.objects.filter(
        status=PCS.AWAITING_PAYMENT, invoice__status=InvoiceStatus.UNPAID, period_end__lte=today
    ).values_list("pk", flat=True)
    for change_id in list(stale):
        counts["expired"] += 1
        if not dry_run:
            try:
                plan_change_cancel(change_id=change_id, actor=actor)
            except ApplicationError as exc:  # paid meanwhile
                logger.info("stale plan change %s not cancelled: %s", change_id, exc.message)
    return counts


__all__ = [
    "PLAN_CHANGE_SOURCE",
    "PlanChangeNotAllowed",
    "PlanChangePending",
    "PlanChangeQuote",
    "PlanDoesNotFitNode",
    "order_plan_change",
    "plan_change_cancel",
    "plan_change_options",
    "plan_change_paid",
    "plan_change_quote",
    "plan_change_request",
    "plan_change_retry",
    "plan_changes_apply_due",
    "plan_family_check",
]
