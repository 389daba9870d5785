"""Customer accounts: sign-up creates the login and the contact profile, confirmed by e-mail.

Sign-up never tells whether an address has an account (no account enumeration): every valid
submission gets the same answer ("check your inbox") and sends one e-mail to the address. What
the e-mail says depends on the account, which only the mailbox owner learns:
  - a new address: an inactive login and profile, and a link to confirm;
  - an address whose sign-up was never confirmed: the new submission replaces the old one
    (password, name, profile) and a new link goes out (earlier links stop working: the token
    covers the password);
  - an account (active, or deactivated by staff): nothing changes, and the owner is told that
    someone tried to sign up.
An unconfirmed sign-up is an inactive user who never logged in; a deactivated customer has
logged in before, so signing up again cannot bring the account back.
Confirming takes the link and the password chosen at sign-up, so nobody can set a password
for someone else's address and wait for them to confirm it (account pre-hijacking).
Validation errors (e-mail format, password rules, phone number) do not depend on the account
and are shown as before; each path computes one password hash, so timing tells nothing either.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from billing.errors import BillingErrorCode
from billing.models import AccountEventKind
from billing.services.accounts import account_email_mark_verified
from common.actors import Actor
from common.errors import ApplicationError
from notifications.models import Language
from notifications.phone import normalize_whatsapp_number
from notifications.selectors import customer_language_get
from notifications.services import customer_profile_upsert

INVALID_LINK = "This link is invalid or has expired. Sign up again to get a new one."


class SignupConfirmTokenGenerator(PasswordResetTokenGenerator):
    """Like password-reset tokens (valid PASSWORD_RESET_TIMEOUT, dead once the password
    changes), and dead once the account is active: a confirmation link works once."""

    key_salt = "billing.services.customers.SignupConfirmTokenGenerator"

    def _make_hash_value(self, user: User, timestamp: int) -> str:
        return f"{super()._make_hash_value(user, timestamp)}{user.is_active}"


signup_confirm_tokens = SignupConfirmTokenGenerator()


def customer_register(
    *,
    email: str,
    password: str,
    full_name: str = "",
    whatsapp_number: str = "",
    whatsapp_consent: bool = False,
    preferred_language: str = "en",
) -> None:
    """Take a sign-up (see the module docstring); the caller answers "check your inbox"."""
    user_model = get_user_model()
    email = email.strip().lower()
    errors: dict[str, list[str]] = {}
    try:
        validate_email(email)
    except ValidationError:
        errors["email"] = ["Enter a valid e-mail address."]
    first, _, last = full_name.strip().partition(" ")
    candidate = user_model(
        username=email, email=email, first_name=first[:150], last_name=last[:150]
    )
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        errors["password"] = list(exc.messages)
    try:
        normalize_whatsapp_number(whatsapp_number)
    except ValueError as exc:
        errors["whatsapp_number"] = [str(exc)]
    if preferred_language not in Language.values:
        errors["preferred_language"] = [f"Choose one of {', '.join(Language.values)}."]
    if errors:
        raise ApplicationError.for_fields(errors)
    for _attempt in range(2):
        try:
            with transaction.atomic():
                user = user_model.objects.select_for_update().filter(username__iexact=email).first()
                if user is None:
                    user = candidate
                    user.is_active = False
                elif not _is_pending(user):
                    make_password(password)  # the time a new sign-up spends hashing
                    break
                else:
                    user.first_name, user.last_name = candidate.first_name, candidate.last_name
                user.set_password(password)
                user.save()
                # Validated above for every address alike: the profile service cannot refuse it.
                customer_profile_upsert(
                    user=user,
                    whatsapp_number=whatsapp_number,
                    whatsapp_consent=whatsapp_consent,
                    preferred_language=preferred_language,
                    notify_by_whatsapp=bool(whatsapp_number and whatsapp_consent),
                )
            break
        except IntegrityError:
            # A concurrent sign-up of the same address won; the row exists on the retry.
            continue
    else:
        raise ApplicationError(
            "Sign-up failed for a moment. Please try again.", code=BillingErrorCode.RETRY
        )
    # The submitted address is the mailbox in question (an account's own e-mail may differ).
    if _is_pending(user):
        _mail(
            email,
            "registration/signup_confirm_email.txt",
            {"link": _confirm_link(user)},
            language=preferred_language,
        )
    else:
        _mail(
            email,
            "registration/signup_exists_email.txt",
            {},
            language=customer_language_get(user=user) or preferred_language,
        )


def _is_pending(user: User) -> bool:
    """A sign-up waiting for its confirmation (not an account staff deactivated)."""
    return not user.is_active and user.last_login is None


def customer_signup_pending_get(*, uidb64: str, token: str) -> User | None:
    """The unconfirmed account a confirmation link names, if the link is still valid."""
    user_model = get_user_model()
    try:
        pk = urlsafe_base64_decode(uidb64).decode()
        user = user_model.objects.get(pk=pk, is_active=False, last_login__isnull=True)
    except (ValueError, TypeError, OverflowError, user_model.DoesNotExist, ValidationError):
        return None
    return user if signup_confirm_tokens.check_token(user, token) else None


def customer_signup_confirm(*, uidb64: str, token: str, password: str) -> User:
    """Activate the account of a valid link, given the password chosen at sign-up."""
    user = customer_signup_pending_get(uidb64=uidb64, token=token)
    if user is None:
        raise ApplicationError(INVALID_LINK, code=BillingErrorCode.INVALID_LINK)
    if not user.check_password(password):
        raise ApplicationError.for_fields(
            {"password": "That is not the password chosen when signing up with this link."}
        )
    try:
        with transaction.atomic():
            user.is_active = True
            user.save(update_fields=["is_active"])
            # The link reached the address: it is verified (orders may need that).
            account_email_mark_verified(
                user=user,
                email=user.email,
                actor=Actor.customer(user),
                kind=AccountEventKind.SIGNUP_CONFIRMED,
            )
    except IntegrityError:
        # Another account verified this address meanwhile (e.g. changed its e-mail to it).
        raise ApplicationError(INVALID_LINK, code=BillingErrorCode.INVALID_LINK) from None
    return user


def _confirm_link(user: User) -> str:
    path = reverse(
        "signup-confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": signup_confirm_tokens.make_token(user),
        },
    )
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def _mail(address: str, template: str, context: dict, *, language: str) -> None:
    """Render and send in `language` (the sign-up's choice, or the account's)."""
    context = {
        **context,
        "email": address,
        "portal_name": settings.PORTAL_NAME,
        "login_url": settings.PORTAL_BASE_URL.rstrip("/") + reverse("login"),
        "reset_url": settings.PORTAL_BASE_URL.rstrip("/") + reverse("password_reset"),
        "timeout_minutes": settings.PASSWORD_RESET_TIMEOUT // 60,
    }
    with translation.override(language):
        subject, _, body = render_to_string(template, context).partition("\n")
    send_mail(subject.strip(), body.lstrip("\n"), None, [address])
