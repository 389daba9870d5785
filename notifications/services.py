"""Customer contact profiles. (Message sending arrives with the notifications issue.)"""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from common.errors import ApplicationError
from notifications.models import CustomerProfile, Language
from notifications.phone import normalize_whatsapp_number


def customer_profile_upsert(
    *,
    user: AbstractBaseUser,
    whatsapp_number: str = "",
    whatsapp_consent: bool = False,
    preferred_language: str = Language.ENGLISH,
    notify_by_email: bool = True,
    notify_by_whatsapp: bool = False,
) -> CustomerProfile:
    errors: dict[str, list[str]] = {}
    try:
        number = normalize_whatsapp_number(whatsapp_number)
    except ValueError as exc:
        errors["whatsapp_number"] = [str(exc)]
        number = ""
    if preferred_language not in Language.values:
        errors["preferred_language"] = [f"Choose one of {', '.join(Language.values)}."]
    if notify_by_whatsapp and not (number and whatsapp_consent):
        errors.setdefault("notify_by_whatsapp", []).append(
            "WhatsApp messages need a valid number and your consent."
        )
    if errors:
        raise ApplicationError.for_fields(errors)
    with transaction.atomic():
        profile, _ = CustomerProfile.objects.update_or_create(
            user=user,
            defaults={
                "whatsapp_number": number,
                "whatsapp_consent": whatsapp_consent,
                "preferred_language": preferred_language,
                "notify_by_email": notify_by_email,
                "notify_by_whatsapp": notify_by_whatsapp,
            },
        )
    return profile
