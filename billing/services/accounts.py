"""Account settings: the verified e-mail address, changing it, the password, the name and the
billing details. Every change writes an AccountEvent (who, what, when; never a secret).

Verification. Sign-up confirms the address by its link (billing.services.customers); accounts
made any other way (staff in the admin, scripts) are unverified until the owner opens a link
sent by `account_verification_send`. With ORDER_REQUIRES_VERIFIED_EMAIL (default on) an
unverified account cannot place an order (`account_order_check`, called by order_place, so the
web and the API refuse alike).

Changing the e-mail (it is also the login): the request takes the current password and mails a
signed link (ACCOUNT_EMAIL_LINK_TIMEOUT) to the new address; nothing changes until it is opened.
Like sign-up, the request never tells whether the new address has an account: if it has, the
new address gets a notice instead of a link. Opening the link re-checks that the address is free
(case-insensitive), changes e-mail and login, marks the address verified and tells the old one.
The link names the old address, so it works once, and not after another change.

Billing details are current on the profile; an invoice prints the details of the last change
before its issue (the AccountEvent rows are the snapshots), so editing them never rewrites an
invoice already issued.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django_countries import countries

from billing.errors import BillingErrorCode
from billing.models import AccountEvent, AccountEventKind, BillingProfile, VerifiedEmail
from billing.models.accounts import (
    ADDRESS_LINE_MAX,
    CITY_MAX,
    COMPANY_NAME_MAX,
    POSTCODE_MAX,
    REGION_MAX,
    TAX_ID_MAX,
)
from common.actors import Actor
from common.errors import ApplicationError

_VERIFY_SALT = "billing.accounts.verify-email"
_CHANGE_SALT = "billing.accounts.change-email"

BILLING_FIELDS: dict[str, int] = {
    "company_name": COMPANY_NAME_MAX,
    "address_line1": ADDRESS_LINE_MAX,
    "address_line2": ADDRESS_LINE_MAX,
    "city": CITY_MAX,
    "postcode": POSTCODE_MAX,
    "region": REGION_MAX,
    "country": 2,
    "tax_id": TAX_ID_MAX,
}
NAME_MAX = 150
# Link mails (verify, change e-mail) share one budget per account.
_LINK_MAIL_KINDS = (AccountEventKind.VERIFICATION_SENT, AccountEventKind.EMAIL_CHANGE_REQUESTED)
ACCOUNT_MAIL_MIN_INTERVAL = 60  # seconds


class EmailNotVerifiedError(ApplicationError):
    default_code = BillingErrorCode.EMAIL_NOT_VERIFIED
    http_status = 403


def _invalid_link() -> ApplicationError:
    return ApplicationError(
        _("This link is invalid or has expired. Ask for a new one from your profile."),
        code=BillingErrorCode.INVALID_LINK,
    )


def _event(*, user: User, kind: str, actor: Actor, data: dict[str, Any] | None = None) -> None:
    AccountEvent.objects.create(
        user=user,
        kind=kind,
        actor=actor.user,
        actor_label=actor.label,
        data=data or {},
    )


class AccountMailThrottled(ApplicationError):
    default_code = BillingErrorCode.TOO_MANY_MAILS
    http_status = 429


def _account_mail_budget(*, user: User, kinds: tuple[str, ...]) -> None:
    """At most ACCOUNT_MAILS_PER_HOUR link mails an hour per account, one a minute: a
    "send again" button pressed in a loop cannot turn us into someone's mail bomb.

    Counted from the account's own event rows under a lock of the user row, so two tabs
    pressing at once cannot both slip under the limit.
    """
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    now = timezone.now()
    recent = list(
        AccountEvent.objects.filter(
            user=user, kind__in=kinds, created_at__gte=now - dt.timedelta(hours=1)
        ).values_list("created_at", flat=True)
    )
    if len(recent) >= settings.ACCOUNT_MAILS_PER_HOUR or any(
        sent > now - dt.timedelta(seconds=ACCOUNT_MAIL_MIN_INTERVAL) for sent in recent
    ):
        raise AccountMailThrottled(
            _("We sent you a link a moment ago: check your inbox, or try again later.")
        )


def _absolute(path: str) -> str:
    return str(settings.PORTAL_BASE_URL).rstrip("/") + path


def _mail(address: str, template: str, context: dict[str, Any]) -> None:
    context = {**context, "email": address, "portal_name": settings.PORTAL_NAME}
    subject, _sep, body = render_to_string(template, context).partition("\n")
    send_mail(subject.strip(), body.lstrip("\n"), None, [address])


# --- Verified address ------------------------------------------------------------------------


def account_email_is_verified(*, user: User) -> bool:
    if not user.email:
        return False
    return VerifiedEmail.objects.filter(user=user, email__iexact=user.email).exists()


def account_email_mark_verified(
    *, user: User, email: str, actor: Actor, kind: str, data: dict[str, Any] | None = None
) -> None:
    """Record that `user` receives mail at `email` (their current address)."""
    VerifiedEmail.objects.update_or_create(
        user=user, defaults={"email": email, "verified_at": timezone.now()}
    )
    _event(user=user, kind=kind, actor=actor, data=data or {"email": email})


def account_order_check(*, user: User) -> None:
    """Refuse an order from an account whose address is unverified (when the setting says so)."""
    if not settings.ORDER_REQUIRES_VERIFIED_EMAIL or account_email_is_verified(user=user):
        return
    raise EmailNotVerifiedError(
        _(
            "Please confirm your e-mail address before placing an order: open the link we "
            "e-mailed you, or send a new one from your profile page."
        ),
        extra={"resend_url": reverse("account-verification-send")},
    )


def account_verification_send(*, user: User, actor: Actor) -> bool:
    """Mail a verification link to the account's current address (False: nothing to do)."""
    if not user.email or account_email_is_verified(user=user):
        return False
    with transaction.atomic():
        _account_mail_budget(user=user, kinds=_LINK_MAIL_KINDS)
        _event(user=user, kind=AccountEventKind.VERIFICATION_SENT, actor=actor)
    token = signing.dumps({"u": user.pk, "e": user.email.lower()}, salt=_VERIFY_SALT)
    link = _absolute(reverse("account-email-verify", kwargs={"token": token}))
    _mail(
        user.email,
        "registration/email_verify_email.txt",
        {"link": link, "timeout_hours": settings.ACCOUNT_EMAIL_LINK_TIMEOUT // 3600},
    )
    return True


def account_email_verify(*, token: str) -> User:
    """Open a verification link: the account's current address becomes verified."""
    try:
        payload = signing.loads(
            token, salt=_VERIFY_SALT, max_age=settings.ACCOUNT_EMAIL_LINK_TIMEOUT
        )
        user_id, email = int(payload["u"]), str(payload["e"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise _invalid_link() from None
    with transaction.atomic():
        user = get_user_model().objects.select_for_update().filter(pk=user_id).first()
        if user is None or user.email.lower() != email:
            raise _invalid_link()
        if not account_email_is_verified(user=user):
            try:
                with transaction.atomic():
                    account_email_mark_verified(
                        user=user,
                        email=user.email,
                        actor=Actor.customer(user),
                        kind=AccountEventKind.EMAIL_VERIFIED,
                    )
            except IntegrityError:
                # Another account verified this address first.
                raise ApplicationError(
                    _("This address is already verified by another account."),
                    code=BillingErrorCode.INVALID_LINK,
                ) from None
    return user


# --- Changing the e-mail ---------------------------------------------------------------------


def _email_taken(email: str, *, exclude_pk: int) -> bool:
    return (
        get_user_model()
        .objects.filter(Q(username__iexact=email) | Q(email__iexact=email))
        .exclude(pk=exclude_pk)
        .exists()
        or VerifiedEmail.objects.filter(email__iexact=email).exclude(user_id=exclude_pk).exists()
    )


def account_email_change_request(
    *, user: User, new_email: str, password: str, actor: Actor
) -> None:
    """Mail a link to the new address; the caller answers "check the new inbox"."""
    new_email = new_email.strip().lower()
    try:
        validate_email(new_email)
    except ValidationError:
        raise ApplicationError.for_fields(
            {"new_email": _("Enter a valid e-mail address.")}
        ) from None
    if not user.check_password(password):
        raise ApplicationError.for_fields({"password": _("Your password was entered wrongly.")})
    if new_email == user.email.lower():
        raise ApplicationError.for_fields({"new_email": _("That is already your e-mail address.")})
    with transaction.atomic():
        _account_mail_budget(user=user, kinds=_LINK_MAIL_KINDS)
        _event(
            user=user,
            kind=AccountEventKind.EMAIL_CHANGE_REQUESTED,
            actor=actor,
            data={"old_email": user.email, "new_email": new_email},
        )
    if _email_taken(new_email, exclude_pk=user.pk):
        # Only the owner of the new address learns that it has an account.
        _mail(new_email, "registration/email_change_taken_email.txt", {})
        return
    token = signing.dumps(
        {"u": user.pk, "o": user.email.lower(), "n": new_email}, salt=_CHANGE_SALT
    )
    link = _absolute(reverse("account-email-change-confirm", kwargs={"token": token}))
    _mail(
        new_email,
        "registration/email_change_email.txt",
        {"link": link, "timeout_hours": settings.ACCOUNT_EMAIL_LINK_TIMEOUT // 3600},
    )


def account_email_change_pending_get(*, token: str) -> tuple[User, str] | None:
    """The account and new address a change link names, if the link is still valid."""
    try:
        payload = signing.loads(
            token, salt=_CHANGE_SALT, max_age=settings.ACCOUNT_EMAIL_LINK_TIMEOUT
        )
        user_id, old, new = int(payload["u"]), str(payload["o"]), str(payload["n"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or user.email.lower() != old:
        return None
    return user, new


def account_email_change_confirm(*, token: str) -> User:
    """Open a change link: e-mail (and the login, when it is the e-mail) become the new one."""
    pending = account_email_change_pending_get(token=token)
    if pending is None:
        raise _invalid_link()
    user_id, new_email = pending[0].pk, pending[1]
    taken = ApplicationError(
        _("This address now belongs to another account; your e-mail was not changed."),
        code=BillingErrorCode.INVALID_LINK,
    )
    try:
        with transaction.atomic():
            user = get_user_model().objects.select_for_update().get(pk=user_id)
            old_email = user.email
            if old_email.lower() != pending[0].email.lower():
                raise _invalid_link()
            if _email_taken(new_email, exclude_pk=user.pk):
                raise taken
            fields = ["email"]
            if user.username.lower() == old_email.lower():
                user.username = new_email
                fields.append("username")
            user.email = new_email
            user.save(update_fields=fields)
            account_email_mark_verified(
                user=user,
                email=new_email,
                actor=Actor.customer(user),
                kind=AccountEventKind.EMAIL_CHANGED,
                data={"old_email": old_email, "new_email": new_email},
            )
    except IntegrityError:
        raise taken from None
    _mail(
        old_email,
        "registration/email_changed_notice_email.txt",
        {"new_email_masked": _mask(new_email), "support_email": settings.SUPPORT_EMAIL},
    )
    return user


def _mask(email: str) -> str:
    """ "bob@example.com" -> "b**@example.com": the old address learns of the change, not the
    whole new address (the old mailbox may be the one that is compromised)."""
    local, _sep, domain = email.partition("@")
    return f"{local[:1]}{'*' * max(len(local) - 1, 1)}@{domain}"


# --- Password, name ---------------------------------------------------------------------------


def account_password_changed(*, user: User, actor: Actor) -> None:
    """Record a password change (Django's view saved it) and tell the account's address."""
    _event(user=user, kind=AccountEventKind.PASSWORD_CHANGED, actor=actor)
    if user.email:
        _mail(
            user.email,
            "registration/password_changed_email.txt",
            {
                "reset_url": _absolute(reverse("password_reset")),
                "support_email": settings.SUPPORT_EMAIL,
            },
        )


def account_name_update(*, user: User, first_name: str, last_name: str, actor: Actor) -> User:
    first_name, last_name = first_name.strip(), last_name.strip()
    errors = {
        name: _("At most %(limit)d characters.") % {"limit": NAME_MAX}
        for name, value in (("first_name", first_name), ("last_name", last_name))
        if len(value) > NAME_MAX
    }
    if errors:
        raise ApplicationError.for_fields(errors)
    if (user.first_name, user.last_name) == (first_name, last_name):
        return user
    with transaction.atomic():
        user.first_name, user.last_name = first_name, last_name
        user.save(update_fields=["first_name", "last_name"])
        _event(
            user=user,
            kind=AccountEventKind.NAME_CHANGED,
            actor=actor,
            data={"first_name": first_name, "last_name": last_name},
        )
    return user


# --- Billing details --------------------------------------------------------------------------


def billing_profile_clean(values: dict[str, str]) -> dict[str, str]:
    """Trimmed details, or ApplicationError naming each field that is too long or unknown."""
    cleaned = {name: str(values.get(name, "") or "").strip() for name in BILLING_FIELDS}
    cleaned["country"] = cleaned["country"].upper()
    errors: dict[str, list[str]] = {}
    for name, limit in BILLING_FIELDS.items():
        if len(cleaned[name]) > limit:
            errors[name] = [_("At most %(limit)d characters.") % {"limit": limit}]
    if cleaned["country"] and "country" not in errors and cleaned["country"] not in countries:
        errors["country"] = [_("Choose a country from the list.")]
    if errors:
        raise ApplicationError.for_fields(errors)
    return cleaned


def billing_profile_update(*, user: User, actor: Actor, **values: str) -> BillingProfile:
    """Save the billing details (invoices issued from now on print them)."""
    unknown = set(values) - set(BILLING_FIELDS)
    if unknown:
        raise ApplicationError.for_fields({name: _("Unknown field.") for name in sorted(unknown)})
    cleaned = billing_profile_clean(values)
    with transaction.atomic():
        profile, created = BillingProfile.objects.select_for_update().get_or_create(
            user=user, defaults=cleaned
        )
        before = {name: getattr(profile, name) for name in BILLING_FIELDS}
        if created or before != cleaned:
            for name, value in cleaned.items():
                setattr(profile, name, value)
            profile.save()
            _event(
                user=user,
                kind=AccountEventKind.BILLING_DETAILS_CHANGED,
                actor=actor,
                data=cleaned,
            )
    return profile
