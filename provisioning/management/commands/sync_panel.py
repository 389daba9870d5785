from django.core.management.base import BaseCommand, CommandError

from provisioning.panel_sync import panel_sync
from provisioning.pterodactyl import PanelError, PterodactylClient


class Command(BaseCommand):
    help = (
        "Import locations, nodes (capacity, allocated resources, free allocations), nests, eggs "
        "and egg variables from the panel. Idempotent; reports what changed; deletes nothing."
    )

    def handle(self, *args, **options) -> None:
        try:
            report = panel_sync(client=PterodactylClient.from_settings())
        except PanelError as exc:
            raise CommandError(f"sync failed: {exc}") from exc
        for line in report.lines():
            self.stdout.write(line)
        self.stdout.write(self.style.SUCCESS("panel sync done"))
