"""The customer's panel login (one per customer, shared by all their servers)."""

from django.conf import settings
from django.db import models

from common.fields import EncryptedCharField
from common.models import TimeStampedModel


class PanelAccount(TimeStampedModel):
    """The customer's login on the panel. One per customer, shared by all their servers."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="panel_account"
    )
    panel_user_id = models.PositiveIntegerField(unique=True, null=True, blank=True)
    external_id = models.CharField(max_length=191, unique=True)
    username = models.CharField(max_length=191)
    email = models.EmailField(max_length=191)
    # Encrypted at rest (Fernet); empty when we adopted an existing panel user whose password
    # we never knew. Never logged, never listed in the admin.
    password = EncryptedCharField(max_length=255, blank=True, null=True)
    created_by_portal = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.username} (panel user #{self.panel_user_id or '-'})"
