"""Celery: broker, crash-safety, queues. The app itself is config/celery.py.

Decisions (see docs/adr/0003-celery-crash-safety.md):
- acks_late + reject_on_worker_lost: a task is acknowledged only after it ran, and a task whose
  worker process died is re-queued instead of lost. Safe only because every task is idempotent
  (saga steps check their fence token; jobs work on state, not on "the message").
- prefetch 1: a worker holds one message at a time, so a long panel call does not hide a
  backlog behind it and a killed worker strands at most one task.
- time limits: a hung HTTP call cannot hold a worker forever; the soft limit lets the task
  record why it stopped.
- queues per workload: slow panel calls (provisioning) never delay notifications or billing.
- broker redelivery after a SIGKILL was measured at ~107 s on Redis, so interrupted saga runs
  are resumed by a database sweeper, not by the broker.
"""

from pathlib import Path

from kombu import Exchange, Queue

from config.env import BASE_DIR, env

# Default: kombu's filesystem transport, so `make run` needs no broker server. Worker, beat and
# web share the folder. Production/CI: redis://... or amqp://...
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
CELERY_FILESYSTEM_BROKER_DIR = env(
    "CELERY_FILESYSTEM_BROKER_DIR", default=str(BASE_DIR / "var" / "celery-broker")
)


def broker_transport_options(broker_url: str, folder: str) -> dict:
    if broker_url.startswith("filesystem"):
        # kombu does not create the folders; web, worker and beat all need them.
        for sub in ("processed", "control"):
            Path(folder, sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": folder,
            "data_folder_out": folder,
            "processed_folder": f"{folder}/processed",
            "control_folder": f"{folder}/control",
            # Check the folder 5 times a second (the default is once a second).
            "polling_interval": 0.2,
            "store_processed": False,
        }
    # Redis: a task whose worker vanished is redelivered after this; the saga sweeper is
    # faster, so keep it above the longest task time limit.
    return {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}


CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(
    CELERY_BROKER_URL, CELERY_FILESYSTEM_BROKER_DIR
)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# We keep state in our own tables; task results are not needed.
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True

CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=150)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"

CELERY_TASK_DEFAULT_QUEUE = "default"
# Explicit exchange and routing key per queue, so the binding is what the name says.
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name, type="direct"), routing_key=name)
    for name in ("default", "provisioning", "notifications", "billing")
]
CELERY_TASK_ROUTES = {
    # Fleet work (the drain of panel operations, the jobs) stays off the provisioning queue so
    # saga steps never wait behind it.
    "provisioning.drain_panel_operations": {"queue": "billing"},
    "common.run_job": {"queue": "billing"},
    "provisioning.*": {"queue": "provisioning"},
    "servers.*": {"queue": "provisioning"},
    "notifications.*": {"queue": "notifications"},
    "billing.*": {"queue": "billing"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
