"""Provisioning requests: the hand-off from billing. The saga's runs and steps build on them."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from common.fields import EncryptedCharField
from common.models import StatusEvent, TimeStampedModel
from common.state import StateMachine, TransitionTable


class ProvisioningRequestStatus(models.TextChoices):
    # Waiting for the saga (or for staff, when PROVISIONING_ENABLED is false).
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    # Paid, but no node in the location has room: placement is tried again until one has.
    WAITING_CAPACITY = "waiting_capacity", "Waiting for capacity"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (waiting for retry or manual setup)"
    CANCELLED = "cancelled", "Cancelled"


S = ProvisioningRequestStatus
PROVISIONING_REQUEST_TRANSITIONS = TransitionTable(
    "Provisioning request",
    {
        S.PENDING: {S.IN_PROGRESS, S.CANCELLED},
        S.IN_PROGRESS: {S.SUCCEEDED, S.FAILED, S.WAITING_CAPACITY},
        S.WAITING_CAPACITY: {S.IN_PROGRESS, S.FAILED, S.CANCELLED},
        S.FAILED: {S.IN_PROGRESS, S.CANCELLED},
        S.SUCCEEDED: set(),
        S.CANCELLED: set(),
    },
)


class ProvisioningRequest(TimeStampedModel):
    """One per deployment, ever: a second confirmation or a replayed webhook cannot add one."""

    deployment = models.OneToOneField(
        "servers.Deployment", on_delete=models.PROTECT, related_name="provisioning_request"
    )
    # The billing order it came from, for display (provisioning does not import billing).
    order_reference = models.CharField(max_length=60)
    status = models.CharField(
        max_length=20, choices=ProvisioningRequestStatus.choices, default=S.PENDING
    )
    requested_by = models.CharField(max_length=200)
    # Whether automatic provisioning was enabled when the request was made.
    automatic = models.BooleanField(default=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=ProvisioningRequestStatus.values),
                name="provisioning_request_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Provisioning of deployment #{self.deployment_id} ({self.order_reference})"


class ProvisioningRequestEvent(StatusEvent):
    request = models.ForeignKey(
        ProvisioningRequest, on_delete=models.CASCADE, related_name="events"
    )

    class Meta(StatusEvent.Meta):
        pass


# Provisioning requests move and record history only through this (common.state.StateMachine).
PROVISIONING_REQUEST_STATES = StateMachine(
    table=PROVISIONING_REQUEST_TRANSITIONS, event_model=ProvisioningRequestEvent, event_fk="request"
)


class PanelAccount(TimeStampedModel):
    """The customer's login on the panel. One per customer, shared by all their servers."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="panel_account"
    )
    panel_user_id = models.PositiveIntegerField(unique=True, null=True, blank=True)
    external_id = models.CharField(max_length=191, unique=True)
    username = models.CharField(max_length=191)
    email = models.EmailField(max_length=191)
    # Encrypted at rest (Fernet); empty when we adopted an existing panel user whose password
    # we never knew. Never logged, never listed in the admin.
    password = EncryptedCharField(max_length=255, blank=True, null=True)
    created_by_portal = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.username} (panel user #{self.panel_user_id or '-'})"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPENSATING = "compensating", "Rolling back"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (rolled back)"
    NEEDS_ATTENTION = "needs_attention", "Needs attention (rollback incomplete)"


ACTIVE_RUN_STATUSES = (RunStatus.RUNNING, RunStatus.COMPENSATING)


class ProvisioningRun(TimeStampedModel):
    """One attempt of the saga for a deployment: its position, lease, and what it created.

    A worker claims the run by bumping `fence` and taking a lease; its result is written only if
    the fence is still its own, so a stale or duplicate worker can never overwrite a newer one.
    """

    request = models.ForeignKey(ProvisioningRequest, on_delete=models.PROTECT, related_name="runs")
    deployment = models.ForeignKey(
        "servers.Deployment", on_delete=models.PROTECT, related_name="provisioning_runs"
    )
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.RUNNING)
    step_index = models.PositiveSmallIntegerField(default=0)
    compensate_index = models.SmallIntegerField(null=True, blank=True)
    attempt = models.PositiveSmallIntegerField(default=0)
    fence = models.PositiveIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    deadline_at = models.DateTimeField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    triggered_by = models.CharField(max_length=200)
    last_error = models.TextField(blank=True)
    failed_step = models.CharField(max_length=40, blank=True)
    # Staff asked to roll back while a worker was inside a step: the rollback starts as soon as
    # that step's outcome is recorded (so what it created is known and undone).
    abort_requested = models.BooleanField(default=False)
    # What the run found or created on the panel (compensation undoes only what we created).
    panel_user_id = models.PositiveIntegerField(null=True, blank=True)
    panel_user_created = models.BooleanField(default=False)
    server_payload = models.JSONField(default=dict, blank=True)
    node = models.ForeignKey(
        "servers.Node", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reserved_memory_mb = models.PositiveIntegerField(default=0)
    reserved_disk_mb = models.PositiveIntegerField(default=0)
    placement_reason = models.TextField(blank=True)
    panel_server_id = models.PositiveIntegerField(null=True, blank=True)
    panel_server_uuid = models.CharField(max_length=36, blank=True)
    panel_identifier = models.CharField(max_length=8, blank=True)
    server_created_at = models.DateTimeField(null=True, blank=True)
    install_status = models.CharField(max_length=32, blank=True)
    # Ports this run asked the panel to create, written BEFORE the call ({"node", "ip",
    # "ports"}): a create whose reply was lost is still known to be ours, claimed as ours and
    # deleted on rollback.
    ports_requested = models.JSONField(default=dict, blank=True)
    # When a create was last sent (written BEFORE the call): a later try looks the object up by
    # our external id first only if an earlier one may have reached the panel.
    user_create_sent_at = models.DateTimeField(null=True, blank=True)
    server_create_sent_at = models.DateTimeField(null=True, blank=True)
    # How often a step sent the run back to an earlier one (the panel said a stored user or egg
    # had changed); bounded by the engine.
    rewinds = models.PositiveSmallIntegerField(default=0)
    # Set while no node in the location has room (placement retried every
    # PROVISIONING_CAPACITY_RETRY_INTERVAL); such a run holds no queue slot and no deadline runs.
    waiting_for_capacity_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=RunStatus.values), name="provisioning_run_status_valid"
            ),
            # One active run per deployment, whatever races: a second start fails here.
            models.UniqueConstraint(
                fields=["deployment"],
                condition=Q(status__in=ACTIVE_RUN_STATUSES),
                name="provisioning_one_active_run_per_deployment",
            ),
            # One server per deployment (and so per order) across all runs.
            models.UniqueConstraint(
                fields=["panel_server_id"],
                condition=Q(panel_server_id__isnull=False),
                name="provisioning_run_unique_panel_server",
            ),
        ]

    def __str__(self) -> str:
        return f"Run #{self.pk} of deployment #{self.deployment_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES


