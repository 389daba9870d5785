"""The catalog: plans with their full panel spec, prices per billing cycle, add-ons, coupons."""

from decimal import Decimal

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from common.models import TimeStampedModel
from common.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS


class BillingCycle(models.TextChoices):
    MONTHLY = "monthly", _("Monthly")
    QUARTERLY = "quarterly", _("Quarterly")
    SEMIANNUAL = "semiannual", _("Semi-annual")
    ANNUAL = "annual", _("Annual")

    @property
    def months(self) -> int:
        return {"monthly": 1, "quarterly": 3, "semiannual": 6, "annual": 12}[self.value]


class PlanCategory(models.TextChoices):
    GAME_SERVER = "game_server", _("Game server")
    DISCORD_BOT = "discord_bot", _("Discord bot")


_threads_validator = RegexValidator(r"^[0-9-,]+$", "CPU pinning is a list such as 0-1,3.")
_docker_image_validator = RegexValidator(
    r"^~?[\w\.\/\-:@ ]*$", "Not a valid docker image reference."
)


class Plan(TimeStampedModel):
    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    category = models.CharField(
        max_length=20, choices=PlanCategory.choices, default=PlanCategory.GAME_SERVER
    )
    # Panel limits, in the panel's units (MiB, % of one core, block-IO weight).
    memory_mb = models.PositiveIntegerField(help_text="MiB; 0 = unlimited")
    swap_mb = models.IntegerField(default=0, help_text="MiB; -1 = unlimited, 0 = none")
    disk_mb = models.PositiveIntegerField(help_text="MiB; 0 = unlimited")
    io_weight = models.PositiveIntegerField(default=500, help_text="Block-IO weight 10..1000")
    cpu_percent = models.PositiveIntegerField(help_text="% of one core; 100 = 1 core")
    threads = models.CharField(
        max_length=191, blank=True, validators=[_threads_validator], help_text="CPU pinning"
    )
    oom_disabled = models.BooleanField(default=True)
    # Panel feature limits.
    databases = models.PositiveIntegerField(default=0)
    allocations = models.PositiveIntegerField(default=1, help_text="Ports the customer may have")
    backups = models.PositiveIntegerField(default=0)
    # What runs on the server.
    nest_id = models.PositiveIntegerField(help_text="Panel nest id")
    egg_id = models.PositiveIntegerField(help_text="Panel egg id")
    docker_image = models.CharField(max_length=191, validators=[_docker_image_validator])
    startup = models.TextField()
    environment = models.JSONField(
        default=dict, blank=True, help_text="Egg variable values set for every order of this plan"
    )
    allowed_locations = models.ManyToManyField(
        "servers.Location",
        blank=True,
        related_name="plans",
        help_text="Where this plan can be deployed. Empty: every active location.",
    )
    is_active = models.BooleanField(default=True)
    display_order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("display_order", "name")
        constraints = [
            models.CheckConstraint(condition=Q(swap_mb__gte=-1), name="plan_swap_min"),
            models.CheckConstraint(
                condition=Q(io_weight__gte=10, io_weight__lte=1000), name="plan_io_range"
            ),
            models.CheckConstraint(condition=Q(allocations__gte=1), name="plan_allocations_min"),
        ]

    def __str__(self) -> str:
        return self.name


class PlanPrice(models.Model):
    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="prices")
    billing_cycle = models.CharField(max_length=20, choices=BillingCycle.choices)
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        validators=[MinValueValidator(Decimal("0"))],
    )
    setup_fee = models.DecimalField(
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ("plan", "billing_cycle")
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "billing_cycle", "currency"], name="plan_price_unique_cycle"
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0) & Q(setup_fee__gte=0), name="plan_price_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(billing_cycle__in=BillingCycle.values), name="plan_price_cycle_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan} {self.billing_cycle}: {self.amount} {self.currency}"


class Addon(TimeStampedModel):
    """A resource boost bought with a plan (e.g. the seeds' "Private Instance")."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    memory_mb = models.PositiveIntegerField(default=0)
    cpu_percent = models.PositiveIntegerField(default=0)
    disk_mb = models.PositiveIntegerField(default=0)
    databases = models.PositiveIntegerField(default=0)
    allocations = models.PositiveIntegerField(default=0)
    backups = models.PositiveIntegerField(default=0)
    compatible_plans = models.ManyToManyField(
        Plan, blank=True, related_name="addons", help_text="Empty: every plan."
    )
    is_active = models.BooleanField(default=True)
    display_order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("display_order", "name")

    def __str__(self) -> str:
        return self.name


class AddonPrice(models.Model):
    addon = models.ForeignKey(Addon, on_delete=models.CASCADE, related_name="prices")
    billing_cycle = models.CharField(max_length=20, choices=BillingCycle.choices)
    currency = models.CharField(max_length=3)
    amount = models.DecimalField(
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        validators=[MinValueValidator(Decimal("0"))],
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["addon", "billing_cycle", "currency"], name="addon_price_unique_cycle"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="addon_price_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.addon} {self.billing_cycle}: {self.amount} {self.currency}"


class CouponKind(models.TextChoices):
    PERCENT = "percent", "Percent off"
    FIXED = "fixed", "Fixed amount off"


class Coupon(TimeStampedModel):
    code = models.CharField(max_length=40, unique=True, help_text="Stored upper case")
    description = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=10, choices=CouponKind.choices)
    value = models.DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
    currency = models.CharField(max_length=3, blank=True, help_text="Required for fixed coupons")
    max_redemptions = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: no limit"
    )
    max_redemptions_per_customer = models.PositiveIntegerField(null=True, blank=True)
    times_redeemed = models.PositiveIntegerField(default=0)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    plans = models.ManyToManyField(Plan, blank=True, related_name="coupons", help_text="Empty: all")
    applies_to_setup_fee = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ("code",)
        constraints = [
            models.CheckConstraint(condition=Q(value__gt=0), name="coupon_value_positive"),
            models.CheckConstraint(
                condition=~Q(kind=CouponKind.PERCENT) | Q(value__lte=100),
                name="coupon_percent_max_100",
            ),
            models.CheckConstraint(
                condition=~Q(kind=CouponKind.FIXED) | ~Q(currency=""),
                name="coupon_fixed_has_currency",
            ),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True)
                | Q(times_redeemed__lte=F("max_redemptions")),
                name="coupon_redemptions_within_limit",
            ),
        ]

    def __str__(self) -> str:
        return self.code
