"""Provisioning requests: the hand-off from billing (one per deployment, ever), their
transition table and history."""

from django.db import models
from django.db.models import Q

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
