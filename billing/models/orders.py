"""Orders: what a customer asked for, and the history of what happened to it."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from common.models import StatusEvent, TimeStampedModel
from common.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from common.state import StateMachine, TransitionTable


class OrderStatus(models.TextChoices):
    PENDING = "pending", _("Awaiting payment")
    # Paid (or confirmed by staff) and handed to provisioning; also where a failed automatic
    # provisioning returns to, waiting for a retry or manual setup.
    CONFIRMED = "confirmed", _("Confirmed")
    PROVISIONING = "provisioning", _("Provisioning")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")


S = OrderStatus
ORDER_TRANSITIONS = TransitionTable(
    "Order",
    {
        S.PENDING: {S.CONFIRMED, S.CANCELLED},
        S.CONFIRMED: {S.PROVISIONING, S.COMPLETED, S.CANCELLED},
        # Cancelled: refunded by staff while waiting for capacity (no server exists).
        S.PROVISIONING: {S.COMPLETED, S.CONFIRMED, S.CANCELLED},
        S.COMPLETED: set(),
        S.CANCELLED: set(),
    },
)


class Order(TimeStampedModel):
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders"
    )
    plan = models.ForeignKey("billing.Plan", on_delete=models.PROTECT, related_name="orders")
    billing_cycle = models.CharField(max_length=20)
    location = models.ForeignKey(
        "servers.Location", on_delete=models.PROTECT, related_name="orders"
    )
    currency = models.CharField(max_length=3)
    coupon = models.ForeignKey(
        "billing.Coupon", null=True, blank=True, on_delete=models.PROTECT, related_name="orders"
    )
    server_name = models.CharField(max_length=191)
    variables = models.JSONField(default=dict, blank=True)
    deployment = models.OneToOneField(
        "servers.Deployment", on_delete=models.PROTECT, related_name="order"
    )
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=S.PENDING)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # Last provisioning error shown to staff while the order waits in "confirmed".
    last_error = models.TextField(blank=True)
    # Client-chosen key that makes a retried POST /api/v1/orders/ return the first order.
    idempotency_key = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ("-created_at",)
        # The admin filter's choices (common.admin.distinct_values: a loose index scan).
        indexes = [models.Index(fields=["billing_cycle"], name="order_billing_cycle_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=OrderStatus.values), name="order_status_valid"
            ),
            models.UniqueConstraint(
                fields=["customer", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="order_unique_idempotency_key",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[S.PENDING, S.CANCELLED]) | Q(confirmed_at__isnull=False),
                name="order_confirmed_has_timestamp",
            ),
        ]

    def __str__(self) -> str:
        return f"Order #{self.pk}"


class OrderAddon(models.Model):
    """An add-on on an order, with the price it was sold at."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="order_addons")
    addon = models.ForeignKey("billing.Addon", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=120)
    amount = models.DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "addon"], name="order_addon_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class OrderEvent(StatusEvent):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")

    class Meta(StatusEvent.Meta):
        pass


# Orders move and record history only through this (common.state.StateMachine).
ORDER_STATES = StateMachine(table=ORDER_TRANSITIONS, event_model=OrderEvent, event_fk="order")
