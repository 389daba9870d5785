"""Account records: billing details printed on invoices, the verified e-mail address, and the
history of account changes (who changed what, when).

The login is Django's User (username = e-mail, lowercased); these rows sit beside it.
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from common.models import TimeStampedModel

# Length limits of the billing details (the form, the service and the columns agree).
COMPANY_NAME_MAX = 200
ADDRESS_LINE_MAX = 200
CITY_MAX = 100
POSTCODE_MAX = 20
REGION_MAX = 100
TAX_ID_MAX = 40


class BillingProfile(TimeStampedModel):
    """What the customer wants printed in an invoice's "Bill to" block (one per account)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="billing_profile"
    )
    company_name = models.CharField(_("company name"), max_length=COMPANY_NAME_MAX, blank=True)
    address_line1 = models.CharField(_("address"), max_length=ADDRESS_LINE_MAX, blank=True)
    address_line2 = models.CharField(_("address (line 2)"), max_length=ADDRESS_LINE_MAX, blank=True)
    city = models.CharField(_("city"), max_length=CITY_MAX, blank=True)
    postcode = models.CharField(_("postcode"), max_length=POSTCODE_MAX, blank=True)
    region = models.CharField(_("region"), max_length=REGION_MAX, blank=True)
    # ISO 3166-1 alpha-2, upper case ("" when not given).
    country = models.CharField(_("country"), max_length=2, blank=True)
    tax_id = models.CharField(_("tax ID"), max_length=TAX_ID_MAX, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(country="") | models.Q(country__regex=r"^[A-Z]{2}$"),
                name="billing_profile_country_iso2",
            )
        ]

    def __str__(self) -> str:
        return self.company_name or f"billing details of user {self.user_id}"


class VerifiedEmail(models.Model):
    """The address an account proved it receives mail at (one per account).

    An account's address is verified when this row's e-mail equals its current e-mail (case
    aside): staff changing the address in the admin therefore makes it unverified again. A
    verified address belongs to one account only (unique, case-insensitive).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="verified_email"
    )
    email = models.EmailField(max_length=254)
    verified_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="verified_email_unique_ci"),
        ]

    def __str__(self) -> str:
        return self.email


class AccountEventKind(models.TextChoices):
    SIGNUP_CONFIRMED = "signup_confirmed", _("Sign-up confirmed")
    VERIFICATION_SENT = "verification_sent", _("Verification link sent")
    EMAIL_VERIFIED = "email_verified", _("E-mail address verified")
    EMAIL_CHANGE_REQUESTED = "email_change_requested", _("E-mail change requested")
    EMAIL_CHANGED = "email_changed", _("E-mail address changed")
    PASSWORD_CHANGED = "password_changed", _("Password changed")
    NAME_CHANGED = "name_changed", _("Name changed")
    BILLING_DETAILS_CHANGED = "billing_details_changed", _("Billing details changed")


class AccountEvent(models.Model):
    """One row per change of an account: who did it, what, when (never a secret in `data`).

    `data` holds the values after the change (e-mail addresses, the name, the billing details:
    an invoice prints the billing details of the last change before it was issued).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_events"
    )
    kind = models.CharField(max_length=32, choices=AccountEventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("created_at", "id")
        indexes = [
            models.Index(fields=["user", "kind", "created_at"], name="account_event_user_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.actor_label}"
