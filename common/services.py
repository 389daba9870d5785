"""Operational writes: worker heartbeats and the periodic task schedule."""

import json
import socket

from django.conf import settings
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
    "provisioning: drain panel operations": ("provisioning.drain_panel_operations", 60, "billing"),
    "provisioning: resume interrupted runs": ("provisioning.sweep", 30, "provisioning"),
    "provisioning: node capacity readings": (
        "provisioning.refresh_node_readings",
        60,
        "provisioning",
    ),
    "notifications: resume stalled deliveries": (
        "notifications.resume_stalled",
        60,
        "notifications",
    ),
    "notifications: purge expired secrets": ("notifications.purge_secrets", 3600, "notifications"),
}


# Fleet jobs run through `common.run_job` (the task behind `manage.py run_job NAME`), all on
# the billing queue: a 100k-server health read holds its worker for minutes, and the saga's
# steps on the provisioning queue must never wait behind it.
FLEET_JOB_QUEUES = {
    "renewals": "billing",
    "dunning": "billing",
    "cancellations": "billing",
    "autocharge": "billing",
    "plan_changes": "billing",
    "health": "billing",
    "reconcile": "billing",
}
# Beat entries of earlier versions, removed when the schedule is installed.
OBSOLETE_PERIODIC_TASKS = (
    "billing: issue renewal invoices",
    "billing: reminders, suspension and termination of unpaid servers",
)


def periodic_task_table() -> dict[str, tuple[str, int, str, dict]]:
    """name -> (task, seconds, queue, kwargs) of every beat entry."""
    table = {
        name: (task, seconds, queue, {"queue": queue} if task == "common.worker_heartbeat" else {})
        for name, (task, seconds, queue) in PERIODIC_TASKS.items()
    }
    for job, seconds in settings.FLEET_JOB_INTERVALS.items():
        queue = FLEET_JOB_QUEUES.get(job, "default")
        table[f"job: {job}"] = ("common.run_job", seconds, queue, {"name": job})
    return table


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

    PeriodicTask.objects.filter(name__in=OBSOLETE_PERIODIC_TASKS).delete()
    names = []
    for name, (task, seconds, queue, kwargs) in periodic_task_table().items():
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=seconds, period=IntervalSchedule.SECONDS
        )
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
