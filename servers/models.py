"""Locations and nodes (mirrors of the panel's) and deployments (the customer's servers).

A Deployment is a snapshot of what was ordered (plan name, resources, add-ons, variables), so
later catalog edits never change a running server's contract; billing links orders to it.
"""

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from common.models import StatusEvent, TimeStampedModel
from common.state import StateMachine, TransitionTable


class Location(TimeStampedModel):
    short_code = models.SlugField(max_length=60, unique=True, help_text="Panel short code, e.g. eu")
    long_name = models.CharField(max_length=191, blank=True)
    panel_id = models.PositiveIntegerField(unique=True, null=True, blank=True)
    is_active = models.BooleanField(default=True, help_text="Offered to customers when ordering.")

    class Meta:
        ordering = ("short_code",)

    def __str__(self) -> str:
        return f"{self.short_code} ({self.long_name})" if self.long_name else self.short_code


class Node(TimeStampedModel):
    panel_id = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=191)
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="nodes")
    fqdn = models.CharField(max_length=191, blank=True)
    is_public = models.BooleanField(default=True)
    maintenance_mode = models.BooleanField(default=False)
    memory_mb = models.PositiveIntegerField(default=0)
    memory_overallocate_percent = models.IntegerField(default=0)
    disk_mb = models.PositiveIntegerField(default=0)
    disk_overallocate_percent = models.IntegerField(default=0)
    allocated_memory_mb = models.PositiveIntegerField(default=0)
    allocated_disk_mb = models.PositiveIntegerField(default=0)
    free_allocations = models.PositiveIntegerField(default=0)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("location__short_code", "name")

    def __str__(self) -> str:
        return f"{self.name} (#{self.panel_id})"


class DeploymentStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    PROVISIONING = "provisioning", _("Provisioning")
    ACTIVE = "active", _("Active")
    SUSPENDED = "suspended", _("Suspended")
    TERMINATED = "terminated", _("Terminated")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


S = DeploymentStatus
DEPLOYMENT_TRANSITIONS = TransitionTable(
    "Deployment",
    {
        S.PENDING: {S.PROVISIONING, S.CANCELLED},
        S.PROVISIONING: {S.ACTIVE, S.FAILED, S.CANCELLED},
        S.FAILED: {S.PROVISIONING, S.CANCELLED},
        S.ACTIVE: {S.SUSPENDED, S.TERMINATED},
        S.SUSPENDED: {S.ACTIVE, S.TERMINATED},
        # Staff restore within TERMINATION_RESTORE_WINDOW_DAYS (provisioning.operations.
        # deployment_restore, the only caller): the panel server was kept suspended, so the
        # same server comes back. Guarded there by panel_deletion_due_at in the future and the
        # panel server still existing; after the purge there is nothing to restore.
        S.TERMINATED: {S.ACTIVE},
        S.CANCELLED: set(),
    },
)


