import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from common.models import WorkerHeartbeat
from common.tasks import worker_heartbeat

QUEUES = ("default", "provisioning", "notifications", "billing")


class Command(BaseCommand):
    help = (
        "Send a heartbeat task to every queue and wait until a worker has consumed each one. "
        "Exit status 0 only if all were consumed: proves the broker and the worker work."
    )

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=60.0)

    def handle(self, *args, **options) -> None:
        started = timezone.now()
        for queue in QUEUES:
            worker_heartbeat.apply_async(kwargs={"queue": queue}, queue=queue)
        transport = settings.CELERY_BROKER_URL.split(":", 1)[0]
        deadline = time.monotonic() + options["timeout"]
        while time.monotonic() < deadline:
            consumed = set(
                WorkerHeartbeat.objects.filter(last_seen_at__gte=started).values_list(
                    "queue", flat=True
                )
            )
            if consumed >= set(QUEUES):
                self.stdout.write(
                    self.style.SUCCESS(
                        f"worker consumed a task from each queue ({', '.join(QUEUES)}) via the "
                        f"{transport} transport"
                    )
                )
                return
            time.sleep(0.25)
        missing = sorted(set(QUEUES) - consumed)
        raise CommandError(
            f"no worker consumed the check task of queue(s) {', '.join(missing)} within "
            f"{options['timeout']:.0f}s ({transport} transport). Is a worker running with -Q "
            f"{','.join(QUEUES)}?"
        )
