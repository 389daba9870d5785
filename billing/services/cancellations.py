"""Cancelling a live server: at the end of the paid term (default) or at once.

A request writes a Cancellation row (one scheduled per server: a partial unique constraint),
voids what would never be owed (unpaid renewals of periods from the end date on, an upgrade
still waiting for payment) and tells the customer and staff. The fleet job
`cancellations_run` turns due cancellations into TERMINATE panel operations (one open per
server), worked off by the drain, which calls `cancellation_execute` when the operation's turn
comes: it checks again that the cancellation is still scheduled and due. Whatever terminates
the server (this job, dunning, staff), billing's termination listener completes the scheduled
cancellation (`cancellation_complete_for`) and, for an immediate one, gives the unused paid days
back as account credit when BILLING_CANCEL_IMMEDIATE_REFUND is "credit".

The customer may revoke a scheduled cancellation until its termination is running.

A server suspended for non-payment may be cancelled too: the customer who stopped paying and
says so is the clearest case of "this will never be owed". The end of its term is its paid-
through date, already past, so the job terminates it at its next run (before dunning's grace
runs out), and its unpaid renewal is voided, so dunning stops chasing it.
"""

import datetime as dt
import logging
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from billing.errors import BillingErrorCode
from billing.models import (
    BillingCycle,
    Cancellation,
    CancellationMode,
    CancellationStatus,
    CreditEntryKind,
    Invoice,
    InvoiceKind,
    InvoiceLineKind,
    InvoiceStatus,
    Order,
    PlanChange,
    PlanChangeDirection,
    PlanChangeStatus,
)
from billing.models.lifecycle import CANCELLATION_STATES, PLAN_CHANGE_STATES
from billing.services.checkout_expiry import checkout_sessions_expire_later
from billing.services.credit import credit_add
from billing.services.invoices import invoice_cancel
from billing.services.renewals import LIVE, fleet_batch_size
from common.actors import Actor
from common.dates import add_months, billing_today
from common.errors import ApplicationError, CommonErrorCode, NotFoundError
from common.money import quantize
from notifications.services import notification_send
from provisioning.errors import ProvisioningErrorCode
from provisioning.fleet.operations import (
    OperationRequest,
    OperationResult,
    panel_operations_request,
)
from provisioning.models import (
    OPEN_OPERATION_STATUSES,
    PanelOperation,
    PanelOperationKind,
    PanelOperationStatus,
)
from provisioning.operations import deployment_terminate
from provisioning.pterodactyl import PterodactylClient
from servers.models import Deployment

logger = logging.getLogger(__name__)

# PanelOperation.params["source"] of the terminations this module decides.
CANCELLATION_SOURCE = "cancellation"
REFUND_CREDIT = "credit"
REFUND_NONE = "none"
CS = CancellationStatus


class CancellationNotAllowed(ApplicationError):
    http_status = 409
    default_code = BillingErrorCode.CANCELLATION_NOT_ALLOWED


class CancellationPending(ApplicationError):
    http_status = 409
    default_code = BillingErrorCode.CANCELLATION_PENDING


class CancellationNotRevocable(ApplicationError):
    http_status = 409
    default_code = BillingErrorCode.CANCELLATION_NOT_REVOCABLE


def refund_rule() -> str:
    """BILLING_CANCEL_IMMEDIATE_REFUND, read when it is applied (not at import)."""
    rule = str(settings.BILLING_CANCEL_IMMEDIATE_REFUND).strip().lower()
    return rule if rule in (REFUND_CREDIT, REFUND_NONE) else REFUND_NONE


# --- Reads -------------------------------------------------------------------------------


def cancellation_scheduled_for(*, deployment_id: int) -> Cancellation | None:
    return Cancellation.objects.filter(deployment_id=deployment_id, status=CS.SCHEDULED).first()


def cancellation_current_for_customer(*, deployment_id: int, customer: User) -> Cancellation:
    """The customer's server's scheduled cancellation, else its completed one; NotFoundError
    when there is none or the server is not theirs (another customer's server does not exist
    here)."""
    _own_deployment(deployment_id=deployment_id, customer=customer)
    cancellation = (
        Cancellation.objects.filter(deployment_id=deployment_id)
        .exclude(status=CS.REVOKED)
        .order_by("-created_at", "-id")
        .first()
    )
    if cancellation is None:
        raise NotFoundError(_("This server has no cancellation."))
    return cancellation


