"""``python manage.py run_panel_simulator --port 8081``: serve the panel simulator (demo)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from panel_simulator.wsgi import serve


class Command(BaseCommand):
    help = "Serve an in-memory Pterodactyl panel (seeded) for local demos, until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8081)
        parser.add_argument(
            "--install-delay", type=float, default=2.0, help="seconds until installs finish"
        )
        parser.add_argument("--latency-ms", type=float, default=0.0)

    def handle(self, *args: Any, **options: Any) -> None:
        serve(
            options["host"],
            options["port"],
            install_delay=options["install_delay"],
            latency_ms=options["latency_ms"],
            out=self.stdout,
        )