class Deployment(TimeStampedModel):
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deployments"
    )
    name = models.CharField(max_length=191)
    plan_slug = models.SlugField(max_length=60)
    plan_name = models.CharField(max_length=120)
    billing_cycle = models.CharField(max_length=20)
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="deployments")
    node = models.ForeignKey(
        Node, null=True, blank=True, on_delete=models.PROTECT, related_name="deployments"
    )
    # Resolved panel spec at order time: limits, feature_limits, nest/egg, image, startup,
    # environment defaults. Add-on boosts are already included.
    spec = models.JSONField(default=dict)
    addons = models.JSONField(default=list, blank=True, help_text="Slugs and names of add-ons.")
    variables = models.JSONField(default=dict, blank=True, help_text="Customer's egg variables.")
    status = models.CharField(
        max_length=20, choices=DeploymentStatus.choices, default=DeploymentStatus.PENDING
    )
    next_due_date = models.DateField(null=True, blank=True, db_index=True)
    panel_user_id = models.PositiveIntegerField(null=True, blank=True)
    panel_server_id = models.PositiveIntegerField(null=True, blank=True, unique=True)
    panel_server_uuid = models.CharField(max_length=36, blank=True)
    panel_identifier = models.CharField(max_length=8, blank=True)
    ip_address = models.CharField(max_length=191, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    # Why it is suspended: only a non-payment suspension is lifted by paying, or ends in
    # termination by the dunning job; a staff (e.g. abuse) suspension is left to staff.
    suspension_cause = models.CharField(
        max_length=20, blank=True, choices=[("nonpayment", "Unpaid"), ("staff", "Staff")]
    )
    terminated_at = models.DateTimeField(null=True, blank=True)
    # Terminated but kept on the panel (suspended) until then: the restore window
    # (TERMINATION_RESTORE_WINDOW_DAYS) and/or the final backup (TERMINATION_FINAL_BACKUP).
    # The purge job deletes the panel server once it is due and clears this.
    panel_deletion_due_at = models.DateTimeField(null=True, blank=True)
    # The final backup on the panel before the deletion (its uuid, once requested).
    final_backup_uuid = models.CharField(max_length=36, blank=True)
    final_backup_status = models.CharField(
        max_length=20,
        blank=True,
        choices=[
            ("wanted", "Wanted"),
            ("pending", "Running on the panel"),
            ("completed", "Completed"),
            ("failed", "Failed"),
            ("refused", "Refused by the panel"),
        ],
    )

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            # The admin filter's choices (common.admin.distinct_values: a loose index scan).
            models.Index(fields=["billing_cycle"], name="deployment_billing_cycle_idx"),
            # The purge job: terminated servers still on the panel whose deletion is due.
            models.Index(
                fields=["panel_deletion_due_at"],
                condition=Q(panel_deletion_due_at__isnull=False, panel_server_id__isnull=False),
                name="deployment_deletion_due_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=DeploymentStatus.values), name="deployment_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(port__isnull=True) | Q(port__gte=1, port__lte=65535),
                name="deployment_port_range",
            ),
            # An active or suspended server always knows where it lives on the panel.
            models.CheckConstraint(
                condition=~Q(status__in=[S.ACTIVE, S.SUSPENDED]) | Q(panel_server_id__isnull=False),
                name="deployment_live_has_panel_server",
            ),
        ]

    def __str__(self) -> str:
        return f"Deployment #{self.pk} {self.name}"

    @property
    def connection_address(self) -> str:
        if self.ip_address and self.port:
            return f"{self.ip_address}:{self.port}"
        return ""

    @property
    def external_id(self) -> str:
        """Our idempotency key on the panel (servers.external_id, max 191 chars)."""
        return f"deployment-{self.pk}"