def cancellation_effective_on(
    *, deployment: Deployment, mode: str, today: dt.date | None = None
) -> dt.date:
    """The day a cancellation requested now would terminate the server: today for an
    immediate one, else its paid-through date (today if that has passed or is unknown)."""
    today = today or billing_today()
    if mode == CancellationMode.IMMEDIATE:
        return today
    return max(deployment.next_due_date or today, today)


def _own_deployment(*, deployment_id: int, customer: User | None) -> None:
    if customer is None:
        return
    if not Deployment.objects.filter(pk=deployment_id, customer=customer).exists():
        raise NotFoundError(_("No such server."))


def _english(label: object) -> str:
    """A choice label for the history rows, which stay English whatever the request's language."""
    with translation.override("en"):
        return str(label)


# --- Request ------------------------------------------------------------------------------


def cancellation_request(
    *,
    deployment_id: int,
    mode: str = CancellationMode.END_OF_TERM,
    reason: str = "",
    actor: Actor,
    customer: User | None = None,
) -> Cancellation:
    """Schedule the server's cancellation (`customer`: only if the server is theirs, else
    NotFoundError). END_OF_TERM ends it on its paid-through date; IMMEDIATE today, and its
    termination is requested at once."""
    if mode not in CancellationMode.values:
        raise ApplicationError.for_fields(
            {"mode": _("Choose one of: %(modes)s.") % {"modes": ", ".join(CancellationMode.values)}}
        )
    mode = CancellationMode(mode)
    _own_deployment(deployment_id=deployment_id, customer=customer)
    today = billing_today()
    with transaction.atomic():
        # Invoices first, then the server: the order a payment takes them in (invoice, then
        # renewal_paid's server lock), so a cancellation racing a payment waits, not deadlocks.
        unpaid = list(
            Invoice.objects.select_for_update()
            .filter(
                deployment_id=deployment_id,
                kind__in=(InvoiceKind.RENEWAL, InvoiceKind.UPGRADE),
                status=InvoiceStatus.UNPAID,
            )
            .order_by("pk")
        )
        deployment = Deployment.objects.select_for_update().get(pk=deployment_id)
        if deployment.status not in LIVE:
            raise CancellationNotAllowed(
                _("%(name)s is %(status)s; only an active or suspended server can be cancelled.")
                % {"name": deployment.name, "status": deployment.get_status_display().lower()}
            )
        if Cancellation.objects.filter(deployment_id=deployment_id, status=CS.SCHEDULED).exists():
            raise CancellationPending(f"{deployment.name} already has a scheduled cancellation.")
        order = Order.objects.get(deployment_id=deployment_id)
        paid_through = deployment.next_due_date or today
        effective_on = cancellation_effective_on(deployment=deployment, mode=mode, today=today)
        try:
            with transaction.atomic():  # a savepoint: the constraint has the last word
                cancellation = Cancellation.objects.create(
                    deployment=deployment,
                    order=order,
                    mode=mode,
                    effective_on=effective_on,
                    reason=reason.strip()[:2000],
                    currency=order.currency,
                    requested_by=actor.user,
                )
        except IntegrityError as exc:
            raise CancellationPending(
                f"{deployment.name} already has a scheduled cancellation."
            ) from exc
        CANCELLATION_STATES.record_created(
            cancellation,
            actor=actor,
            reason=f"{_english(mode.label)}: the server is terminated on {effective_on.isoformat()}"
            + (f"; the customer says: {cancellation.reason}"[:900] if cancellation.reason else ""),
        )
        voided = _void_unowed(
            cancellation,
            unpaid=unpaid,
            void_from=min(effective_on, paid_through),
            actor=actor,
        )
        if mode == CancellationMode.IMMEDIATE and not _termination_request(
            [cancellation], actor=actor
        ):
            CANCELLATION_STATES.note(
                cancellation,
                actor=actor,
                reason="Termination not queued yet: the server has another panel operation "
                "open; the cancellations job requests it once that one is done",
            )
        _notify_scheduled(cancellation, deployment=deployment, voided=voided)
    return cancellation


