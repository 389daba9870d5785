"""Operational writes: worker heartbeats and the periodic task schedule."""

import json
import socket

from django.db.models import F
from django.utils import timezone

from common.models import WorkerHeartbeat

# Beat jobs (name -> task, seconds, queue). Every job is safe to run twice or concurrently:
# two beat processes send every periodic task twice.
PERIODIC_TASKS: dict[str, tuple[str, int, str]] = {
    "heartbeat: default queue": ("common.worker_heartbeat", 60, "default"),
    "heartbeat: provisioning queue": ("common.worker_heartbeat", 60, "provisioning"),
    "heartbeat: notifications queue": ("common.worker_heartbeat", 60, "notifications"),
    "heartbeat: billing queue": ("common.worker_heartbeat", 60, "billing"),
    "billing: cancel stale unpaid orders": ("billing.cancel_stale_unpaid_orders", 3600, "billing"),
    "billing: issue renewal invoices": ("billing.issue_renewal_invoices", 3600, "billing"),
    "billing: reminders, suspension and termination of unpaid servers": (
        "billing.dunning",
        3600,
        "billing",
    ),
    "provisioning: resume interrupted runs": ("provisioning.sweep", 30, "provisioning"),
    "notifications: resume stalled deliveries": (
        "notifications.resume_stalled",
        60,
        "notifications",
    ),
    "notifications: purge expired secrets": ("notifications.purge_secrets", 3600, "notifications"),
}


def worker_heartbeat_record(*, queue: str, hostname: str | None = None) -> WorkerHeartbeat:
    now = timezone.now()
    host = hostname or socket.gethostname()
    updated = WorkerHeartbeat.objects.filter(queue=queue).update(
        last_seen_at=now, hostname=host, beats=F("beats") + 1
    )
    if not updated:
        WorkerHeartbeat.objects.bulk_create(
            [WorkerHeartbeat(queue=queue, hostname=host, last_seen_at=now, beats=1)],
            ignore_conflicts=True,
        )
    return WorkerHeartbeat.objects.get(queue=queue)


def periodic_tasks_install() -> list[str]:
    """Create or update the beat schedule in django-celery-beat's tables. Idempotent."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    names = []
    for name, (task, seconds, queue) in PERIODIC_TASKS.items():
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=seconds, period=IntervalSchedule.SECONDS
        )
        kwargs = {"queue": queue} if task == "common.worker_heartbeat" else {}
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={
                "task": task,
                "interval": interval,
                "queue": queue,
                "kwargs": json.dumps(kwargs),
                "enabled": True,
            },
        )
        names.append(name)
    return names
