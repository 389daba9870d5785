from django.core.management.base import BaseCommand, CommandError

from billing.selectors import order_get_by_reference
from common.actors import Actor
from common.errors import ApplicationError
from provisioning.saga.steps import STEP_NAMES
from provisioning.services import provisioning_retry


class Command(BaseCommand):
    help = "Start provisioning of an order again after a failure (or when it waits for staff)."

    def add_arguments(self, parser):
        parser.add_argument("order", help="Order number, e.g. 12 or #12")
        parser.add_argument("--from-step", choices=STEP_NAMES, default=STEP_NAMES[0])

    def handle(self, *args, **options) -> None:
        import getpass

        try:
            order = order_get_by_reference(reference=options["order"])
            run = provisioning_retry(
                deployment_id=order.deployment_id,
                actor=Actor(label=f"cli:{getpass.getuser()}"),
                from_step=STEP_NAMES.index(options["from_step"]),
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        run.refresh_from_db()
        step = STEP_NAMES[min(run.step_index, len(STEP_NAMES) - 1)]
        message = f"{order}: provisioning run #{run.pk} {run.status} (step {step})"
        self.stdout.write(self.style.SUCCESS(message))
