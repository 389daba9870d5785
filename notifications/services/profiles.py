"""Customer contact profiles and per-event channel choices."""

from django.contrib.auth.models import User
from django.db import transaction

from common.errors import ApplicationError
from notifications.events import spec_for
from notifications.models import Audience, Channel, CustomerProfile, Language
from notifications.phone import normalize_whatsapp_number


def customer_profile_upsert(
    *,
    user: User,
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


def customer_event_channels_set(*, user: User, event: str, channels: list[str]) -> CustomerProfile:
    """Choose the channels of one customer event (an empty list: no message unless essential).

    WhatsApp needs a number and consent on the profile.
    """
    try:
        spec = spec_for(event)
    except ValueError:
        raise ApplicationError.for_fields({"event": "Unknown event."}) from None
    if spec.audience != Audience.CUSTOMER:
        raise ApplicationError.for_fields({"event": "Staff alerts have no customer choice."})
    unknown = [c for c in channels if c not in Channel.values]
    if unknown:
        raise ApplicationError.for_fields(
            {"channels": f"Unknown channel(s): {', '.join(unknown)}."}
        )
    with transaction.atomic():
        profile, _ = CustomerProfile.objects.select_for_update().get_or_create(user=user)
        if Channel.WHATSAPP in channels and not (
            profile.whatsapp_number and profile.whatsapp_consent
        ):
            raise ApplicationError.for_fields(
                {"channels": "WhatsApp messages need a valid number and your consent."}
            )
        ordered = [c for c in (Channel.WHATSAPP, Channel.EMAIL) if c in channels]
        profile.event_channels = {**profile.event_channels, event: [str(c) for c in ordered]}
        profile.save(update_fields=["event_channels", "updated_at"])
    return profile


def customer_language_set(*, user: User, language: str) -> CustomerProfile:
    """Save the customer's language (the site's switcher); nothing else on the profile changes."""
    if language not in Language.values:
        raise ApplicationError.for_fields(
            {"preferred_language": f"Choose one of {', '.join(Language.values)}."}
        )
    with transaction.atomic():
        profile, _ = CustomerProfile.objects.select_for_update().get_or_create(user=user)
        if profile.preferred_language != language:
            profile.preferred_language = language
            profile.save(update_fields=["preferred_language", "updated_at"])
    return profile
