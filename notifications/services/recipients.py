"""Who a message goes to: a customer's channels (profile, per-event choices, consent, the
essential-message rule) and staff (ADMIN_EMAILS, ADMIN_PHONE, else the active superusers)."""

import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from django.conf import settings

from notifications.events import spec_for
from notifications.models import Channel, CustomerProfile, Language

CHANNEL_ORDER = (Channel.WHATSAPP, Channel.EMAIL)
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


@dataclass(frozen=True)
class Target:
    channel: str
    recipient: str
    language: str


class Addressee(Protocol):
    """What a customer's targets need of them: a User, or a bulk send's lighter Recipient."""

    @property
    def pk(self) -> Any: ...

    @property
    def email(self) -> str: ...


def customer_profile_of(user: Addressee) -> CustomerProfile | None:
    return CustomerProfile.objects.filter(user_id=user.pk).first()


def whatsapp_allowed(profile: CustomerProfile | None) -> bool:
    return bool(
        settings.WHATSAPP_ENABLED
        and profile is not None
        and profile.whatsapp_consent
        and E164.match(profile.whatsapp_number or "")
    )


class _Unset(Enum):
    """A sentinel type: `profile` not passed (None means "the customer has none")."""

    PROFILE = "unset"


_NO_PROFILE = _Unset.PROFILE


def customer_targets(
    *,
    user: Addressee,
    event: str,
    channels: list[str] | None,
    language: str | None,
    profile: CustomerProfile | _Unset | None = _NO_PROFILE,
) -> list[Target]:
    if profile is _Unset.PROFILE:
        profile = customer_profile_of(user)
    lang = language or (profile.preferred_language if profile else Language.ENGLISH)
    usable = {}
    if profile is not None and whatsapp_allowed(profile):
        usable[Channel.WHATSAPP] = profile.whatsapp_number
    if user.email:
        usable[Channel.EMAIL] = user.email
    if profile is None:
        chosen = {Channel.EMAIL}
    elif event in profile.event_channels:
        chosen = set(profile.event_channels[event])
    else:
        chosen = {Channel.EMAIL} if profile.notify_by_email else set()
        if profile.notify_by_whatsapp:
            chosen.add(Channel.WHATSAPP)
    if channels is not None:
        chosen &= set(channels)
    picked = [c for c in CHANNEL_ORDER if c in chosen and c in usable]
    if not picked and spec_for(event).essential:
        # Transactional messages (server ready, suspension, ...) always reach the customer.
        allowed = [c for c in (Channel.EMAIL, Channel.WHATSAPP) if c in usable]
        if channels is not None:
            allowed = [c for c in allowed if c in channels] or allowed
        picked = allowed[:1]
    return [Target(c, usable[c], lang) for c in picked]


def staff_targets(*, channels: list[str] | None = None) -> list[Target]:
    targets = []
    phone = settings.ADMIN_PHONE
    if settings.WHATSAPP_ENABLED and phone and E164.match(phone):
        targets.append(Target(Channel.WHATSAPP, phone, Language.ENGLISH))
    for _name, address in settings.ADMINS:
        if address:
            targets.append(Target(Channel.EMAIL, address, Language.ENGLISH))
    if not targets:
        # Nobody configured: an alert must still reach someone (the active superusers).
        targets = [
            Target(Channel.EMAIL, address, Language.ENGLISH)
            for address in staff_alert_fallback_emails()
        ]
    if channels is not None:
        targets = [t for t in targets if t.channel in channels]
    return targets


def staff_alert_fallback_emails() -> list[str]:
    """Where staff alerts go when neither ADMIN_EMAILS nor ADMIN_PHONE is set."""
    from django.contrib.auth import get_user_model

    return list(
        get_user_model()
        .objects.filter(is_superuser=True, is_active=True)
        .exclude(email="")
        .order_by("pk")
        .values_list("email", flat=True)[:20]
    )


def staff_alert_recipients() -> tuple[str, list[str]]:
    """(how, who) staff alerts reach: "configured" (ADMIN_EMAILS / ADMIN_PHONE), "superusers"
    (the fallback) or "nobody"; for start-up and the operators' commands."""
    configured = [address for _name, address in settings.ADMINS if address]
    if settings.WHATSAPP_ENABLED and settings.ADMIN_PHONE:
        configured.append(settings.ADMIN_PHONE)
    if configured:
        return "configured", configured
    fallback = staff_alert_fallback_emails()
    return ("superusers", fallback) if fallback else ("nobody", [])
