"""Keeping servers renewed: renewal invoices in sets, and what paying one does.

The job works on sets and is safe to run twice or concurrently (two beats): an invoice is unique
per (deployment, period) and each message has its own event key. What happens when a renewal
stays unpaid (reminders, suspension, termination) is billing.services.dunning.

Account credit: given a `settle_covered` callable (billing.services.renewal_credit passes one;
the jobs run through it), each batch spends the credit of the few customers who have some on
their new invoices (one query per batch finds them) and hands the fully covered invoices to
`settle_covered` in the batch's transaction, which pays them through billing.services.payments
(this module is below payments, so it cannot call it). Without one, no credit is spent.
"""

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from billing.models import (
    AddonPrice,
    BillingCycle,
    Cancellation,
    CancellationStatus,
    Invoice,
    InvoiceEvent,
    InvoiceKind,
    InvoiceLine,
    InvoiceLineKind,
    InvoiceStatus,
    Order,
    OrderAddon,
    Plan,
    PlanChange,
    PlanChangeStatus,
    PlanPrice,
)
from billing.notify import invoice_message_context, invoice_url_builder
from billing.services.credit import customers_with_credit, invoice_credit_apply
from billing.services.invoices import PricedLine, invoice_cancel, invoice_numbers_reserve
from common.actors import Actor
from common.bulk import copy_insert
from common.dates import add_months, billing_today
from common.money import quantize
from notifications.services import BulkMessage, Recipient, notification_send_many
from servers.models import Deployment, DeploymentStatus
from servers.services import deployment_set_next_due_date

logger = logging.getLogger(__name__)

LIVE = (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED)
NONPAYMENT = "nonpayment"
# How often a renewal batch is redone after a unique-index conflict before the run fails.
RENEWAL_BATCH_RETRIES = 3
# A row of a `.values()` query (server, order, add-on); one planned invoice: server, order,
# priced lines, due date, end of the period.
_Row = Mapping[str, Any]
_Planned = tuple[_Row, _Row, list["PricedLine"], dt.date, dt.date]
# Pays the batch's invoices that account credit covered in full ((id, currency) pairs), in the
# batch's transaction: billing.services.renewal_credit.renewal_invoices_settle_covered.
SettleCovered = Callable[[Sequence[tuple[int, str]]], None]


@dataclass(frozen=True)
class _Catalog:
    """Today's prices, loaded once per run (the catalog is small; the fleet is not)."""

    plans_by_slug: dict[str, tuple[int, str]]
    plans_by_id: dict[int, tuple[int, str]]
    plan_prices: dict[tuple[int, str, str], Decimal]
    addon_prices: dict[tuple[int, str, str], Decimal]

    @classmethod
    def load(cls) -> "_Catalog":
        plans = list(Plan.objects.order_by().values_list("pk", "slug", "name"))
        return cls(
            plans_by_slug={slug: (pk, name) for pk, slug, name in plans},
            plans_by_id={pk: (pk, name) for pk, _slug, name in plans},
            plan_prices={
                (plan_id, cycle, currency): amount
                for plan_id, cycle, currency, amount in PlanPrice.objects.order_by().values_list(
                    "plan_id", "billing_cycle", "currency", "amount"
                )
            },
            addon_prices={
                (addon_id, cycle, currency): amount
                for addon_id, cycle, currency, amount in AddonPrice.objects.order_by().values_list(
                    "addon_id", "billing_cycle", "currency", "amount"
                )
            },
        )

    def lines(
        self, *, order: _Row, plan_slug: str, addons: Sequence[_Row]
    ) -> list[PricedLine] | str:
        """Today's catalog prices for the server's current plan (after any plan change), cycle
        and add-ons (no setup fee, no coupon: those apply to the first invoice only); or why
        the renewal cannot be priced."""
        cycle, currency = order["billing_cycle"], order["currency"]
        cycle_label = BillingCycle(cycle).label
        plan_id, plan_name = self.plans_by_slug.get(plan_slug) or self.plans_by_id[order["plan_id"]]
        price = self.plan_prices.get((plan_id, cycle, currency))
        if price is None:
            return (
                f"{plan_name} has no {cycle} price in {currency}; cannot issue its renewal invoice."
            )
        lines = [PricedLine(InvoiceLineKind.PLAN, f"{plan_name} renewal ({cycle_label})", price)]
        for item in addons:
            ordered: Decimal = item["amount"]  # the add-on's price when it was ordered
            amount = self.addon_prices.get((item["addon_id"], cycle, currency), ordered)
            lines.append(
                PricedLine(InvoiceLineKind.ADDON, f"{item['name']} ({cycle_label})", amount)
            )
        return lines