def _void_unowed(
    cancellation: Cancellation, *, unpaid: list[Invoice], void_from: dt.date, actor: Actor
) -> list[str]:
    """Cancel what the customer will never owe: renewals of periods from `void_from` on and
    the invoice of an upgrade still waiting for payment (the change goes with it); a downgrade
    scheduled for the day the server ends or later is cancelled too. Returns the voided
    invoice numbers."""
    why = f"{cancellation} of the server"
    voided = []
    open_changes = list(
        PlanChange.objects.select_for_update().filter(
            deployment_id=cancellation.deployment_id, status=PlanChangeStatus.AWAITING_PAYMENT
        )
    )
    for change in open_changes:
        PLAN_CHANGE_STATES.move(change, PlanChangeStatus.CANCELLED, actor=actor, reason=why)
    # A downgrade waiting for a day the server will not see running (the end of the period,
    # when an end-of-term cancellation terminates it): cancelled, so it is neither applied on
    # the day of the termination nor holding the server's one panel operation before it. It
    # was credited nothing. (One applied today, already credited, is left to run.)
    today = billing_today()
    for change in PlanChange.objects.select_for_update().filter(
        deployment_id=cancellation.deployment_id,
        status=PlanChangeStatus.SCHEDULED,
        apply_on__gte=cancellation.effective_on,
        apply_on__gt=today,
    ):
        PLAN_CHANGE_STATES.move(
            change,
            PlanChangeStatus.CANCELLED,
            actor=actor,
            reason=f"{why}: the server ends on {cancellation.effective_on.isoformat()}; this "
            f"change was due on {change.apply_on.isoformat() if change.apply_on else '-'}",
        )
    change_invoices = {change.invoice_id for change in open_changes if change.invoice_id}
    for invoice in unpaid:
        wanted = invoice.pk in change_invoices or (
            invoice.kind == InvoiceKind.RENEWAL
            and invoice.period_start is not None
            and invoice.period_start >= void_from
        )
        if wanted:
            invoice_cancel(invoice_id=invoice.pk, actor=actor, reason=why)
            # Its open Stripe Checkout pages are closed after commit (they call Stripe).
            checkout_sessions_expire_later(invoice_id=invoice.pk)
            voided.append(invoice.number)
    return voided


def _termination_request(cancellations: list[Cancellation], *, actor: Actor) -> int:
    return panel_operations_request(
        requests=[
            OperationRequest(
                kind=PanelOperationKind.TERMINATE,
                reason=f"{c} ({c.get_mode_display().lower()}) took effect on "
                f"{c.effective_on.isoformat()}",
                deployment_id=c.deployment_id,
                params={"source": CANCELLATION_SOURCE, "cancellation_id": c.pk},
            )
            for c in cancellations
        ],
        actor=actor,
    )


# --- Revoke -------------------------------------------------------------------------------


def cancellation_revoke(
    *, cancellation_id: int, actor: Actor, customer: User | None = None
) -> Cancellation:
    """Keep the server: only while the cancellation is scheduled and its termination has not
    started (a queued termination is dropped; a running one cannot be stopped)."""
    with transaction.atomic():
        cancellation = (
            Cancellation.objects.select_for_update()
            .select_related("deployment")
            .filter(pk=cancellation_id)
            .first()
        )
        if cancellation is None or (
            customer is not None and cancellation.deployment.customer_id != customer.pk
        ):
            raise NotFoundError(_("No such cancellation."))
        deployment = cancellation.deployment
        if cancellation.status != CS.SCHEDULED or deployment.status not in LIVE:
            raise CancellationNotRevocable(
                _("%(cancellation)s is %(status)s; it can no longer be revoked.")
                % {
                    "cancellation": cancellation,
                    "status": cancellation.get_status_display().lower(),
                }
            )
        # Lock the server's open operation: the drain claims with SKIP LOCKED, so it either
        # already runs (refused below) or waits until this one is closed.
        operation = (
            PanelOperation.objects.select_for_update()
            .filter(deployment_id=deployment.pk, status__in=OPEN_OPERATION_STATUSES)
            .first()
        )
        if operation is not None and operation.kind == PanelOperationKind.TERMINATE:
            if operation.status == PanelOperationStatus.RUNNING:
                raise CancellationNotRevocable(
                    _("%(name)s is being terminated; it can no longer be kept.")
                    % {"name": deployment.name}
                )
            if operation.params.get("source") == CANCELLATION_SOURCE:
                now = timezone.now()
                PanelOperation.objects.filter(
                    pk=operation.pk, status=PanelOperationStatus.PENDING
                ).update(
                    status=PanelOperationStatus.SKIPPED,
                    outcome=f"{cancellation} revoked by {actor.label}"[:2000],
                    finished_at=now,
                    updated_at=now,
                )
        CANCELLATION_STATES.move(
            cancellation,
            CS.REVOKED,
            actor=actor,
            reason="Revoked: the server is kept",
            extra_updates={"revoked_at": timezone.now()},
        )
        notification_send(
            event="cancellation_revoked",
            user=deployment.customer,
            context={
                "server_name": deployment.name,
                "server_url": _portal_url("deployment-detail", deployment.pk),
                **(
                    {"next_due_date": deployment.next_due_date.isoformat()}
                    if deployment.next_due_date
                    else {}
                ),
            },
            event_key=f"cancellation_revoked:cancellation-{cancellation.pk}",
        )
    return cancellation


