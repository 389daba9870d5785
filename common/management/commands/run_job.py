import getpass

from django.core.management.base import BaseCommand, CommandError

from common.jobs import job_names, job_run
from common.models import JobRunStatus


class Command(BaseCommand):
    help = (
        "Run one fleet job once, now, and print what it did and how long it took "
        "(the same code beat runs). Overlapping runs do the work once."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", choices=job_names())
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be done; change nothing."
        )

    def handle(self, *args, name: str, dry_run: bool, **options) -> None:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        report = job_run(name=name, dry_run=dry_run, triggered_by=f"command:{user}")
        self.stdout.write(report.headline())
        for key, value in report.counts.items():
            self.stdout.write(f"  {key}: {value}")
        if report.status == JobRunStatus.FAILED:
            raise CommandError(f"{name} failed: {report.error}")
