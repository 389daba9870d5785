"""WhatsApp numbers: parsed and normalised to E.164 with phonenumbers."""

import phonenumbers
from django.conf import settings


def normalize_whatsapp_number(raw: str, *, region: str | None = None) -> str:
    """'0812-3456-7890' -> '+6281234567890'. Raises ValueError with a readable message."""
    raw = (raw or "").strip()
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, region or settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(
            "Enter a phone number with its country code, e.g. +6281234567890."
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("This is not a valid phone number; include the country code.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