# --- Staff: terminate now -----------------------------------------------------------------


def cancellation_terminate_now(*, cancellation_id: int, actor: Actor) -> Cancellation:
    """Staff: a scheduled cancellation takes effect today; its termination is requested."""
    with transaction.atomic():
        cancellation = Cancellation.objects.select_for_update().get(pk=cancellation_id)
        if cancellation.status != CS.SCHEDULED:
            raise CancellationNotAllowed(
                f"{cancellation} is {cancellation.get_status_display().lower()}."
            )
        today = billing_today()
        if cancellation.effective_on > today:
            previous = cancellation.effective_on
            cancellation.effective_on = today
            cancellation.save(update_fields=["effective_on", "updated_at"])
            CANCELLATION_STATES.note(
                cancellation,
                actor=actor,
                reason=f"Brought forward from {previous.isoformat()} to {today.isoformat()}",
            )
        requested = _termination_request([cancellation], actor=actor)
        if not requested:
            CANCELLATION_STATES.note(
                cancellation,
                actor=actor,
                reason="Termination not queued now: the server has another panel operation "
                "open; the cancellations job requests it once that one is done",
            )
    return cancellation


# --- The fleet job ------------------------------------------------------------------------


def _due(today: dt.date) -> QuerySet[Cancellation]:
    """Scheduled cancellations due by `today` of live servers with no open panel operation
    (and no termination that failed within the hour): the partial index cancellation_due_idx
    (status=scheduled, effective_on) finds them."""
    open_operation = PanelOperation.objects.filter(
        deployment=OuterRef("deployment_id"), status__in=OPEN_OPERATION_STATUSES
    )
    recently_failed = PanelOperation.objects.filter(
        deployment=OuterRef("deployment_id"),
        kind=PanelOperationKind.TERMINATE,
        status=PanelOperationStatus.FAILED,
        finished_at__gte=timezone.now() - dt.timedelta(hours=1),
    )
    return Cancellation.objects.filter(
        status=CS.SCHEDULED, effective_on__lte=today, deployment__status__in=LIVE
    ).filter(~Exists(open_operation), ~Exists(recently_failed))


def cancellations_run(*, today: dt.date | None = None, dry_run: bool = False) -> dict[str, int]:
    """Request the termination of every server whose cancellation is due, in batches of
    FLEET_BATCH_SIZE (one COPY + INSERT .. ON CONFLICT per batch). A re-run finds the open
    operations and requests nothing; the drain runs them inside the panel budget."""
    today = today or billing_today()
    due = _due(today).order_by("pk").values_list("pk", "deployment_id", "effective_on", "mode")
    counts = {"due": 0, "terminate": 0}
    actor = Actor.system("cancellations")
    after = 0
    while True:
        rows = list(due.filter(pk__gt=after)[: fleet_batch_size()])
        if not rows:
            return counts
        after = rows[-1][0]
        counts["due"] += len(rows)
        if dry_run:
            continue
        counts["terminate"] += panel_operations_request(
            requests=[
                OperationRequest(
                    kind=PanelOperationKind.TERMINATE,
                    reason=f"Cancellation #{pk} ({_english(CancellationMode(mode).label).lower()}) "
                    f"took effect on {effective_on.isoformat()}",
                    deployment_id=deployment_id,
                    params={"source": CANCELLATION_SOURCE, "cancellation_id": pk},
                )
                for pk, deployment_id, effective_on, mode in rows
            ],
            actor=actor,
        )