class StepDirection(models.TextChoices):
    FORWARD = "forward", "Forward"
    COMPENSATE = "compensate", "Compensate"


class StepAttemptStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    WAITING = "waiting", "Waiting (poll again)"
    RETRYING = "retrying", "Failed, will retry"
    FAILED = "failed", "Failed"
    SUPERSEDED = "superseded", "Superseded (stale worker)"


class ProvisioningStepAttempt(models.Model):
    """Every execution of a step (forward or compensating), with timings and what was said."""

    run = models.ForeignKey(ProvisioningRun, on_delete=models.CASCADE, related_name="steps")
    step = models.CharField(max_length=40)
    direction = models.CharField(max_length=12, choices=StepDirection.choices)
    attempt = models.PositiveSmallIntegerField()
    fence = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=StepAttemptStatus.choices)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # Redacted request/response summary: ids, counts, statuses; never keys or passwords.
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ("started_at", "id")

    def __str__(self) -> str:
        return f"{self.step} ({self.direction}) #{self.attempt}: {self.status}"


class AllocationClaim(TimeStampedModel):
    """A panel allocation (IP:port) taken by a run. The unique keys make a port one run's only."""

    node = models.ForeignKey("servers.Node", on_delete=models.PROTECT, related_name="+")
    panel_allocation_id = models.PositiveIntegerField(unique=True)
    ip = models.CharField(max_length=191)
    port = models.PositiveIntegerField()
    run = models.ForeignKey(
        ProvisioningRun, on_delete=models.PROTECT, related_name="allocation_claims"
    )
    deployment = models.ForeignKey(
        "servers.Deployment", on_delete=models.PROTECT, related_name="allocation_claims"
    )
    is_primary = models.BooleanField(default=False)
    created_by_portal = models.BooleanField(default=False)

    class Meta:
        ordering = ("node", "ip", "port")
        constraints = [
            models.UniqueConstraint(fields=["node", "ip", "port"], name="allocation_claim_port"),
            models.UniqueConstraint(
                fields=["deployment"],
                condition=Q(is_primary=True),
                name="allocation_claim_one_primary",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


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


class DriftKind(models.TextChoices):
    SUSPENDED_HERE_RUNNING_THERE = (
        "suspended_here_running_there",
        "Suspended here, not suspended on the panel",
    )
    SUSPENDED_THERE_ACTIVE_HERE = (
        "suspended_there_active_here",
        "Suspended on the panel, active here",
    )
    MISSING_ON_PANEL = "missing_on_panel", "Server missing on the panel"
    LIMITS_MISMATCH = "limits_mismatch", "Limits differ from plan + add-ons"
    ORPHAN_SERVER = "orphan_server", "Panel server we do not know (orphan)"
    ORPHAN_USER = "orphan_user", "Panel user we do not know (orphan)"
    PORT_CONFLICT = "port_conflict", "Port we hold assigned elsewhere on the panel"


class DriftItem(models.Model):
    """A difference between billing and the panel, open until it is repaired, dismissed, or no
    longer seen by a full read of the panel ("gone").

    One open item per kind and deployment (or per panel server / user for orphans that belong
    to no deployment): the reconcile job and the verified lifecycle actions refresh it instead
    of adding another, so a drift that persists for days is one row and one alert.
    """

    kind = models.CharField(max_length=40, choices=DriftKind.choices)
    deployment = models.ForeignKey(
        "servers.Deployment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="drift_items",
    )
    panel_server_id = models.PositiveIntegerField(null=True, blank=True)
    panel_user_id = models.PositiveIntegerField(null=True, blank=True)
    # Expected (ours) versus actual (the panel's) values; ids and limits only, never secrets.
    details = models.JSONField(default=dict, blank=True)
    # Who observed it last: "reconcile", "verify:suspended", "repair", ...
    source = models.CharField(max_length=60, blank=True)
    detected_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    # "repaired: ...", "gone: ...", "adopted: ...", "dismissed by staff:alice".
    resolution = models.TextField(blank=True)
    resolved_by = models.CharField(max_length=200, blank=True)
    repair_operation = models.ForeignKey(
        PanelOperation,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="drift_items",
    )

    class Meta:
        # The admin's default list: newest first (an index matches it).
        ordering = ("-detected_at", "-id")
        indexes = [
            # The admin's list (newest first), its kind filter, and its open filter.
            models.Index(fields=["-detected_at"], name="drift_detected_idx"),
            models.Index(fields=["kind", "-detected_at"], name="drift_kind_detected_idx"),
            models.Index(
                fields=["-detected_at"],
                condition=Q(resolved_at__isnull=True),
                name="drift_open_detected_idx",
            ),
            # Open items of a kind: the reconcile job's lookups and its "gone" sweep.
            models.Index(
                fields=["kind", "last_seen_at"],
                condition=Q(resolved_at__isnull=True),
                name="drift_open_kind_seen_idx",
            ),
            models.Index(
                fields=["panel_server_id"],
                condition=Q(panel_server_id__isnull=False),
                name="drift_panel_server_idx",
            ),
            models.Index(
                fields=["panel_user_id"],
                condition=Q(panel_user_id__isnull=False),
                name="drift_panel_user_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=DriftKind.values), name="drift_item_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(deployment__isnull=False)
                | Q(panel_server_id__isnull=False)
                | Q(panel_user_id__isnull=False),
                name="drift_item_has_target",
            ),
            # A resolved item says how it ended.
            models.CheckConstraint(
                condition=Q(resolved_at__isnull=True) | ~Q(resolution=""),
                name="drift_item_resolution_given",
            ),
            models.UniqueConstraint(
                fields=["kind", "deployment"],
                condition=Q(resolved_at__isnull=True, deployment__isnull=False),
                name="drift_item_one_open_per_deployment",
            ),
            models.UniqueConstraint(
                fields=["kind", "panel_server_id"],
                condition=Q(
                    resolved_at__isnull=True,
                    deployment__isnull=True,
                    panel_server_id__isnull=False,
                ),
                name="drift_item_one_open_per_orphan_server",
            ),
            models.UniqueConstraint(
                fields=["kind", "panel_user_id"],
                condition=Q(
                    resolved_at__isnull=True,
                    deployment__isnull=True,
                    panel_user_id__isnull=False,
                ),
                name="drift_item_one_open_per_orphan_user",
            ),
        ]

    def __str__(self) -> str:
        if self.deployment_id:
            target = f"deployment #{self.deployment_id}"
        elif self.panel_server_id:
            target = f"panel server #{self.panel_server_id}"
        else:
            target = f"panel user #{self.panel_user_id}"
        return f"{self.get_kind_display()}: {target}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None