def fleet_batch_size() -> int:
    return max(1, settings.FLEET_BATCH_SIZE)


def renewals_run(
    *,
    today: dt.date | None = None,
    dry_run: bool = False,
    batch_size: int | None = None,
    settle_covered: SettleCovered | None = None,
) -> dict[str, int]:
    """Issue the next period's invoice for every live server due within
    BILLING_RENEWAL_INVOICE_DAYS, in batches: each batch writes its invoices, lines, history
    rows and messages in a constant number of statements, and queues one send task.

    Safe to run twice or concurrently: the batch's servers are locked (SKIP LOCKED) and checked
    for an invoice of the period in the same statement, and the partial unique index
    (deployment, period_start) backs it up. Invoice numbers come as one block per batch.

    With `settle_covered`, customers' account credit is spent on their new invoices (see the
    module docstring); "credit_applied" counts the invoices it paid part or all of.
    """
    today = today or billing_today()
    horizon = today + dt.timedelta(days=settings.BILLING_RENEWAL_INVOICE_DAYS)
    size = batch_size or fleet_batch_size()
    catalog = _Catalog.load()
    counts = {"invoices": 0, "not_priced": 0, "batches": 0, "credit_applied": 0}
    timings = _Timings()
    after = 0
    conflicts = 0
    while True:
        try:
            with transaction.atomic():
                batch = _renewal_batch(
                    after=after,
                    horizon=horizon,
                    today=today,
                    size=size,
                    catalog=catalog,
                    dry_run=dry_run,
                    timings=timings,
                    settle_covered=settle_covered,
                )
        except IntegrityError:
            # A server invoiced by a concurrent writer between our snapshot and our lock (SKIP
            # LOCKED does not re-check): the batch rolled back whole, numbers included; the
            # same page again sees that invoice and leaves the server out.
            conflicts += 1
            if conflicts > RENEWAL_BATCH_RETRIES:
                raise
            logger.warning("renewal batch after deployment %s conflicted; retrying", after)
            continue
        if batch is None:
            break
        after, issued, not_priced, credited = batch
        counts["batches"] += 1
        counts["invoices"] += issued
        counts["not_priced"] += not_priced
        counts["credit_applied"] += credited
    return counts | timings.as_counts()


def renewal_invoices_issue(*, today: dt.date | None = None) -> int:
    """Issue every due renewal invoice now; returns how many were issued."""
    return renewals_run(today=today)["invoices"]


@dataclass
class _Timings:
    """Where a run spends its time (reported with the counts): finding and pricing the due
    servers and writing invoice headers and lines; history rows; the customers' messages."""

    invoices: float = 0.0
    history: float = 0.0
    messages: float = 0.0

    def as_counts(self) -> dict[str, int]:
        return {
            "ms_invoices_and_lines": round(self.invoices * 1000),
            "ms_history": round(self.history * 1000),
            "ms_messages": round(self.messages * 1000),
        }


