"""Locations and nodes (mirrors of the panel's) and deployments (the customer's servers).

A Deployment is a snapshot of what was ordered (plan name, resources, add-ons, variables), so
later catalog edits never change a running server's contract; billing links orders to it.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from common.models import StatusEvent, TimeStampedModel
from common.state import TransitionTable


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
    PENDING = "pending", "Pending"
    PROVISIONING = "provisioning", "Provisioning"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    TERMINATED = "terminated", "Terminated"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


S = DeploymentStatus
DEPLOYMENT_TRANSITIONS = TransitionTable(
    "Deployment",
    {
        S.PENDING: {S.PROVISIONING, S.CANCELLED},
        S.PROVISIONING: {S.ACTIVE, S.FAILED, S.CANCELLED},
        S.FAILED: {S.PROVISIONING, S.CANCELLED},
        S.ACTIVE: {S.SUSPENDED, S.TERMINATED},
        S.SUSPENDED: {S.ACTIVE, S.TERMINATED},
        S.TERMINATED: set(),
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

    class Meta:
        ordering = ("-created_at",)
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


class DeploymentEvent(StatusEvent):
    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events")

    class Meta(StatusEvent.Meta):
        pass


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
