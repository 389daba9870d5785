"""Saga runs: one attempt to provision a deployment, its step attempts and the ports it holds.

A run's status moves only along RUN_TRANSITIONS (checked by `run_move`); its history is the
step attempts, so a run has a table but no event model.
"""

from django.db import models
from django.db.models import Q

from common.models import TimeStampedModel
from common.state import TransitionTable
from provisioning.models.requests import ProvisioningRequest


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPENSATING = "compensating", "Rolling back"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (rolled back)"
    NEEDS_ATTENTION = "needs_attention", "Needs attention (rollback incomplete)"


ACTIVE_RUN_STATUSES = (RunStatus.RUNNING, RunStatus.COMPENSATING)
# Runs on the staff failed list (until dismissed): rolled back, or stuck half way.
FAILED_RUN_STATUSES = (RunStatus.FAILED, RunStatus.NEEDS_ATTENTION)

R = RunStatus
RUN_TRANSITIONS = TransitionTable(
    "Provisioning run",
    {
        # Compensating: a step failed for good, the deadline passed or staff rolled it back.
        # Failed straight away: a refund ended it while it waited for capacity (nothing to undo).
        R.RUNNING: {R.COMPENSATING, R.SUCCEEDED, R.FAILED},
        R.COMPENSATING: {R.FAILED, R.NEEDS_ATTENTION},
        # Staff roll a run whose rollback did not finish back again.
        R.NEEDS_ATTENTION: {R.COMPENSATING},
        R.SUCCEEDED: set(),
        R.FAILED: set(),
    },
)


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
    # Staff took a failed run off the failed list (DELETE /api/v1/provisioning/failed/): the
    # run and its steps stay; only the list forgets it. Who: an actor label, as triggered_by.
    dismissed_at = models.DateTimeField(null=True, blank=True)
    dismissed_by = models.CharField(max_length=200, blank=True)

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


def run_move(run: ProvisioningRun, to_status: str) -> None:
    """Set the run's status after checking RUN_TRANSITIONS (ConflictError "invalid_transition"
    on a forbidden move). A run has no event rows (its step attempts are its history), and the
    caller saves the status with the other fields it changes, holding the row lock."""
    RUN_TRANSITIONS.check(run.status, to_status)
    run.status = to_status
