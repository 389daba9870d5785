from django.core.management.base import BaseCommand

from billing.services.catalog import catalog_seed_default
from servers.demo import demo_servers_seed


class Command(BaseCommand):
    help = (
        "Load the default catalog (Bronze..Diamond game plans, Starter/Pro/Business bot tiers, "
        "the Private Instance add-on) idempotently, honouring <PACKAGE>_EGG_ID/_DOCKER_IMAGE/"
        "_STARTUP overrides. Also creates the demo locations eu/us with a node each and the demo "
        "eggs if they do not exist yet (sync_panel replaces them with the panel's)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--currency", help="Currency of the prices (default: billing default)")
        parser.add_argument(
            "--no-demo-servers", action="store_true", help="Do not create demo locations/nodes"
        )

    def handle(self, *args, **options) -> None:
        if not options["no_demo_servers"]:
            created = demo_servers_seed()
            self.stdout.write(
                "Demo servers: "
                + ", ".join(f"{count} {what} created" for what, count in created.items())
            )
        report = catalog_seed_default(currency=options["currency"])
        self.stdout.write(self.style.SUCCESS(f"Catalog: {report}"))
