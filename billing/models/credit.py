"""Account credit: a ledger per customer and currency, never a mutable balance.

Each row is one movement (signed) and the balance after it; the service that writes rows locks
the customer's last row of the currency first, so balance_after is exact and the check
constraint (never below zero) refuses spending credit that is not there.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from common.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS


class CreditEntryKind(models.TextChoices):
    DOWNGRADE = "downgrade", _("Downgrade (unused difference)")
    CANCELLATION = "cancellation", _("Cancellation (unused days)")
    REFUND = "refund", _("Refund to credit")
    STAFF_ADJUSTMENT = "staff_adjustment", _("Staff adjustment")
    # Negative: credit spent on an invoice when it was issued.
    INVOICE_APPLIED = "invoice_applied", _("Applied to an invoice")
    # Positive: credit given back because the invoice it paid was cancelled unpaid.
    INVOICE_RELEASED = "invoice_released", _("Returned from a cancelled invoice")


class CreditEntry(models.Model):
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="credit_entries"
    )
    currency = models.CharField(max_length=3)
    # Signed: positive adds credit, negative spends it.
    amount = models.DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    balance_after = models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES
    )
    kind = models.CharField(max_length=20, choices=CreditEntryKind.choices)
    invoice = models.ForeignKey(
        "billing.Invoice",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="credit_entries",
    )
    description = models.CharField(max_length=255)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name_plural = "credit entries"
        indexes = [
            # The balance is the newest row's balance_after per (customer, currency).
            models.Index(fields=["customer", "currency", "-id"], name="credit_balance_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="credit_amount_nonzero"),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="credit_balance_never_negative"
            ),
            models.CheckConstraint(
                condition=~Q(kind=CreditEntryKind.INVOICE_APPLIED) | Q(amount__lt=0),
                name="credit_applied_is_negative",
            ),
            models.CheckConstraint(
                condition=Q(
                    kind__in=[CreditEntryKind.INVOICE_APPLIED, CreditEntryKind.STAFF_ADJUSTMENT]
                )
                | Q(amount__gt=0),
                name="credit_grants_are_positive",
            ),
            # Credit is spent on an invoice once, given back once, refunded into once.
            models.UniqueConstraint(
                fields=["invoice", "kind"],
                condition=Q(
                    kind__in=[
                        CreditEntryKind.INVOICE_APPLIED,
                        CreditEntryKind.INVOICE_RELEASED,
                        CreditEntryKind.REFUND,
                    ]
                ),
                name="credit_once_per_invoice_and_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount:+} {self.currency} ({self.get_kind_display()})"