def _due_for_renewal(*, after: int, horizon: dt.date) -> QuerySet[Deployment]:
    # A voided invoice of the period does not count: a cancellation voids the next period's
    # renewal, and once it is revoked that period is invoiced again (a new number).
    already = Invoice.objects.filter(
        deployment=OuterRef("pk"), kind=InvoiceKind.RENEWAL, period_start=OuterRef("next_due_date")
    ).exclude(status=InvoiceStatus.CANCELLED)
    # A server with a scheduled cancellation is never billed again: it ends on its paid-through
    # date (end of term), today (immediate), or, when that date had already passed when it
    # was cancelled, at the cancellations job's next run. (The one-scheduled-per-server
    # constraint's partial unique index answers this.)
    ending = Cancellation.objects.filter(
        deployment=OuterRef("pk"), status=CancellationStatus.SCHEDULED
    )
    # order_by("pk") replaces the model's default ordering (-created_at): keyset pages on the
    # primary key, a plan PostgreSQL keeps whatever the statistics say.
    return (
        Deployment.objects.filter(status__in=LIVE, next_due_date__lte=horizon, pk__gt=after)
        .filter(~Exists(already), ~Exists(ending))
        .order_by("pk")
    )


def _renewal_batch(
    *,
    after: int,
    horizon: dt.date,
    today: dt.date,
    size: int,
    catalog: _Catalog,
    dry_run: bool,
    timings: "_Timings | None" = None,
    settle_covered: SettleCovered | None = None,
) -> tuple[int, int, int, int] | None:
    """One batch (inside the caller's transaction): (last id seen, issued, not priced, invoices
    account credit was spent on)."""
    timings = timings or _Timings()
    clock = time.monotonic()
    due = _due_for_renewal(after=after, horizon=horizon)
    if not dry_run:
        due = due.select_for_update(skip_locked=True, of=("self",))
    servers = list(due.values("pk", "customer_id", "name", "plan_slug", "next_due_date")[:size])
    if not servers:
        return None
    last_id = servers[-1]["pk"]
    orders = {
        row["deployment_id"]: row
        for row in Order.objects.filter(deployment_id__in=[s["pk"] for s in servers])
        .order_by()
        .values(
            "pk",
            "deployment_id",
            "billing_cycle",
            "currency",
            "confirmed_at",
            "completed_at",
            "plan_id",
        )
    }
    addons: dict[int, list[_Row]] = defaultdict(list)
    for item in (
        OrderAddon.objects.filter(order_id__in=[o["pk"] for o in orders.values()])
        .order_by("order_id", "pk")
        .values("order_id", "addon_id", "name", "amount")
    ):
        addons[item["order_id"]].append(item)
    # A downgrade scheduled for the end of the period (billing.services.plan_changes): the
    # next period is billed at the new plan. One query per batch (the open-change index).
    scheduled_plans = dict(
        PlanChange.objects.filter(
            deployment_id__in=[s["pk"] for s in servers], status=PlanChangeStatus.SCHEDULED
        )
        .order_by()
        .values_list("deployment_id", "to_plan__slug")
    )
    # Issued late (e.g. its price was missing): the customer still gets the reminder period.
    earliest_due = today + dt.timedelta(days=settings.BILLING_REMINDER_DAYS)
    planned: list[_Planned] = []
    not_priced = 0
    for server in servers:
        order = orders.get(server["pk"])
        if order is None:
            logger.error("renewal of deployment %s not invoiced: it has no order", server["pk"])
            not_priced += 1
            continue
        lines = catalog.lines(
            order=order,
            plan_slug=scheduled_plans.get(server["pk"], server["plan_slug"]),
            addons=addons.get(order["pk"], []),
        )
        if isinstance(lines, str):
            logger.error("renewal of deployment %s not invoiced: %s", server["pk"], lines)
            not_priced += 1
            continue
        start = server["next_due_date"]
        if start is None:  # never: _due_for_renewal selects on next_due_date__lte
            continue
        # Anniversaries keep the first period's day (Jan 31 -> Feb 28 -> Mar 31, no drift): the
        # day the server became active (the paid period starts then), else of the payment.
        first_day = order["completed_at"] or order["confirmed_at"]
        anchor_day = billing_today(first_day).day if first_day else start.day
        months = BillingCycle(order["billing_cycle"]).months
        period_end = add_months(start, months, anchor_day=anchor_day)
        planned.append((server, order, lines, max(start, earliest_due), period_end))
    credited = 0
    if not dry_run and planned:
        credited = _renewal_invoices_write(
            planned, today=today, timings=timings, clock=clock, settle_covered=settle_covered
        )
    else:
        timings.invoices += time.monotonic() - clock
    return last_id, len(planned), not_priced, credited


