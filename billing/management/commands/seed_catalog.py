from django.core.management.base import BaseCommand

from billing.services.catalog import catalog_seed_default
from servers.demo import demo_servers_seed


class Command(BaseCommand):
    help = (
        "Load the default catalog (Bronze..Diamond game plans, Starter/Pro/Business bot tiers, "
        "the Private Instance add-on) idempotently, honouring <PACKAGE>_EGG_ID/_DOCKER_IMAGE/"
        "_STARTUP overrides. On an empty panel mirror it also creates the demo locations eu/us "
        "with a node each and the demo eggs; once sync_panel has imported the panel's, it never "
        "creates or changes any."
    )

    def add_arguments(self, parser):
        parser.add_argument("--currency", help="Currency of the prices (default: billing default)")
        parser.add_argument(
            "--no-demo-servers", action="store_true", help="Do not create demo locations/nodes"
        )

    def handle(self, *args, **options) -> None:
        if not options["no_demo_servers"]:
            created = demo_servers_seed()
            if any(created.values()):
                self.stdout.write(
                    "Demo servers: "
                    + ", ".join(f"{count} {what} created" for what, count in created.items())
                )
            else:
                self.stdout.write("Demo servers: none created (the panel mirror is not empty).")
        report = catalog_seed_default(currency=options["currency"])
        self.stdout.write(self.style.SUCCESS(f"Catalog: {report}"))
