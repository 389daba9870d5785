"""Saved payment methods (Stripe holds the card; we keep its id and what the customer sees)
and the off-session charges of renewal invoices."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from common.models import TimeStampedModel
from common.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS


class StripeCustomer(TimeStampedModel):
    """The Stripe Customer of an account: one per account, created on first use."""

    customer = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stripe_customer"
    )
    stripe_customer_id = models.CharField(max_length=255, unique=True)

    def __str__(self) -> str:
        return self.stripe_customer_id


class SavedPaymentMethod(TimeStampedModel):
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payment_methods"
    )
    stripe_payment_method_id = models.CharField(max_length=255, unique=True)
    brand = models.CharField(max_length=40, blank=True)
    last4 = models.CharField(max_length=4, blank=True)
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    # Renewals are charged to it N days before they are due.
    is_default = models.BooleanField(default=False)
    # Removed by the customer (and detached at Stripe): kept for the history of charges.
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-is_default", "-created_at")
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(is_default=True, removed_at__isnull=True),
                name="payment_method_one_default",
            ),
            models.CheckConstraint(
                condition=Q(removed_at__isnull=True) | Q(is_default=False),
                name="payment_method_removed_not_default",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand or 'card'} •••• {self.last4}" if self.last4 else self.brand or "card"


class AutoChargeStatus(models.TextChoices):
    # Sent to Stripe; Stripe's answer (and then its webhook) decides.
    PENDING = "pending", "Pending"
    PROCESSING = "processing", "Processing"
    SUCCEEDED = "succeeded", "Succeeded"
    # The bank asks the customer to authenticate (SCA): they were sent a link to pay.
    REQUIRES_ACTION = "requires_action", "Needs the customer (SCA)"
    DECLINED = "declined", "Declined"
    # Stripe could not be reached or refused the request: retried per schedule.
    ERROR = "error", "Error"


class AutoChargeAttempt(TimeStampedModel):
    """One off-session charge of a renewal invoice; its idempotency key is sent with it, so a
    retried request after a crash cannot charge twice."""

    invoice = models.ForeignKey(
        "billing.Invoice", on_delete=models.PROTECT, related_name="auto_charges"
    )
    payment_method = models.ForeignKey(
        SavedPaymentMethod, on_delete=models.PROTECT, related_name="charges"
    )
    attempt_number = models.PositiveSmallIntegerField()
    idempotency_key = models.CharField(max_length=100, unique=True)
    amount = models.DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    currency = models.CharField(max_length=3)
    payment_intent_id = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=20, choices=AutoChargeStatus.choices, default=AutoChargeStatus.PENDING
    )
    # Stripe's decline_code / error code and its customer-safe message.
    failure_code = models.CharField(max_length=100, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    # When the next attempt may run (declined or error), per BILLING_AUTOCHARGE_RETRY_DAYS.
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "attempt_number"], name="auto_charge_attempt_unique"
            ),
            models.UniqueConstraint(
                fields=["payment_intent_id"],
                condition=~Q(payment_intent_id=""),
                name="auto_charge_intent_unique",
            ),
            # One charge in flight per invoice.
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(status__in=["pending", "processing"]),
                name="auto_charge_one_in_flight",
            ),
            models.CheckConstraint(
                condition=Q(status__in=AutoChargeStatus.values), name="auto_charge_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Auto-charge {self.attempt_number} of invoice {self.invoice_id}"