class CapacityHold(models.Model):
    """Room on a node kept for one order between checkout and the server's creation.

    Taken at checkout (expires_at = now + CAPACITY_HOLD_MINUTES), kept at payment (expires_at
    NULL: until the server exists), released when the order or invoice is cancelled, when
    provisioning fails, or consumed by placement once the run's own reservation takes over. An
    active hold (released_at NULL and not expired) counts against its node like a server does,
    so the last free slot is sold once: later checkouts see the location sold out.
    One row per deployment: taking it again after a release reuses the row (servers.capacity).
    """

    deployment = models.OneToOneField(
        Deployment, on_delete=models.CASCADE, related_name="capacity_hold"
    )
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="capacity_holds")
    memory_mb = models.PositiveIntegerField()
    disk_mb = models.PositiveIntegerField()
    # When the room was (last) taken: placement serves a node's holds in this order, so a
    # payment that takes a lapsed hold again queues behind the holds taken meanwhile.
    taken_at = models.DateTimeField(default=timezone.now)
    # NULL: held until the server exists (the order is paid).
    expires_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    # "expired", "order cancelled", "placed on eu-fra-1", ...
    release_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        # No default ordering: placement sums the active rows of a node; the admin orders by pk.
        indexes = [
            # "Active holds on node X" (checkout, placement, availability): only the live rows,
            # however long the released history grows.
            models.Index(
                fields=["node", "expires_at"],
                condition=Q(released_at__isnull=True),
                name="capacity_hold_active_node_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(memory_mb__gte=0, disk_mb__gte=0), name="capacity_hold_non_negative"
            ),
            # A released hold says why; a live one has no reason.
            models.CheckConstraint(
                condition=(
                    Q(released_at__isnull=True, release_reason="")
                    | (Q(released_at__isnull=False) & ~Q(release_reason=""))
                ),
                name="capacity_hold_released_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"Hold of {self.memory_mb} MB / {self.disk_mb} MB for deployment #{self.deployment_id}"
        )

    def is_active(self, now: dt.datetime) -> bool:
        return self.released_at is None and (self.expires_at is None or self.expires_at > now)


class DeploymentEvent(StatusEvent):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events")

    class Meta(StatusEvent.Meta):
        pass


# Deployments move and record history only through this (common.state.StateMachine).
DEPLOYMENT_STATES = StateMachine(
    table=DEPLOYMENT_TRANSITIONS, event_model=DeploymentEvent, event_fk="deployment"
)


class PowerSignal(models.TextChoices):
    START = "start", "Start"
    STOP = "stop", "Stop"
    RESTART = "restart", "Restart"
    KILL = "kill", "Kill"


class PowerAction(models.Model):
    """A power signal a customer sent to their server: the power buttons' rate limit and the
    health job's "stopped by its owner" read these rows (the history gets its own row too),
    never the wording of the history."""

    deployment = models.ForeignKey(
        Deployment, on_delete=models.CASCADE, related_name="power_actions"
    )
    signal = models.CharField(max_length=10, choices=PowerSignal.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["deployment", "-created_at"], name="power_action_recent_idx")
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(signal__in=[s.value for s in PowerSignal]),
                name="power_action_signal_valid",
            )
        ]

    def __str__(self) -> str:
        return f"{self.signal} on {self.deployment_id} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class Nest(TimeStampedModel):
    panel_id = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=191)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return f"{self.name} (#{self.panel_id})"


