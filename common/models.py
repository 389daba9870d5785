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


class ApiTokenScope(models.TextChoices):
    """What a token may do. Every token reads what its user may see; the others add writes."""

    READ = "read", "Read"
    # A customer's own account: orders, payments, plan changes, power actions, logins.
    WRITE = "write", "Write (own account)"
    # Staff: queue, retry and dismiss provisioning; suspend, unsuspend and terminate servers.
    PROVISIONING = "provisioning", "Provisioning (staff)"
    # Staff: confirm payments, change plans.
    BILLING = "billing", "Billing (staff)"


STAFF_ONLY_SCOPES = frozenset({ApiTokenScope.PROVISIONING.value, ApiTokenScope.BILLING.value})


class ApiToken(models.Model):
    """A bearer token for the REST API, stored as a SHA-256 digest (shown once at creation).

    The token is 256 random bits, so a fast digest is enough: there is nothing to guess that
    a slow hash would protect. `prefix` (the public, non-secret start of the token) finds the
    row; the digest of the whole token is then compared in constant time.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["user", "-created_at"], name="apitoken_user_created_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(revoked_at__isnull=True) | ~models.Q(revoked_by=""),
                name="apitoken_revoked_has_actor",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
