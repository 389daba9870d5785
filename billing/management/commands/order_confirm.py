import getpass

from django.core.management.base import BaseCommand, CommandError

from billing.models import InvoiceKind, InvoiceStatus
from billing.selectors import order_get_by_reference
from billing.services.payments import payment_record_manual
from common.actors import Actor
from common.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Confirm an order whose payment arrived outside Stripe (bank transfer): records a manual "
        "payment of the invoice total, confirms the order and hands it to provisioning."
    )

    def add_arguments(self, parser):
        parser.add_argument("order", help="Order number, e.g. 12 or #12")
        parser.add_argument("--reference", default="", help="Bank transfer reference")
        parser.add_argument("--note", default="", help="Note kept with the payment")

    def handle(self, *args, **options) -> None:
        try:
            order = order_get_by_reference(reference=options["order"])
            invoice = order.invoices.filter(kind=InvoiceKind.NEW_ORDER).first()
            if invoice is None:
                raise CommandError(f"{order} has no invoice.")
            if invoice.status != InvoiceStatus.UNPAID:
                raise CommandError(
                    f"{order} is {order.get_status_display().lower()}; invoice {invoice.number} is "
                    f"{invoice.get_status_display().lower()}. Nothing was changed."
                )
            payment_record_manual(
                invoice_id=invoice.pk,
                reference=options["reference"],
                note=options["note"],
                actor=Actor(label=f"cli:{getpass.getuser()}"),
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        order.refresh_from_db()
        self.stdout.write(
            self.style.SUCCESS(
                f"{order} confirmed (invoice {invoice.number} paid, "
                f"{invoice.total} {invoice.currency}); handed to provisioning."
            )
        )
