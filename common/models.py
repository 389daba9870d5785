"""Shared model bases and the portal's own operational records."""

from django.conf import settings
from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class StatusEvent(models.Model):
    """One row per state change: who or what did it, from and to which status, why, when.

    Concrete subclasses add the foreign key to the object whose history this is.
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who/what acted, readable even after the user is deleted: "staff:alice", "system:beat",
    # "stripe:evt_123", "customer:bob@example.com".
    actor_label = models.CharField(max_length=200)
    from_status = models.CharField(max_length=32, blank=True)
    to_status = models.CharField(max_length=32)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        abstract = True
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status} by {self.actor_label}"


class WorkerHeartbeat(models.Model):
    """Last time a Celery worker consumed a task from a queue (proves the broker works)."""

    queue = models.CharField(max_length=50, unique=True)
    hostname = models.CharField(max_length=200, blank=True)
    last_seen_at = models.DateTimeField()
    beats = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.queue} @ {self.last_seen_at:%Y-%m-%d %H:%M:%S}"


class JobRunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    # Another run of the same job held the lock: this one did nothing.
    SKIPPED = "skipped", "Skipped (already running)"


class JobRun(models.Model):
    """One run of a fleet job (`run_job NAME`): who started it, what it did, how long it took."""

    name = models.CharField(max_length=40)
    status = models.CharField(
        max_length=12, choices=JobRunStatus.choices, default=JobRunStatus.RUNNING
    )
    dry_run = models.BooleanField(default=False)
    # "beat", "command:<os user>", "staff:<username>".
    triggered_by = models.CharField(max_length=200)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # What it did: {"invoices": 120, "batches": 1, ...}.
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, help_text="Redacted.")

    class Meta:
        ordering = ("-started_at", "-id")
        indexes = [models.Index(fields=["name", "-started_at"], name="jobrun_name_started_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=JobRunStatus.values), name="jobrun_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} at {self.started_at:%Y-%m-%d %H:%M:%S} ({self.status})"


class JobLease(models.Model):
    """Mutual exclusion of a job where the database has no advisory locks (SQLite demo)."""

    name = models.CharField(max_length=40, unique=True)
    holder = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder or '-'} until {self.expires_at}"
