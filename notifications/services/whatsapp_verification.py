"""Proving a WhatsApp number: the customer sends us "verify <code>" from it.

The profile page asks for a code (`whatsapp_verification_start`): six random digits, shown on
the page once, kept only as an HMAC on the profile with the number it is for and an expiry.
The customer sends "verify 123456" to our WhatsApp number; WhatsApp itself authenticates the
sender (the webhook is signed by Meta), so a matching code from that number proves the customer
holds it (`whatsapp_verification_confirm`, run by the inbound message's task). No message has
to be sent first (a business-initiated WhatsApp message would need an approved template), and a
number typed by someone else onto their own profile can never be verified by them.

Only a verified number gets answers to the WhatsApp commands (services/inbound.py). A changed
number is unverified by itself (the verified number no longer equals it).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from common.errors import ApplicationError
from notifications.models import CustomerProfile

logger = logging.getLogger(__name__)

CODE_DIGITS = 6
# A new code at most this often (the page's button cannot be used to flood the table).
NEW_CODE_INTERVAL = timedelta(seconds=30)


def verification_code_digest(code: str) -> str:
    """The HMAC a code is kept and compared as (keyed by SECRET_KEY: a leaked table alone does
    not let anyone try codes offline)."""
    return salted_hmac("notifications.whatsapp_verification", code.strip()).hexdigest()


@dataclass(frozen=True)
class VerificationCode:
    code: str
    number: str
    expires_at: datetime


def whatsapp_verification_start(*, user: User) -> VerificationCode:
    """A new code for the number on the customer's profile (any earlier code stops working)."""
    with transaction.atomic():
        profile = CustomerProfile.objects.select_for_update().filter(user=user).first()
        if profile is None or not profile.whatsapp_number:
            raise ApplicationError.for_fields(
                {"whatsapp_number": _("Save a WhatsApp number on your profile first.")}
            )
        if not profile.whatsapp_consent:
            raise ApplicationError.for_fields(
                {"whatsapp_consent": _("Agree to WhatsApp messages first: we answer there.")}
            )
        if profile.whatsapp_verified:
            raise ApplicationError.for_fields(
                {"whatsapp_number": _("This number is already verified.")}
            )
        now = timezone.now()
        lifetime = timedelta(minutes=settings.WHATSAPP_VERIFICATION_CODE_MINUTES)
        if (
            profile.whatsapp_code_expires_at is not None
            and profile.whatsapp_code_expires_at - lifetime > now - NEW_CODE_INTERVAL
        ):
            raise ApplicationError(
                _("We just made a code for you: wait a moment for a new one."),
                code="rate_limited",
            )
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        profile.whatsapp_code_digest = verification_code_digest(code)
        profile.whatsapp_code_number = profile.whatsapp_number
        profile.whatsapp_code_expires_at = now + lifetime
        profile.whatsapp_code_attempts = 0
        profile.save(
            update_fields=[
                "whatsapp_code_digest",
                "whatsapp_code_number",
                "whatsapp_code_expires_at",
                "whatsapp_code_attempts",
                "updated_at",
            ]
        )
    logger.info("whatsapp verification code issued for user %s", user.pk)
    return VerificationCode(
        code=code, number=profile.whatsapp_number, expires_at=profile.whatsapp_code_expires_at
    )


@dataclass(frozen=True)
class VerificationResult:
    """`profile`: the one the code verified, or (verified False) the one whose pending code
    the message missed; None: no profile waits for a code from this number (no reply)."""

    verified: bool
    profile: CustomerProfile | None


def whatsapp_verification_confirm(*, sender: str, digest: str) -> VerificationResult:
    """A "verify <code>" from `sender` (inside the inbound message's transaction): verify the
    profile whose pending, unexpired code for this number matches; a miss counts against every
    pending code for the number, and a code missed WHATSAPP_VERIFICATION_MAX_ATTEMPTS times
    dies."""
    now = timezone.now()
    pending = list(
        CustomerProfile.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(
            whatsapp_number=sender,
            whatsapp_code_number=sender,
            whatsapp_consent=True,
            whatsapp_code_expires_at__gt=now,
            user__is_active=True,
        )
        .exclude(whatsapp_code_digest="")
        .order_by("pk")
    )
    for profile in pending:
        if digest and hmac.compare_digest(profile.whatsapp_code_digest, digest):
            profile.whatsapp_verified_number = sender
            profile.whatsapp_verified_at = now
            _code_clear(profile)
            profile.save(
                update_fields=[
                    "whatsapp_verified_number",
                    "whatsapp_verified_at",
                    *_CODE_FIELDS,
                    "updated_at",
                ]
            )
            logger.info("whatsapp number verified for user %s", profile.user_id)
            return VerificationResult(verified=True, profile=profile)
    for profile in pending:
        profile.whatsapp_code_attempts += 1
        if profile.whatsapp_code_attempts >= settings.WHATSAPP_VERIFICATION_MAX_ATTEMPTS:
            _code_clear(profile)
            logger.warning("whatsapp verification code of user %s spent", profile.user_id)
        profile.save(update_fields=[*_CODE_FIELDS, "updated_at"])
    return VerificationResult(verified=False, profile=pending[0] if pending else None)


_CODE_FIELDS = (
    "whatsapp_code_digest",
    "whatsapp_code_number",
    "whatsapp_code_expires_at",
    "whatsapp_code_attempts",
)


def _code_clear(profile: CustomerProfile) -> None:
    profile.whatsapp_code_digest = ""
    profile.whatsapp_code_number = ""
    profile.whatsapp_code_expires_at = None
    profile.whatsapp_code_attempts = 0
