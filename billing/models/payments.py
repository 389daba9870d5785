"""Payments (manual transfers and Stripe), Stripe Checkout sessions and received Stripe events."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from common.models import TimeStampedModel
from common.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS


class PaymentProvider(models.TextChoices):
    MANUAL = "manual", "Manual transfer"
    STRIPE = "stripe", "Stripe"


class PaymentStatus(models.TextChoices):
    SUCCEEDED = "succeeded", "Succeeded"
    REFUNDED = "refunded", "Refunded"


class Payment(TimeStampedModel):
    invoice = models.ForeignKey(
        "billing.Invoice", on_delete=models.PROTECT, related_name="payments"
    )
    provider = models.CharField(max_length=20, choices=PaymentProvider.choices)
    amount = models.DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    currency = models.CharField(max_length=3)
    # Bank transfer reference, or the Stripe PaymentIntent / Checkout Session id.
    reference = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.SUCCEEDED
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            # Money is applied to an invoice at most once, whatever races.
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(status=PaymentStatus.SUCCEEDED),
                name="payment_one_succeeded_per_invoice",
            ),
            models.UniqueConstraint(
                fields=["provider", "reference"],
                condition=~Q(reference=""),
                name="payment_unique_provider_reference",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.amount} {self.currency} for {self.invoice_id}"


class CheckoutSessionStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETE = "complete", "Complete"
    EXPIRED = "expired", "Expired"


class CheckoutSession(TimeStampedModel):
    invoice = models.ForeignKey(
        "billing.Invoice", on_delete=models.PROTECT, related_name="checkout_sessions"
    )
    stripe_session_id = models.CharField(max_length=255, unique=True)
    url = models.URLField(max_length=2000, blank=True)
    amount_minor = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(
        max_length=20, choices=CheckoutSessionStatus.choices, default=CheckoutSessionStatus.OPEN
    )
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.stripe_session_id


class StripeEventStatus(models.TextChoices):
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored (nothing to do)"
    REJECTED = "rejected", "Rejected (mismatch; needs staff)"


class StripeEvent(models.Model):
    """Each Stripe event id is stored once: a duplicate delivery finds the row and does nothing."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    livemode = models.BooleanField(default=False)
    stripe_created_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=20, choices=StripeEventStatus.choices)
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What we read from the event (ids, amounts, statuses) - never the whole payload.
    summary = models.JSONField(default=dict, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ("-received_at",)

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
