"""Run the whole demo stack in one terminal: web, Celery worker, beat and the panel simulator.

Used by `make run`. Embedded defaults: SQLite and kombu's filesystem transport, so no database
or broker server is needed. Ctrl-C stops every process.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Start web (127.0.0.1:8000), Celery worker, beat and the panel simulator together."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--simulator-port", type=int, default=8081)
        parser.add_argument(
            "--no-simulator", action="store_true", help="Use the panel in PTERODACTYL_URL"
        )

    def handle(self, *args, **options) -> None:
        if settings.CELERY_BROKER_URL.startswith("filesystem"):
            Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["processed_folder"]).mkdir(
                parents=True, exist_ok=True
            )
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # One metrics folder for web, workers and beat (emptied at each start): the web's
            # /metrics then shows the panel requests the workers made.
            metrics_dir = Path(settings.BASE_DIR) / "var" / "prometheus"
            shutil.rmtree(metrics_dir, ignore_errors=True)
            metrics_dir.mkdir(parents=True)
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        celery = [python, "-m", "celery", "-A", "config"]
        commands = {
            "web": [python, manage, "runserver", f"127.0.0.1:{options['port']}", "--noreload"],
            # Panel calls and billing jobs: processes. Message sends wait on the network:
            # threads (see notifications/README.md).
            "worker": [
                *celery,
                "worker",
                "-l",
                "info",
                "-Q",
                "default,provisioning,billing",
                "--concurrency",
                "2",
                "-n",
                "portal@%h",
            ],
            "notifier": [
                *celery,
                "worker",
                "-l",
                "info",
                "-Q",
                "notifications",
                "-P",
                "threads",
                "--concurrency",
                "8",
                "-n",
                "notifier@%h",
            ],
            "beat": [
                *celery,
                "beat",
                "-l",
                "info",
                "--scheduler",
                "django_celery_beat.schedulers:DatabaseScheduler",
                "--pidfile=",
            ],
        }
        if not options["no_simulator"] and self._simulator_available():
            commands["simulator"] = [
                python,
                manage,
                "run_panel_simulator",
                "--port",
                str(options["simulator_port"]),
            ]
        processes: dict[str, subprocess.Popen] = {}
        # `kill <pid>` (SIGTERM) stops the children too, like Ctrl-C does.
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            for name, command in commands.items():
                processes[name] = subprocess.Popen(command, env=os.environ.copy())  # noqa: S603
                self.stdout.write(f"started {name} (pid {processes[name].pid})")
            try:
                call_command("check_worker", timeout=90)
            except CommandError as exc:
                self.stderr.write(self.style.WARNING(str(exc)))
            if "simulator" in processes:
                self._sync_from_simulator()
            self.stdout.write(
                self.style.SUCCESS(
                    f"Portal: http://127.0.0.1:{options['port']}/   API: /api/v1/plans/   "
                    "Ctrl-C stops everything."
                )
            )
            while all(p.poll() is None for p in processes.values()):
                time.sleep(1)
            dead = [n for n, p in processes.items() if p.poll() is not None]
            raise CommandError(f"{', '.join(dead)} exited; stopping the stack.")
        except KeyboardInterrupt:
            self.stdout.write("stopping...")
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes.values():
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()

    def _sync_from_simulator(self) -> None:
        """Import the simulator's locations, nodes and eggs (replacing the demo rows)."""
        for _ in range(40):
            try:
                call_command("sync_panel")
                return
            except CommandError:
                time.sleep(0.5)  # the simulator is still starting
        self.stderr.write(self.style.WARNING("could not sync from the panel simulator"))

    def _simulator_available(self) -> bool:
        from django.core.management import get_commands

        return "run_panel_simulator" in get_commands()


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
