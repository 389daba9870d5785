"""Customer accounts: sign-up creates the login and the contact profile together."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from common.errors import ApplicationError
from notifications.services import customer_profile_upsert


def customer_register(
    *,
    email: str,
    password: str,
    full_name: str = "",
    whatsapp_number: str = "",
    whatsapp_consent: bool = False,
    preferred_language: str = "en",
) -> AbstractBaseUser:
    """Create a customer login (username = e-mail, case-insensitively unique) and profile."""
    User = get_user_model()
    email = email.strip().lower()
    errors: dict[str, list[str]] = {}
    try:
        validate_email(email)
    except ValidationError:
        errors["email"] = ["Enter a valid e-mail address."]
    if not errors and User.objects.filter(username__iexact=email).exists():
        errors["email"] = ["An account with this e-mail already exists."]
    first, _, last = full_name.strip().partition(" ")
    candidate = User(username=email, email=email, first_name=first[:150], last_name=last[:150])
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors:
        raise ApplicationError.for_fields(errors)
    try:
        with transaction.atomic():
            candidate.set_password(password)
            candidate.save()
            customer_profile_upsert(
                user=candidate,
                whatsapp_number=whatsapp_number,
                whatsapp_consent=whatsapp_consent,
                preferred_language=preferred_language,
                notify_by_whatsapp=bool(whatsapp_number and whatsapp_consent),
            )
    except IntegrityError as exc:
        raise ApplicationError.for_fields(
            {"email": "An account with this e-mail already exists."}
        ) from exc
    return candidate
