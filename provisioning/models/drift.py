"""Drift items: a difference between billing and the panel, open until resolved."""

from django.db import models
from django.db.models import Q

from provisioning.models.operations import PanelOperation


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
