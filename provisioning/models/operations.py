"""Panel operations: the queue of panel work fleet jobs decide (suspend, terminate, repair...)."""

from django.db import models
from django.db.models import Q

from common.models import TimeStampedModel


class PanelOperationKind(models.TextChoices):
    SUSPEND = "suspend", "Suspend"
    UNSUSPEND = "unsuspend", "Unsuspend"
    TERMINATE = "terminate", "Terminate"
    RESTART = "restart", "Restart (crashed)"
    REAPPLY_SUSPENSION = "reapply_suspension", "Re-apply suspension state"
    REAPPLY_BUILD = "reapply_build", "Re-apply build limits"
    DELETE_ORPHAN_SERVER = "delete_orphan_server", "Delete orphan server"
    DELETE_ORPHAN_USER = "delete_orphan_user", "Delete orphan user"


class PanelOperationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    # Checked again when its turn came and no longer wanted (paid meanwhile, already done).
    SKIPPED = "skipped", "Skipped (no longer needed)"
    FAILED = "failed", "Failed (staff alerted)"


OPEN_OPERATION_STATUSES = (PanelOperationStatus.PENDING, PanelOperationStatus.RUNNING)
# Lower runs first: a paying customer waiting for an unsuspension before a termination.
OPERATION_PRIORITY = {
    PanelOperationKind.UNSUSPEND: 10,
    PanelOperationKind.RESTART: 20,
    PanelOperationKind.REAPPLY_SUSPENSION: 30,
    PanelOperationKind.SUSPEND: 40,
    PanelOperationKind.REAPPLY_BUILD: 50,
    PanelOperationKind.TERMINATE: 60,
    PanelOperationKind.DELETE_ORPHAN_SERVER: 70,
    PanelOperationKind.DELETE_ORPHAN_USER: 80,
}


class PanelOperation(TimeStampedModel):
    """Panel work a fleet job decided (suspend, unsuspend, terminate, restart, repair).

    A row, not a Celery message: one open operation per server (a constraint), so a job that
    runs again finds it and enqueues nothing; the drain task works the rows off in priority
    order inside the operations' share of the panel budget, retrying with backoff.
    """

    deployment = models.ForeignKey(
        "servers.Deployment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="panel_operations",
    )
    # For orphans (no deployment of ours): the panel object to act on.
    panel_server_id = models.PositiveIntegerField(null=True, blank=True)
    panel_user_id = models.PositiveIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=30, choices=PanelOperationKind.choices)
    status = models.CharField(
        max_length=12, choices=PanelOperationStatus.choices, default=PanelOperationStatus.PENDING
    )
    priority = models.PositiveSmallIntegerField(default=50)
    # Who decided it ("system:dunning", "staff:alice") and why.
    requested_by = models.CharField(max_length=200)
    reason = models.TextField(blank=True)
    # What the operation needs beyond its kind (e.g. the cause of a suspension).
    params = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True)
    # The panel state read back after the action: True (as intended), False (drift raised).
    verified = models.BooleanField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="Redacted.")
    # [{"at", "attempt", "result"}], the last few attempts (the audit of a retried operation).
    attempt_log = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(
                fields=["priority", "next_attempt_at"],
                condition=Q(status="pending"),
                name="panel_operation_due_idx",
            ),
            # Running operations whose worker died: the drain's second claim query.
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status="running"),
                name="panel_operation_lease_idx",
            ),
            # The admin list filtered by status, newest first.
            models.Index(fields=["status", "-created_at"], name="panel_operation_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=PanelOperationStatus.values),
                name="panel_operation_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=PanelOperationKind.values),
                name="panel_operation_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(deployment__isnull=False)
                | Q(panel_server_id__isnull=False)
                | Q(panel_user_id__isnull=False),
                name="panel_operation_has_target",
            ),
            # One open operation per server: a re-run of a job inserts nothing.
            models.UniqueConstraint(
                fields=["deployment"],
                condition=Q(status__in=OPEN_OPERATION_STATUSES, deployment__isnull=False),
                name="panel_operation_one_open_per_deployment",
            ),
            models.UniqueConstraint(
                fields=["kind", "panel_server_id"],
                condition=Q(
                    status__in=OPEN_OPERATION_STATUSES,
                    deployment__isnull=True,
                    panel_server_id__isnull=False,
                ),
                name="panel_operation_one_open_per_orphan_server",
            ),
            models.UniqueConstraint(
                fields=["kind", "panel_user_id"],
                condition=Q(
                    status__in=OPEN_OPERATION_STATUSES,
                    deployment__isnull=True,
                    panel_user_id__isnull=False,
                ),
                name="panel_operation_one_open_per_orphan_user",
            ),
        ]

    def __str__(self) -> str:
        target = (
            f"deployment #{self.deployment_id}"
            if self.deployment_id
            else f"panel server #{self.panel_server_id}"
            if self.panel_server_id
            else f"panel user #{self.panel_user_id}"
        )
        return f"{self.get_kind_display()} {target} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_OPERATION_STATUSES
