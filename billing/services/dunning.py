"""Dunning: what happens to unpaid renewals, in sets.

Reminders, overdue notices and suspension warnings are queued in batches (each invoice records
when each was queued, so a re-run selects nothing). Suspension, unsuspension and termination
become PanelOperation rows, one open per server, worked off by the drain; when an operation's
turn comes, `dunning_execute` checks again that it is still wanted (paid meanwhile, suspended by
staff, already done) before it calls the panel.
"""

import datetime as dt
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.urls import reverse
from django.utils import timezone

from billing.models import Invoice, InvoiceKind, InvoiceStatus, Order
from billing.notify import invoice_message_context, invoice_url_builder
from billing.services.renewals import (
    LIVE,
    NONPAYMENT,
    customer_recipients,
    fleet_batch_size,
    has_overdue_renewal,
)
from common.actors import Actor
from common.dates import billing_today
from common.errors import ApplicationError, CommonErrorCode
from notifications.services import BulkMessage, notification_send, notification_send_many
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
from provisioning.operations import (
    PanelServerMissing,
    deployment_suspend,
    deployment_terminate,
    deployment_unsuspend,
)
from provisioning.pterodactyl import PterodactylClient
from servers.models import Deployment, DeploymentStatus

logger = logging.getLogger(__name__)

# PanelOperation.params["source"] of the operations billing decides (run by dunning_execute).
DUNNING_SOURCE = "dunning"


def _unpaid_renewals() -> QuerySet[Invoice]:
    return Invoice.objects.filter(
        kind=InvoiceKind.RENEWAL, status=InvoiceStatus.UNPAID, deployment__status__in=LIVE
    )


def _overdue_invoice(today: dt.date) -> QuerySet[Invoice]:
    """An unpaid renewal of the outer deployment past its due date plus the suspension grace."""
    grace = dt.timedelta(days=settings.SUSPENSION_GRACE_DAYS)
    return Invoice.objects.filter(
        deployment=OuterRef("pk"),
        kind=InvoiceKind.RENEWAL,
        status=InvoiceStatus.UNPAID,
        due_date__lte=today - grace,
    )


def dunning_run(*, today: dt.date | None = None, dry_run: bool = False) -> dict[str, int]:
    """Reminders, overdue notices, suspension warnings, and the panel work of unpaid servers.

    Messages go out in batches (one send task a batch); each invoice records when each message
    was queued, so a re-run selects nothing new. Suspensions, terminations and unsuspensions
    become PanelOperation rows (one open per server, a constraint): the drain task works them
    off inside the panel budget and checks each one again when its turn comes. Returns counts.
    """
    today = today or billing_today()
    grace = dt.timedelta(days=settings.SUSPENSION_GRACE_DAYS)
    warning = dt.timedelta(days=settings.SUSPENSION_WARNING_DAYS)
    reminder_day = today + dt.timedelta(days=settings.BILLING_REMINDER_DAYS)
    counts = {
        "reminders": _notices_send(
            event="invoice_reminder",
            marker="reminder_sent_at",
            invoices=_unpaid_renewals().filter(due_date__lte=reminder_day, due_date__gte=today),
            dry_run=dry_run,
        ),
        "overdue_notices": _notices_send(
            event="invoice_overdue",
            marker="overdue_notice_sent_at",
            invoices=_unpaid_renewals().filter(due_date__lt=today),
            dry_run=dry_run,
            with_suspension_date=True,
        ),
        # The day(s) before the suspension: suspension date = due date + grace.
        "suspension_warnings": _notices_send(
            event="suspension_warning",
            marker="suspension_warning_sent_at",
            invoices=_unpaid_renewals().filter(
                deployment__status=DeploymentStatus.ACTIVE,
                due_date__lte=today - grace + warning,
                due_date__gt=today - grace,
            ),
            dry_run=dry_run,
            with_suspension_date=True,
        ),
    }
    overdue = _overdue_invoice(today)
    cutoff = timezone.now() - dt.timedelta(days=settings.TERMINATION_GRACE_DAYS)
    unpaid_suspended = Deployment.objects.filter(
        status=DeploymentStatus.SUSPENDED, suspension_cause=NONPAYMENT
    )
    counts["suspend"] = _operations_request(
        kind=PanelOperationKind.SUSPEND,
        servers=Deployment.objects.filter(status=DeploymentStatus.ACTIVE).filter(Exists(overdue)),
        reason="Renewal invoice unpaid past the grace period",
        dry_run=dry_run,
    )
    counts["terminate"] = _operations_request(
        kind=PanelOperationKind.TERMINATE,
        servers=unpaid_suspended.filter(suspended_at__lte=cutoff).filter(Exists(overdue)),
        reason="Suspended and unpaid past the termination grace period",
        dry_run=dry_run,
    )
    # Paid, but still suspended (e.g. the panel was down when the payment came): every run
    # asks again until the panel takes the unsuspension.
    counts["unsuspend"] = _operations_request(
        kind=PanelOperationKind.UNSUSPEND,
        servers=unpaid_suspended.filter(~Exists(overdue)),
        reason="Renewal paid",
        dry_run=dry_run,
    )
    return counts