class Egg(TimeStampedModel):
    panel_id = models.PositiveIntegerField(unique=True)
    nest = models.ForeignKey(Nest, on_delete=models.CASCADE, related_name="eggs")
    name = models.CharField(max_length=191)
    description = models.TextField(blank=True)
    docker_image = models.CharField(max_length=191, blank=True)
    docker_images = models.JSONField(default=dict, blank=True)
    startup = models.TextField(blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("nest__name", "name")

    def __str__(self) -> str:
        return f"{self.name} (#{self.panel_id})"


class EggVariable(models.Model):
    egg = models.ForeignKey(Egg, on_delete=models.CASCADE, related_name="variables")
    name = models.CharField(max_length=191)
    description = models.TextField(blank=True)
    env_variable = models.CharField(max_length=191)
    default_value = models.TextField(blank=True)
    user_viewable = models.BooleanField(default=True)
    user_editable = models.BooleanField(default=True)
    # Laravel validation rules as the panel stores them, e.g. "required|string|max:20".
    rules = models.TextField(blank=True)

    class Meta:
        ordering = ("egg", "env_variable")
        constraints = [
            models.UniqueConstraint(fields=["egg", "env_variable"], name="egg_variable_unique_env")
        ]

    def __str__(self) -> str:
        return self.env_variable


# ---------------------------------------------------------------------- fleet health


class PowerState(models.TextChoices):
    UNKNOWN = "", "Unknown"
    OFFLINE = "offline", "Offline"
    STARTING = "starting", "Starting"
    RUNNING = "running", "Running"
    STOPPING = "stopping", "Stopping"


class ServerHealth(models.Model):
    """What the last health run saw of one live deployment on the panel (the fleet health page).

    Written only by the `health` job, in batches (servers.health); one row per deployment, keyed
    by it, so the admin URL of a server's health is /admin/servers/serverhealth/<deployment id>/.
    A failed panel read changes no row: these columns always describe a successful read.
    """

    deployment = models.OneToOneField(
        Deployment, primary_key=True, on_delete=models.CASCADE, related_name="health"
    )
    # Copied from the deployment for the admin's search and the panel link.
    panel_server_id = models.PositiveIntegerField(null=True, blank=True)
    reachable = models.BooleanField(
        default=False, help_text="The server was in the panel's list at the last read."
    )
    installed = models.BooleanField(null=True, blank=True)
    suspended_on_panel = models.BooleanField(default=False)
    # The panel's `status`: "" when installed and normal (null on the panel), else installing,
    # install_failed, reinstall_failed, suspended, restoring_backup.
    panel_status = models.CharField(max_length=32, blank=True)
    # From the client API (sampled: a budget of servers per run, the stalest first).
    power_state = models.CharField(
        max_length=16, choices=PowerState.choices, blank=True, default=PowerState.UNKNOWN
    )
    power_state_since = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    resources_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="Redacted.")

    class Meta:
        # No default ordering: the job reads every row; the admin orders by the key.
        verbose_name = "server health"
        verbose_name_plural = "fleet health"
        indexes = [
            # The admin's filters, each with the changelist's ORDER BY -pk behind it.
            models.Index(fields=["power_state", "deployment"], name="server_health_power_idx"),
            models.Index(fields=["reachable", "deployment"], name="server_health_reach_idx"),
            models.Index(
                fields=["suspended_on_panel", "deployment"], name="server_health_susp_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(power_state__in=PowerState.values), name="server_health_power_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Health of deployment #{self.deployment_id}"


class HealthIncidentKind(models.TextChoices):
    PANEL_UNREACHABLE = "panel_unreachable", "Panel unreachable"
    SERVER_MISSING = "server_missing", "Server missing on the panel"
    SERVER_OFFLINE = "server_offline", "Server offline (should run)"
    INSTALL_FAILED = "install_failed", "Install failed"
    # The drain's circuit: panel operations keep failing with retryable errors (outage).
    PANEL_OPERATIONS_FAILING = "panel_operations_failing", "Panel operations failing"


# Incidents about the panel as a whole carry no deployment; all others carry one.
PANEL_WIDE_INCIDENT_KINDS = (
    HealthIncidentKind.PANEL_UNREACHABLE,
    HealthIncidentKind.PANEL_OPERATIONS_FAILING,
)


class HealthIncident(models.Model):
    """One occurrence of a health problem, from first seen to resolved: staff are alerted once
    per incident (alerted_at), never once per check. The partial unique constraints make a
    re-run (or two overlapping runs) refresh the open incident instead of opening a second."""

    kind = models.CharField(max_length=32, choices=HealthIncidentKind.choices)
    deployment = models.ForeignKey(
        Deployment,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="health_incidents",
    )
    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    alerted_at = models.DateTimeField(null=True, blank=True)
    # Health runs that saw it (1 when opened).
    checks = models.PositiveIntegerField(default=1)
    detail = models.TextField(blank=True, help_text="Redacted.")

    class Meta:
        indexes = [
            models.Index(fields=["-opened_at"], name="health_incident_opened_idx"),
            # The job's "open incidents" read and the admin's "open" filter.
            models.Index(
                fields=["-opened_at"],
                condition=Q(closed_at__isnull=True),
                name="health_incident_open_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=HealthIncidentKind.values), name="health_incident_kind_valid"
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=PANEL_WIDE_INCIDENT_KINDS, deployment__isnull=True)
                    | (~Q(kind__in=PANEL_WIDE_INCIDENT_KINDS) & Q(deployment__isnull=False))
                ),
                name="health_incident_target_matches_kind",
            ),
            models.UniqueConstraint(
                fields=["kind", "deployment"],
                condition=Q(closed_at__isnull=True, deployment__isnull=False),
                name="health_incident_one_open_per_deployment",
            ),
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(closed_at__isnull=True, deployment__isnull=True),
                name="health_incident_one_open_panel_wide",
            ),
        ]

    def __str__(self) -> str:
        target = f"deployment #{self.deployment_id}" if self.deployment_id else "panel"
        state = "closed" if self.closed_at else "open"
        return f"{self.get_kind_display()}: {target} ({state})"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None