def _renewal_invoices_write(
    planned: list[_Planned],
    *,
    today: dt.date,
    timings: _Timings,
    clock: float,
    settle_covered: SettleCovered | None = None,
) -> int:
    """Headers, lines, history and messages of one batch: a constant number of statements, and
    plain dicts rather than model instances (the rows go straight to COPY); account credit on
    the invoices of customers who have some. Returns how many invoices credit was spent on."""
    now = timezone.now()
    numbers = invoice_numbers_reserve(year=today.year, count=len(planned))
    invoices = []
    for number, (server, order, lines, due_date, period_end) in zip(numbers, planned, strict=True):
        currency = order["currency"].upper()
        subtotal = sum((quantize(line.amount, currency) for line in lines), Decimal("0"))
        invoices.append(
            {
                "number": number,
                "customer_id": server["customer_id"],
                "order_id": order["pk"],
                "deployment_id": server["pk"],
                "kind": InvoiceKind.RENEWAL,
                "currency": currency,
                "subtotal": subtotal,
                "discount_total": Decimal("0"),
                "total": subtotal,
                "status": InvoiceStatus.UNPAID,
                "issued_at": now,
                "due_date": due_date,
                "period_start": server["next_due_date"],
                "period_end": period_end,
            }
        )
    # COPY (common.bulk): one statement per table, the ids reserved first so lines and history
    # rows can point at their invoice in the same batch.
    ids = copy_insert(Invoice, invoices)
    for invoice, invoice_id in zip(invoices, ids, strict=True):
        invoice["id"] = invoice_id
    copy_insert(
        InvoiceLine,
        [
            {
                "invoice_id": invoice["id"],
                "kind": line.kind,
                "description": line.description[:255],
                "quantity": line.quantity,
                "unit_amount": quantize(line.unit_amount, invoice["currency"]),
                "amount": quantize(line.amount, invoice["currency"]),
                "position": position,
            }
            for invoice, (_server, _order, lines, _due, _end) in zip(invoices, planned, strict=True)
            for position, line in enumerate(lines)
        ],
    )
    history_clock = time.monotonic()
    timings.invoices += history_clock - clock
    actor = Actor.system("renewals")
    # The rows INVOICE_STATES.record_created would write, as COPY dicts (no instance per row).
    copy_insert(
        InvoiceEvent,
        [
            {
                "invoice_id": invoice["id"],
                "actor_id": None,
                "actor_label": actor.label,
                "from_status": "",
                "to_status": InvoiceStatus.UNPAID,
                "reason": f"Issued for Order #{invoice['order_id']} (renewal "
                f"{invoice['period_start']} to {invoice['period_end']})",
            }
            for invoice in invoices
        ],
    )
    credited, covered = _renewal_credit_apply(invoices) if settle_covered is not None else (0, [])
    messages_clock = time.monotonic()
    timings.history += messages_clock - history_clock
    recipients = customer_recipients({invoice["customer_id"] for invoice in invoices})
    names = {server["pk"]: server["name"] for server, *_rest in planned}
    url = invoice_url_builder()
    notification_send_many(
        event="invoice_created",
        messages=[
            BulkMessage(
                user=recipients[invoice["customer_id"]],
                context=invoice_message_context(
                    invoice, server_name=names[invoice["deployment_id"]], url=url
                ),
                event_key=f"invoice_created:{invoice['number']}",
            )
            for invoice in invoices
            # Paid in full by credit: the customer hears "payment received" instead.
            if invoice["total"] > 0
        ],
    )
    if covered and settle_covered is not None:
        settle_covered(covered)
    timings.messages += time.monotonic() - messages_clock
    return credited


