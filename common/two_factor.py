"""The staff second factor: a TOTP device (authenticator app) and single-use recovery codes.

django-otp stores the devices (otp_totp.TOTPDevice, otp_static.StaticDevice with its tokens)
and throttles guessing: after each wrong code a device refuses every code for an exponentially
growing time (1 s, 2 s, 4 s, ...), until a right one. The admin site (common.admin_site) asks
for a verified session; these services enrol, verify and renew.
"""

import secrets
from base64 import b32encode

import segno
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django_otp import verify_token
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from common.errors import ApplicationError, CommonErrorCode

RECOVERY_CODE_COUNT = 10
WRONG_CODE = "That code is not valid. Check the time on your phone, or use a recovery code."


def _normalize(token: str) -> str:
    return "".join(token.split()).replace("-", "").lower()


def staff_totp_device_get(*, user: AbstractBaseUser) -> TOTPDevice | None:
    """The user's confirmed authenticator, if they enrolled one."""
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).first()


def staff_totp_enrolment_device(*, user: AbstractBaseUser) -> TOTPDevice:
    """The unconfirmed device being enrolled: the same one (and secret) on every reload."""
    if staff_totp_device_get(user=user) is not None:
        raise ApplicationError(
            "An authenticator is already set up.", code=CommonErrorCode.ALREADY_ENROLLED
        )
    device = TOTPDevice.objects.devices_for_user(user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def totp_secret_base32(*, device: TOTPDevice) -> str:
    """The secret as authenticator apps accept it when typed in (base32, no padding)."""
    return b32encode(device.bin_key).decode().rstrip("=")


def totp_qr_svg_data_uri(*, device: TOTPDevice) -> str:
    """The otpauth:// URI as an SVG QR code in a data: URI (an <img>, allowed by our CSP)."""
    return segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2)


@transaction.atomic
def staff_totp_enrolment_confirm(
    *, user: AbstractBaseUser, token: str
) -> tuple[TOTPDevice, list[str]]:
    """Confirm the authenticator with its first code; returns it and new recovery codes."""
    device = staff_totp_enrolment_device(user=user)
    if verify_token(user, device.persistent_id, _normalize(token)) is None:
        raise ApplicationError.for_fields({"token": WRONG_CODE})
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return device, staff_recovery_codes_renew(user=user)


@transaction.atomic
def staff_recovery_codes_renew(*, user: AbstractBaseUser) -> list[str]:
    """Replace the user's recovery codes with RECOVERY_CODE_COUNT new ones (shown once)."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = [_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def _recovery_code() -> str:
    # 10 base32 characters, 50 bits: far beyond guessing with the device throttle.
    return b32encode(secrets.token_bytes(10)).decode()[:10].lower()


def staff_recovery_codes_left(*, user: AbstractBaseUser) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def staff_second_factor_verify(*, user: AbstractBaseUser, token: str) -> Device:
    """The device that accepts this code: the authenticator, or a recovery code (used up)."""
    token = _normalize(token)
    if token:
        candidates: list[Device] = []
        if len(token) == 6 and token.isascii() and token.isdigit():
            candidates.extend(TOTPDevice.objects.devices_for_user(user, confirmed=True))
        else:
            candidates.extend(StaticDevice.objects.devices_for_user(user, confirmed=True))
        for device in candidates:
            verified = verify_token(user, device.persistent_id, token)
            if verified is not None:
                return verified
    raise ApplicationError.for_fields({"token": WRONG_CODE})