def cancellation_execute(
    *, operation: PanelOperation, client: PterodactylClient
) -> OperationResult:
    """The drain's turn for a cancellation's termination: terminate only if the cancellation
    is still scheduled and due (revoked or moved meanwhile: skipped, nothing sent)."""
    if operation.kind != PanelOperationKind.TERMINATE or operation.deployment_id is None:
        raise ValueError(f"cancellations do not run {operation.kind} operation {operation.pk}")
    cancellation = Cancellation.objects.filter(
        pk=operation.params.get("cancellation_id"), deployment_id=operation.deployment_id
    ).first()
    if cancellation is None or cancellation.status != CS.SCHEDULED:
        state = cancellation.get_status_display().lower() if cancellation else "missing"
        return OperationResult(outcome=f"cancellation {state}", skipped=True)
    if cancellation.effective_on > billing_today():
        return OperationResult(outcome="cancellation not due yet", skipped=True)
    try:
        # Billing's termination listener completes the cancellation (and gives the credit)
        # in the termination's transaction.
        deployment = deployment_terminate(
            deployment_id=operation.deployment_id,
            actor=Actor.system("cancellations"),
            reason=f"{cancellation} ({cancellation.get_mode_display().lower()}) requested by "
            "the customer",
            client=client,
        )
    except ApplicationError as exc:
        if exc.code in (ProvisioningErrorCode.INVALID_STATE, CommonErrorCode.INVALID_TRANSITION):
            return OperationResult(outcome="already terminated", skipped=True)
        raise
    return OperationResult(
        outcome="terminated", verified=getattr(deployment, "panel_verified", None)
    )


# --- Completion (billing's termination listener) -------------------------------------------


def cancellation_complete_for(*, deployment_id: int, actor: Actor) -> Cancellation | None:
    """The server was terminated (by the job, dunning or staff; inside the termination's
    transaction): its scheduled cancellation is completed. An immediate one gives the unused
    paid days back as credit when BILLING_CANCEL_IMMEDIATE_REFUND is "credit"."""
    cancellation = (
        Cancellation.objects.select_for_update()
        .filter(deployment_id=deployment_id, status=CS.SCHEDULED)
        .first()
    )
    if cancellation is None:
        return None
    credit: Decimal | None = None
    note = ""
    if cancellation.mode == CancellationMode.IMMEDIATE:
        credit = Decimal("0.00")
        if refund_rule() == REFUND_CREDIT:
            credit, note = unused_paid_amount(deployment_id=deployment_id, today=billing_today())
            if credit > 0:
                credit_add(
                    customer_id=cancellation.deployment.customer_id,
                    currency=cancellation.currency,
                    amount=credit,
                    kind=CreditEntryKind.CANCELLATION,
                    description=f"{cancellation}: unused paid days ({note})",
                    actor=actor,
                )
        else:
            note = "no refund (BILLING_CANCEL_IMMEDIATE_REFUND=none)"
    CANCELLATION_STATES.move(
        cancellation,
        CS.COMPLETED,
        actor=actor,
        reason="Server terminated"
        + (f"; credit {credit} {cancellation.currency}" if credit else "")
        + (f" ({note})" if note else ""),
        extra_updates={"completed_at": timezone.now(), "credit_amount": credit},
    )
    return cancellation


def unused_paid_amount(*, deployment_id: int, today: dt.date) -> tuple[Decimal, str]:
    """What the customer paid for the days of the current period from `today` on, and how it
    was reckoned.

    The price is what was actually paid for the period that contains today: the paid renewal
    invoice covering it, else (the first term) the new order's invoice. Of its lines, the plan
    and add-ons count, less a coupon's discount (a coupon discounts those; when it also covered
    the setup fee the credit errs low, never above what was paid). The setup fee is a one-off
    for work already done and is never given back; account credit spent on the invoice was
    money all the same, so it counts as paid. Prorated by days: price x days left / days in the
    period, quantized in the currency. A period paid ahead (starting after today) is not
    counted here: the termination listener sends it to staff for a refund, as for any
    termination, so it is never given back twice. Plan changes of the period count: the days
    left are worth the plan the server is on now (a paid upgrade adds its difference, a
    downgrade already credited takes it off, _plan_changes_in_period).
    """
    deployment = Deployment.objects.get(pk=deployment_id)
    if deployment.next_due_date is None or deployment.next_due_date <= today:
        return Decimal("0.00"), "nothing paid beyond today"
    order = Order.objects.get(deployment_id=deployment_id)
    period = _current_paid_period(order=order, deployment=deployment, today=today)
    if period is None:
        return Decimal("0.00"), "no paid invoice covers today"
    invoice, start, period_end = period
    end = min(period_end, deployment.next_due_date)
    counted = (InvoiceLineKind.PLAN, InvoiceLineKind.ADDON, InvoiceLineKind.DISCOUNT)
    paid_price = sum(
        (line.amount for line in invoice.lines.all() if line.kind in counted), Decimal("0")
    )
    changed, changes_note = _plan_changes_in_period(
        deployment_id=deployment_id, period_end=period_end
    )
    price = max(paid_price + changed, Decimal("0"))
    days_in_period = (period_end - start).days
    days_left = max(0, (end - today).days)
    if days_in_period <= 0 or days_left <= 0 or price <= 0:
        return Decimal("0.00"), f"nothing left of invoice {invoice.number}"
    amount = quantize(price * days_left / days_in_period, invoice.currency)
    return amount, (
        f"{days_left} of {days_in_period} days of {price} {invoice.currency} paid by invoice "
        f"{invoice.number}{changes_note}"
    )