def _renewal_credit_apply(
    invoices: list[dict[str, Any]],
) -> tuple[int, list[tuple[int, str]]]:
    """Spend account credit on the batch's invoices whose customer has a balance in their
    currency: one query finds them (a customer without credit costs nothing more), then one
    invoice_credit_apply per such invoice (rare). Updates the dicts (the messages show what is
    left to pay); returns (invoices credit was spent on, those it covered in full)."""
    with_credit = customers_with_credit(
        pairs={(invoice["customer_id"], invoice["currency"]) for invoice in invoices}
    )
    if not with_credit:
        return 0, []
    actor = Actor.system("credit")
    credited, covered = 0, []  # covered: (id, currency)
    # In customer order: each apply locks its customer's row, and two concurrent batches then
    # take those locks in the same order (no deadlock).
    for invoice in sorted(
        (i for i in invoices if (i["customer_id"], i["currency"]) in with_credit),
        key=lambda i: (i["customer_id"], i["id"]),
    ):
        applied = invoice_credit_apply(invoice_id=invoice["id"], actor=actor)
        if not applied:
            continue
        credited += 1
        invoice["credit_applied"] = applied
        invoice["total"] -= applied
        if invoice["total"] == 0:
            covered.append((invoice["id"], invoice["currency"]))
    return credited, covered


def customer_recipients(customer_ids: set[int]) -> dict[int, Recipient]:
    return {
        pk: Recipient(pk=pk, email=email)
        for pk, email in get_user_model()
        .objects.filter(pk__in=customer_ids)
        .order_by()
        .values_list("pk", "email")
    }


def renewal_paid(*, invoice: Invoice, actor: Actor) -> bool:
    """A renewal invoice was paid (inside the payment's transaction): extend the server's
    paid-through date. Returns True when the server is suspended and should be unsuspended."""
    period_end = invoice.period_end
    if invoice.deployment_id is None or period_end is None:
        raise ValueError(f"Invoice {invoice.number} is not a renewal of a server's period.")
    deployment = Deployment.objects.select_for_update().get(pk=invoice.deployment_id)
    if deployment.next_due_date is None or deployment.next_due_date < period_end:
        deployment_set_next_due_date(
            deployment_id=deployment.pk,
            next_due_date=period_end,
            actor=actor,
            reason=f"Invoice {invoice.number} paid for {invoice.period_start} to "
            f"{invoice.period_end}",
        )
    return (
        deployment.status == DeploymentStatus.SUSPENDED
        and deployment.suspension_cause == NONPAYMENT
        and not has_overdue_renewal(deployment.pk)
    )


def renewal_invoices_cancel_for(*, deployment_id: int, reason: str) -> None:
    """After termination: unpaid renewal invoices of the server are void."""
    for invoice in Invoice.objects.filter(
        deployment_id=deployment_id, kind=InvoiceKind.RENEWAL, status=InvoiceStatus.UNPAID
    ):
        invoice_cancel(invoice_id=invoice.pk, actor=Actor.system("renewals"), reason=reason)


def has_overdue_renewal(deployment_id: int, *, today: dt.date | None = None) -> bool:
    """An unpaid renewal invoice past its due date plus the suspension grace."""
    grace = dt.timedelta(days=settings.SUSPENSION_GRACE_DAYS)
    return Invoice.objects.filter(
        deployment_id=deployment_id,
        kind=InvoiceKind.RENEWAL,
        status=InvoiceStatus.UNPAID,
        due_date__lte=(today or billing_today()) - grace,
    ).exists()
