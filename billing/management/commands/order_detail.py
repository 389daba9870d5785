import json

from django.core.management.base import BaseCommand, CommandError

from billing.selectors import order_get_by_reference
from common.errors import ApplicationError
from provisioning.pterodactyl import PanelError
from provisioning.saga.dry_run import provisioning_plan
from provisioning.selectors import run_timeline, runs_for_deployment


class Command(BaseCommand):
    help = "Print an order: customer, plan, deployment, invoices, payments and full history."

    def add_arguments(self, parser):
        parser.add_argument("order", help="Order number, e.g. 12 or #12")
        parser.add_argument(
            "--plan",
            action="store_true",
            help="Dry run: print the exact panel payload and placement; changes nothing",
        )

    def handle(self, *args, **options) -> None:
        try:
            order = order_get_by_reference(reference=options["order"])
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if options["plan"]:
            self._plan(order)
            return
        out = self.stdout.write
        deployment = order.deployment
        out(f"{order}  status={order.status}  placed={order.created_at:%Y-%m-%d %H:%M:%S %Z}")
        out(f"  customer:   {order.customer.get_username()} <{order.customer.email}>")
        out(
            f"  plan:       {order.plan.name} ({order.plan.slug}), {order.billing_cycle}, "
            f"location {order.location.short_code}"
        )
        addons = ", ".join(a.name for a in order.order_addons.all()) or "-"
        out(f"  add-ons:    {addons}   coupon: {order.coupon.code if order.coupon else '-'}")
        out(f"  server:     {order.server_name}")
        if order.last_error:
            out(f"  last error: {order.last_error}")
        out(
            f"  deployment: #{deployment.pk} status={deployment.status} "
            f"next_due={deployment.next_due_date or '-'} "
            f"address={deployment.connection_address or '-'} "
            f"panel_server={deployment.panel_server_id or '-'}"
        )
        request = getattr(deployment, "provisioning_request", None)
        if request is not None:
            out(
                f"  provisioning request: #{request.pk} status={request.status} "
                f"automatic={request.automatic} requested_by={request.requested_by}"
            )
        else:
            out("  provisioning request: none")
        for run in runs_for_deployment(deployment_id=deployment.pk):
            out(
                f"  run #{run.pk}: {run.status}, step {run.step_index}, started "
                f"{run.started_at:%Y-%m-%d %H:%M:%S}, by {run.triggered_by}; panel user "
                f"{run.panel_user_id or '-'}, server {run.panel_server_id or '-'}, node "
                f"{run.node.name if run.node else '-'}"
            )
            if run.placement_reason:
                out(f"      placement: {run.placement_reason}")
            if run.last_error:
                out(f"      error: {run.last_error}")
            for step in run_timeline(run):
                out(
                    f"      {step['started_at']:%H:%M:%S} {step['direction']:<10} "
                    f"{step['step']:<12} #{step['attempt']} {step['status']:<10} "
                    f"{step['duration_ms'] if step['duration_ms'] is not None else '-':>6} ms"
                    + (f"  {step['error'][:120]}" if step["error"] else "")
                )
        for invoice in order.invoices.all().order_by("id"):
            out(
                f"  invoice {invoice.number}: {invoice.status}, total {invoice.total} "
                f"{invoice.currency} (subtotal {invoice.subtotal}, discount "
                f"{invoice.discount_total}), due {invoice.due_date}"
            )
            for line in invoice.lines.all():
                out(f"      {line.kind:<10} {line.description:<40} {line.amount:>10}")
            for payment in invoice.payments.all():
                out(
                    f"      payment: {payment.provider} {payment.amount} {payment.currency} "
                    f"ref={payment.reference or '-'} by {payment.actor_label} "
                    f"at {payment.created_at:%Y-%m-%d %H:%M:%S}"
                )
        out("  history:")
        rows = [(e.created_at, "order", e) for e in order.events.all()]
        for invoice in order.invoices.all():
            rows += [(e.created_at, f"invoice {invoice.number}", e) for e in invoice.events.all()]
        rows += [(e.created_at, "deployment", e) for e in deployment.events.all()]
        if request is not None:
            rows += [(e.created_at, "provisioning", e) for e in request.events.all()]
        for when, what, event in sorted(rows, key=lambda row: row[0]):
            out(
                f"    {when:%Y-%m-%d %H:%M:%S} {what:<22} {event.from_status or '-':>12} -> "
                f"{event.to_status:<12} by {event.actor_label}: {event.reason}"
            )

    def _plan(self, order) -> None:
        try:
            plan = provisioning_plan(deployment_id=order.deployment_id)
        except PanelError as exc:
            raise CommandError(f"could not read the panel: {exc}") from exc
        self.stdout.write(f"{order}: dry run (nothing was created or reserved)")
        self.stdout.write(f"placement: {plan['placement']}")
        if plan["node"] is None:
            self.stdout.write("the saga would not place it: no node chosen")
        if plan["refusal"]:
            self.stdout.write(f"the saga would fail: {plan['refusal']}")
        self.stdout.write("POST /api/application/servers")
        self.stdout.write(json.dumps(plan["payload"], indent=2, sort_keys=True))
