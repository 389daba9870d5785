"""Invoices with exact Decimal lines and a status history."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from common.models import StatusEvent, TimeStampedModel
from common.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from common.state import StateMachine, TransitionTable


class InvoiceStatus(models.TextChoices):
    UNPAID = "unpaid", _("Unpaid")
    PAID = "paid", _("Paid")
    CANCELLED = "cancelled", _("Cancelled")
    REFUNDED = "refunded", _("Refunded")


S = InvoiceStatus
INVOICE_TRANSITIONS = TransitionTable(
    "Invoice",
    {
        S.UNPAID: {S.PAID, S.CANCELLED},
        S.PAID: {S.REFUNDED},
        S.CANCELLED: set(),
        S.REFUNDED: set(),
    },
)


class InvoiceKind(models.TextChoices):
    NEW_ORDER = "new_order", "New order"
    RENEWAL = "renewal", "Renewal"
    # The prorated difference of an upgrade (billing.models.lifecycle.PlanChange).
    UPGRADE = "upgrade", "Plan upgrade"


class InvoiceSequence(models.Model):
    """Gap-free invoice numbers per year: the row is locked while a number is taken."""

    year = models.PositiveIntegerField(unique=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last_number}"


class Invoice(TimeStampedModel):
    number = models.CharField(max_length=40, unique=True)
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="invoices"
    )
    order = models.ForeignKey(
        "billing.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    deployment = models.ForeignKey(
        "servers.Deployment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="invoices",
    )
    kind = models.CharField(
        max_length=20, choices=InvoiceKind.choices, default=InvoiceKind.NEW_ORDER
    )
    currency = models.CharField(max_length=3)
    subtotal = models.DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    discount_total = models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, default=0
    )
    # Account credit spent on the invoice when it was issued (billing.services.credit).
    credit_applied = models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, default=0
    )
    # What is left to pay: subtotal - discount_total - credit_applied.
    total = models.DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    status = models.CharField(max_length=20, choices=InvoiceStatus.choices, default=S.UNPAID)
    issued_at = models.DateTimeField()
    due_date = models.DateField(help_text="In the billing time zone")
    paid_at = models.DateTimeField(null=True, blank=True)
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    # When the dunning job queued each renewal message (set with the messages, in their
    # transaction): a re-run selects only invoices still missing one, so it costs nothing.
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    overdue_notice_sent_at = models.DateTimeField(null=True, blank=True)
    suspension_warning_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-issued_at", "-id")
        indexes = [
            # The admin's list order and its currency filter's choices.
            models.Index(fields=["-issued_at", "-id"], name="invoice_issued_idx"),
            models.Index(fields=["currency"], name="invoice_currency_idx"),
            # Dunning reads unpaid renewals by due date only.
            models.Index(
                fields=["due_date", "id"],
                condition=Q(status=S.UNPAID, kind=InvoiceKind.RENEWAL),
                name="invoice_unpaid_renewal_due_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=InvoiceStatus.values), name="invoice_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(total=F("subtotal") - F("discount_total") - F("credit_applied")),
                name="invoice_total_with_credit",
            ),
            models.CheckConstraint(
                condition=Q(total__gte=0) & Q(discount_total__gte=0) & Q(credit_applied__gte=0),
                name="invoice_amounts_non_negative",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=[S.PAID, S.REFUNDED]) | Q(paid_at__isnull=False),
                name="invoice_paid_has_timestamp",
            ),
            # A new order has exactly one invoice.
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(kind=InvoiceKind.NEW_ORDER),
                name="invoice_one_per_new_order",
            ),
            # A server is billed once per period, however often the renewal job runs. A voided
            # invoice does not count: a revoked cancellation's period is invoiced again.
            models.UniqueConstraint(
                fields=["deployment", "period_start"],
                condition=Q(kind=InvoiceKind.RENEWAL) & ~Q(status=S.CANCELLED),
                name="invoice_one_renewal_per_period",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class InvoiceLineKind(models.TextChoices):
    PLAN = "plan", "Plan"
    SETUP_FEE = "setup_fee", "Setup fee"
    ADDON = "addon", "Add-on"
    DISCOUNT = "discount", "Discount"
    # Account credit spent on the invoice (negative).
    CREDIT = "credit", "Account credit"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    kind = models.CharField(max_length=20, choices=InvoiceLineKind.choices)
    description = models.CharField(max_length=255)
    quantity = models.PositiveIntegerField(default=1)
    unit_amount = models.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES
    )
    # quantity * unit_amount; negative only for discounts and credit.
    amount = models.DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("invoice", "position", "id")
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    kind__in=[InvoiceLineKind.DISCOUNT, InvoiceLineKind.CREDIT], amount__lte=0
                )
                | (
                    ~Q(kind__in=[InvoiceLineKind.DISCOUNT, InvoiceLineKind.CREDIT])
                    & Q(amount__gte=0)
                ),
                name="invoice_line_sign_with_credit",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"


class InvoiceEvent(StatusEvent):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="events")

    class Meta(StatusEvent.Meta):
        pass


# Invoices move and record history only through this (common.state.StateMachine).
INVOICE_STATES = StateMachine(
    table=INVOICE_TRANSITIONS, event_model=InvoiceEvent, event_fk="invoice"
)
