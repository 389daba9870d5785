"""How to reach a customer: WhatsApp number, language and channel preferences.

Kept here (not in billing) because every app notifies customers and may import notifications.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from common.models import TimeStampedModel


class Language(models.TextChoices):
    ENGLISH = "en", "English"
    INDONESIAN = "id", "Bahasa Indonesia"


class CustomerProfile(TimeStampedModel):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="customer_profile"
    )
    # E.164, e.g. +6281234567890; validated and normalised by the profile service.
    whatsapp_number = models.CharField(max_length=20, blank=True)
    whatsapp_consent = models.BooleanField(
        default=False, help_text="The customer agreed to receive WhatsApp messages."
    )
    preferred_language = models.CharField(
        max_length=5, choices=Language.choices, default=Language.ENGLISH
    )
    notify_by_email = models.BooleanField(default=True)
    notify_by_whatsapp = models.BooleanField(default=False)
    marketing_opt_in = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(whatsapp_number="") | Q(whatsapp_number__regex=r"^\+[1-9][0-9]{6,14}$"),
                name="profile_whatsapp_e164",
            ),
            # WhatsApp messages need a number and consent.
            models.CheckConstraint(
                condition=Q(notify_by_whatsapp=False)
                | (Q(whatsapp_consent=True) & ~Q(whatsapp_number="")),
                name="profile_whatsapp_needs_number_and_consent",
            ),
        ]

    def __str__(self) -> str:
        return f"Profile of {self.user}"