def _notices_send(
    *,
    event: str,
    marker: str,
    invoices: QuerySet[Invoice],
    dry_run: bool,
    with_suspension_date: bool = False,
) -> int:
    """Queue `event` for every invoice of the set not yet marked, in batches; returns the count
    of invoices messaged (or that would be, in a dry run)."""
    grace = dt.timedelta(days=settings.SUSPENSION_GRACE_DAYS)
    pending = invoices.filter(**{f"{marker}__isnull": True}).order_by("pk")
    url = invoice_url_builder()
    total, after = 0, 0
    while True:
        with transaction.atomic():
            batch = pending.filter(pk__gt=after)
            if not dry_run:
                batch = batch.select_for_update(skip_locked=True, of=("self",))
            rows = list(
                batch.values(
                    "id",
                    "number",
                    "total",
                    "credit_applied",
                    "currency",
                    "due_date",
                    "customer_id",
                    "deployment__name",
                )[: fleet_batch_size()]
            )
            if not rows:
                return total
            after = rows[-1]["id"]
            total += len(rows)
            if dry_run:
                continue
            recipients = customer_recipients({row["customer_id"] for row in rows})
            notification_send_many(
                event=event,
                messages=[
                    BulkMessage(
                        user=recipients[row["customer_id"]],
                        context=invoice_message_context(
                            row,
                            server_name=row["deployment__name"],
                            suspension_date=row["due_date"] + grace
                            if with_suspension_date
                            else None,
                            url=url,
                        ),
                        event_key=f"{event}:{row['number']}",
                    )
                    for row in rows
                ],
            )
            Invoice.objects.filter(pk__in=[row["id"] for row in rows]).update(
                **{marker: timezone.now()}
            )


