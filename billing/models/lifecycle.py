"""A live server's lifecycle requests: plan changes (upgrade/downgrade) and cancellations.

Each is a row with a status history; a partial unique constraint allows one open change and
one scheduled cancellation per server, whatever races.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from common.models import StatusEvent, TimeStampedModel
from common.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from common.state import StateMachine, TransitionTable


class PlanChangeDirection(models.TextChoices):
    UPGRADE = "upgrade", _("Upgrade")
    DOWNGRADE = "downgrade", _("Downgrade")


class PlanChangeStatus(models.TextChoices):
    # An upgrade waits for its invoice to be paid.
    AWAITING_PAYMENT = "awaiting_payment", _("Awaiting payment")
    # A downgrade waits for the end of the paid period (BILLING_DOWNGRADE_AT_PERIOD_END).
    SCHEDULED = "scheduled", _("Scheduled")
    # Paid (or due) but the panel refused or could not be reached: retried, then staff.
    FAILED = "failed", _("Failed (needs retry)")
    APPLIED = "applied", _("Applied")
    CANCELLED = "cancelled", _("Cancelled")


PC = PlanChangeStatus
PLAN_CHANGE_TRANSITIONS = TransitionTable(
    "PlanChange",
    {
        PC.AWAITING_PAYMENT: {PC.APPLIED, PC.FAILED, PC.CANCELLED},
        PC.SCHEDULED: {PC.APPLIED, PC.FAILED, PC.CANCELLED},
        PC.FAILED: {PC.APPLIED, PC.FAILED, PC.CANCELLED},
        PC.APPLIED: set(),
        PC.CANCELLED: set(),
    },
)
PLAN_CHANGE_OPEN = (PC.AWAITING_PAYMENT, PC.SCHEDULED, PC.FAILED)


class PlanChange(TimeStampedModel):
    deployment = models.ForeignKey(
        "servers.Deployment", on_delete=models.PROTECT, related_name="plan_changes"
    )
    order = models.ForeignKey("billing.Order", on_delete=models.PROTECT, related_name="+")
    from_plan = models.ForeignKey("billing.Plan", on_delete=models.PROTECT, related_name="+")
    to_plan = models.ForeignKey("billing.Plan", on_delete=models.PROTECT, related_name="+")
    direction = models.CharField(max_length=10, choices=PlanChangeDirection.choices)
    status = models.CharField(max_length=20, choices=PlanChangeStatus.choices)
    billing_cycle = models.CharField(max_length=20)
    currency = models.CharField(max_length=3)
    # The proration, as quoted to the customer: the paid period, the days left in it, both
    # plans' prices per cycle, and the difference for the days left (charged or credited).
    period_start = models.DateField()
    period_end = models.DateField()
    days_in_period = models.PositiveIntegerField()
    days_left = models.PositiveIntegerField()
    from_price = models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES
    )
    to_price = models.DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    prorated_amount = models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES
    )
    # The upgrade's invoice for the difference.
    invoice = models.OneToOneField(
        "billing.Invoice",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="plan_change",
    )
    # A scheduled downgrade is applied on this date (billing time zone).
    apply_on = models.DateField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(
                fields=["apply_on", "id"],
                condition=Q(status=PC.SCHEDULED),
                name="plan_change_scheduled_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=PlanChangeStatus.values), name="plan_change_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(prorated_amount__gte=0), name="plan_change_amount_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(days_left__lte=models.F("days_in_period")),
                name="plan_change_days_within_period",
            ),
            models.CheckConstraint(
                condition=~Q(from_plan=models.F("to_plan")), name="plan_change_differs"
            ),
            # Two requests at once: one open change per server.
            models.UniqueConstraint(
                fields=["deployment"],
                condition=Q(status__in=PLAN_CHANGE_OPEN),
                name="plan_change_one_open_per_server",
            ),
            models.CheckConstraint(
                condition=~Q(status=PC.APPLIED) | Q(applied_at__isnull=False),
                name="plan_change_applied_has_timestamp",
            ),
        ]

    def __str__(self) -> str:
        return f"Plan change #{self.pk} ({self.get_direction_display().lower()})"


class PlanChangeEvent(StatusEvent):
    plan_change = models.ForeignKey(PlanChange, on_delete=models.CASCADE, related_name="events")

    class Meta(StatusEvent.Meta):
        pass


PLAN_CHANGE_STATES = StateMachine(
    table=PLAN_CHANGE_TRANSITIONS, event_model=PlanChangeEvent, event_fk="plan_change"
)


class CancellationMode(models.TextChoices):
    END_OF_TERM = "end_of_term", _("At the end of the paid period")
    IMMEDIATE = "immediate", _("Immediately")


class CancellationStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    COMPLETED = "completed", _("Completed (server terminated)")
    REVOKED = "revoked", _("Revoked")


CS = CancellationStatus
CANCELLATION_TRANSITIONS = TransitionTable(
    "Cancellation",
    {
        CS.SCHEDULED: {CS.COMPLETED, CS.REVOKED},
        CS.COMPLETED: set(),
        CS.REVOKED: set(),
    },
)


class Cancellation(TimeStampedModel):
    deployment = models.ForeignKey(
        "servers.Deployment", on_delete=models.PROTECT, related_name="cancellations"
    )
    order = models.ForeignKey("billing.Order", on_delete=models.PROTECT, related_name="+")
    mode = models.CharField(max_length=20, choices=CancellationMode.choices)
    status = models.CharField(
        max_length=20, choices=CancellationStatus.choices, default=CS.SCHEDULED
    )
    # The server is terminated by the fleet job on this day (billing time zone).
    effective_on = models.DateField()
    reason = models.TextField(blank=True, help_text="The customer's words, if any")
    # Unused paid days given back (BILLING_CANCEL_IMMEDIATE_REFUND), once terminated.
    credit_amount = models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, null=True, blank=True
    )
    currency = models.CharField(max_length=3)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(
                fields=["effective_on", "id"],
                condition=Q(status=CS.SCHEDULED),
                name="cancellation_due_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=CancellationStatus.values),
                name="cancellation_status_valid",
            ),
            models.UniqueConstraint(
                fields=["deployment"],
                condition=Q(status=CS.SCHEDULED),
                name="cancellation_one_scheduled_per_server",
            ),
            models.CheckConstraint(
                condition=Q(credit_amount__isnull=True) | Q(credit_amount__gte=0),
                name="cancellation_credit_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"Cancellation #{self.pk} ({self.get_mode_display().lower()})"


class CancellationEvent(StatusEvent):
    cancellation = models.ForeignKey(Cancellation, on_delete=models.CASCADE, related_name="events")

    class Meta(StatusEvent.Meta):
        pass


CANCELLATION_STATES = StateMachine(
    table=CANCELLATION_TRANSITIONS, event_model=CancellationEvent, event_fk="cancellation"
)