def _plan_changes_in_period(*, deployment_id: int, period_end: dt.date) -> tuple[Decimal, str]:
    """How the plan changes settled in the period ending on `period_end` moved the price the
    unused days are worth: a paid, applied upgrade adds its price difference (the customer paid
    it for the days left), a downgrade credited at once takes its difference off (the customer
    got it back already). Without this a downgrade's difference is credited twice."""
    changes = PlanChange.objects.filter(
        deployment_id=deployment_id, period_end=period_end, prorated_amount__gt=0
    ).filter(
        Q(
            direction=PlanChangeDirection.UPGRADE,
            status=PlanChangeStatus.APPLIED,
            invoice__status=InvoiceStatus.PAID,
        )
        # A downgrade's credit is given when it is requested, whatever happens to it next.
        | Q(direction=PlanChangeDirection.DOWNGRADE)
    )
    delta = Decimal("0")
    for from_price, to_price in changes.values_list("from_price", "to_price"):
        delta += to_price - from_price
    if not delta:
        return Decimal("0"), ""
    return delta, f", {delta:+} a period by plan changes"


def _current_paid_period(
    *, order: Order, deployment: Deployment, today: dt.date
) -> tuple[Invoice, dt.date, dt.date] | None:
    paid = Invoice.objects.filter(deployment_id=deployment.pk, status=InvoiceStatus.PAID)
    renewal = (
        paid.filter(kind=InvoiceKind.RENEWAL, period_start__lte=today, period_end__gt=today)
        .order_by("-period_start")
        .first()
    )
    if renewal is not None and renewal.period_start and renewal.period_end:
        return renewal, renewal.period_start, renewal.period_end
    first = paid.filter(kind=InvoiceKind.NEW_ORDER).first()
    if first is None:
        return None
    # The first term ends where the first renewal starts (or, with none yet, at the
    # paid-through date) and began one billing cycle before, on its anniversary day (Jan 31 ->
    # Feb 28 -> Mar 31): the day the server became active (the paid period starts then), or
    # for a server from before that rule, the day the order was paid.
    first_renewal_start = (
        Invoice.objects.filter(deployment_id=deployment.pk, kind=InvoiceKind.RENEWAL)
        .order_by("period_start")
        .values_list("period_start", flat=True)
        .first()
    )
    end = first_renewal_start or deployment.next_due_date
    if end is None or end <= today:
        return None
    started = deployment.activated_at or order.confirmed_at
    anchor_day = billing_today(started).day if started else end.day
    months = BillingCycle(order.billing_cycle).months
    start = add_months(end, -months, anchor_day=anchor_day)
    return first, start, end


# --- Messages -----------------------------------------------------------------------------


def _portal_url(name: str, pk: int) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + reverse(name, args=[pk])


def _notify_scheduled(
    cancellation: Cancellation, *, deployment: Deployment, voided: list[str]
) -> None:
    when = cancellation.effective_on.isoformat()
    customer_context: dict[str, object] = {
        "server_name": deployment.name,
        "effective_on": when,
        "mode": cancellation.mode,
        "server_url": _portal_url("deployment-detail", deployment.pk),
    }
    if cancellation.mode == CancellationMode.IMMEDIATE:
        customer_context["refund"] = refund_rule()
    notification_send(
        event="cancellation_scheduled",
        user=deployment.customer,
        context=customer_context,
        event_key=f"cancellation_scheduled:cancellation-{cancellation.pk}",
    )
    staff_context: dict[str, object] = {
        "server_name": deployment.name,
        "customer_email": deployment.customer.email,
        "mode": cancellation.get_mode_display(),
        "effective_on": when,
        "admin_url": _portal_url("admin:billing_cancellation_change", cancellation.pk),
        "deployment_id": deployment.pk,
    }
    if cancellation.reason:
        staff_context["reason"] = cancellation.reason[:500]
    if voided:
        staff_context["voided_invoices"] = ", ".join(voided)
    notification_send(
        event="cancellation_staff",
        staff=True,
        context=staff_context,
        event_key=f"cancellation_staff:cancellation-{cancellation.pk}",
    )