def _operations_request(
    *, kind: PanelOperationKind, servers: QuerySet[Deployment], reason: str, dry_run: bool
) -> int:
    """Request `kind` for every server of the set that has no open panel operation (and whose
    last one of this kind did not fail within the hour), in batches; returns how many rows
    were new (a re-run: 0)."""
    recently_failed = PanelOperation.objects.filter(
        deployment=OuterRef("pk"),
        kind=kind,
        status=PanelOperationStatus.FAILED,
        finished_at__gte=timezone.now() - dt.timedelta(hours=1),
    )
    open_operation = PanelOperation.objects.filter(
        deployment=OuterRef("pk"), status__in=OPEN_OPERATION_STATUSES
    )
    wanted = (
        servers.filter(~Exists(open_operation), ~Exists(recently_failed))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    total, after = 0, 0
    while True:
        ids = list(wanted.filter(pk__gt=after)[: fleet_batch_size()])
        if not ids:
            return total
        after = ids[-1]
        if dry_run:
            total += len(ids)
            continue
        total += panel_operations_request(
            requests=[
                OperationRequest(
                    kind=kind,
                    reason=reason,
                    deployment_id=deployment_id,
                    params={"source": DUNNING_SOURCE, "cause": NONPAYMENT},
                )
                for deployment_id in ids
            ],
            actor=Actor.system("dunning"),
        )


def unpaid_server_unsuspend_request(*, deployment_id: int, reason: str) -> int:
    """Ask the drain to lift a non-payment suspension (a renewal was just paid)."""
    return panel_operations_request(
        requests=[
            OperationRequest(
                kind=PanelOperationKind.UNSUSPEND,
                reason=reason,
                deployment_id=deployment_id,
                params={"source": DUNNING_SOURCE, "cause": NONPAYMENT},
            )
        ],
        actor=Actor.system("renewals"),
        supersede=True,  # a paying customer waits: less urgent pending work gives way
    )


def _already(exc: ApplicationError) -> bool:
    """A concurrent run (two beats) got there first."""
    return exc.code in (ProvisioningErrorCode.INVALID_STATE, CommonErrorCode.INVALID_TRANSITION)


def dunning_execute(*, operation: PanelOperation, client: PterodactylClient) -> OperationResult:
    """Run one panel operation the dunning job decided (the drain calls this when its turn
    comes): each kind checks again that it is still wanted. A server missing on the panel goes
    to staff once; retrying would not help."""
    executors: dict[str, Callable[..., OperationResult]] = {
        PanelOperationKind.SUSPEND: unpaid_server_suspend,
        PanelOperationKind.TERMINATE: unpaid_server_terminate,
        PanelOperationKind.UNSUSPEND: paid_server_unsuspend,
    }
    execute = executors.get(operation.kind)
    if execute is None:
        raise ValueError(f"dunning does not run {operation.kind} operations")
    deployment_id = operation.deployment_id
    if deployment_id is None:
        raise ValueError(f"dunning operation {operation.pk} has no server")
    try:
        return execute(deployment_id=deployment_id, client=client)
    except PanelServerMissing as exc:
        dunning_panel_problem(
            deployment_id=deployment_id, operation=operation.kind, error=exc.message
        )
        return OperationResult(
            outcome=f"server missing on the panel; staff alerted ({exc.message})", failed=True
        )


def _verified(deployment: Deployment) -> bool | None:
    return getattr(deployment, "panel_verified", None)


def unpaid_server_suspend(
    *, deployment_id: int, client: PterodactylClient | None = None
) -> OperationResult:
    """Suspend on the panel if still unpaid past the grace period (checked again here)."""
    if not has_overdue_renewal(deployment_id):
        return OperationResult(outcome="paid meanwhile", skipped=True)
    try:
        deployment = deployment_suspend(
            deployment_id=deployment_id,
            actor=Actor.system("dunning"),
            reason="Renewal invoice unpaid past the grace period",
            cause=NONPAYMENT,
            client=client,
        )
    except ApplicationError as exc:
        if _already(exc):
            return OperationResult(outcome="not active", skipped=True)
        raise
    if not has_overdue_renewal(deployment_id):
        # Paid while the panel call ran (the payment saw the server still active).
        deployment = deployment_unsuspend(
            deployment_id=deployment_id,
            actor=Actor.system("dunning"),
            reason="Renewal paid during the suspension",
            client=client,
        )
        return OperationResult(outcome="paid during suspension", verified=_verified(deployment))
    return OperationResult(outcome="suspended", verified=_verified(deployment))


def unpaid_server_terminate(
    *, deployment_id: int, client: PterodactylClient | None = None
) -> OperationResult:
    """Terminate a server suspended for non-payment that is still overdue past the grace."""
    deployment = Deployment.objects.get(pk=deployment_id)
    cutoff = timezone.now() - dt.timedelta(days=settings.TERMINATION_GRACE_DAYS)
    if not (
        deployment.status == DeploymentStatus.SUSPENDED
        and deployment.suspension_cause == NONPAYMENT
        and deployment.suspended_at
        and deployment.suspended_at <= cutoff
        and has_overdue_renewal(deployment_id)
    ):
        follow_up = None
        if (
            deployment.status == DeploymentStatus.SUSPENDED
            and deployment.suspension_cause == NONPAYMENT
            and not has_overdue_renewal(deployment_id)
        ):
            # Paid while the termination waited: lift the suspension next.
            follow_up = OperationRequest(
                kind=PanelOperationKind.UNSUSPEND,
                reason="Renewal paid",
                deployment_id=deployment_id,
                params={"source": DUNNING_SOURCE, "cause": NONPAYMENT},
            )
        return OperationResult(outcome="not due", skipped=True, follow_up=follow_up)
    try:
        # Its unpaid renewal invoices are voided by billing's termination listener.
        deployment = deployment_terminate(
            deployment_id=deployment_id,
            actor=Actor.system("dunning"),
            reason="Suspended and unpaid past the termination grace period",
            client=client,
        )
    except ApplicationError as exc:
        if _already(exc):
            return OperationResult(outcome="already terminated", skipped=True)
        raise
    return OperationResult(outcome="terminated", verified=_verified(deployment))


def paid_server_unsuspend(
    *, deployment_id: int, client: PterodactylClient | None = None
) -> OperationResult:
    """Lift a non-payment suspension once nothing is overdue (never a staff suspension)."""
    deployment = Deployment.objects.get(pk=deployment_id)
    if deployment.status != DeploymentStatus.SUSPENDED:
        return OperationResult(outcome="not suspended", skipped=True)
    if deployment.suspension_cause != NONPAYMENT:
        return OperationResult(outcome="suspended by staff", skipped=True)
    if has_overdue_renewal(deployment_id):
        return OperationResult(outcome="still owes an overdue invoice", skipped=True)
    try:
        deployment = deployment_unsuspend(
            deployment_id=deployment_id,
            actor=Actor.system("renewals"),
            reason="Renewal paid",
            client=client,
        )
    except ApplicationError as exc:
        if _already(exc):
            return OperationResult(outcome="not suspended", skipped=True)
        raise
    return OperationResult(outcome="unsuspended", verified=_verified(deployment))


def dunning_panel_problem(*, deployment_id: int, operation: str, error: str) -> None:
    """Tell staff once that a renewal job cannot act on a server on the panel."""
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
