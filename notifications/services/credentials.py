"""One-time links that reveal login details after login, and the resend rate limit."""

import hashlib
import json
import logging
from datetime import timedelta
from secrets import token_urlsafe

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from notifications.errors import CredentialsLinkError
from notifications.models import CredentialReveal, CredentialsResendRequest

logger = logging.getLogger(__name__)


def credentials_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def credentials_reveal_url(token: str) -> str:
    try:
        path = reverse("notifications:credentials-reveal", args=[token])
    except NoReverseMatch:  # notifications.urls not mounted (yet): the documented path
        path = f"/notifications/credentials/{token}/"
    return f"{settings.PORTAL_BASE_URL.rstrip('/')}{path}"


def credentials_reveal_create(*, user: AbstractBaseUser, secrets: dict, ttl: timedelta) -> str:
    """Store `secrets` (encrypted) behind a one-time token; return the absolute reveal URL.

    Only the token's SHA-256 is stored. The page shows the secrets once, to `user` only.
    """
    if ttl <= timedelta(0):
        raise ValueError("ttl must be positive")
    token = token_urlsafe(32)
    now = timezone.now()
    reveal = CredentialReveal.objects.create(
        user=user,
        token_hash=credentials_token_hash(token),
        secrets=json.dumps({str(k): str(v) for k, v in secrets.items()}),
        expires_at=now + ttl,
    )
    logger.info("credentials link %s created for user %s", reveal.pk, user.pk)
    return credentials_reveal_url(token)


def credentials_reveal_consume(*, user: AbstractBaseUser, token: str) -> dict[str, str]:
    """The secrets behind `token`, once. Raises CredentialsLinkError (invalid/expired/used).

    The secrets are wiped from the database in the same transaction.
    """
    with transaction.atomic():
        reveal = (
            CredentialReveal.objects.select_for_update()
            .filter(token_hash=credentials_token_hash(token), user=user)
            .first()
        )
        if reveal is None:
            raise CredentialsLinkError("This link is not valid.", code="credentials_link_invalid")
        if reveal.revealed_at is not None:
            raise CredentialsLinkError(
                "These login details were already shown once.", code="credentials_link_used"
            )
        if reveal.expires_at <= timezone.now() or not reveal.secrets:
            raise CredentialsLinkError("This link has expired.", code="credentials_link_expired")
        values = json.loads(reveal.secrets)
        reveal.secrets = None
        reveal.revealed_at = timezone.now()
        reveal.save(update_fields=["secrets", "revealed_at"])
    logger.info("credentials link %s revealed to user %s", reveal.pk, user.pk)
    return values


def credentials_resend_allowed(*, user: AbstractBaseUser, key: str) -> bool:
    """True (and counted) if `user` may ask again for the login details of `key` now.

    At most CREDENTIALS_RESEND_LIMIT accepted requests per CREDENTIALS_RESEND_WINDOW_MINUTES
    per (user, key), e.g. key "deployment-12". Requests of one user are serialised by a lock on
    their user row, so concurrent clicks cannot exceed the limit.
    """
    window = timedelta(minutes=settings.CREDENTIALS_RESEND_WINDOW_MINUTES)
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        recent = CredentialsResendRequest.objects.filter(
            user=user, key=key, created_at__gt=timezone.now() - window
        ).count()
        if recent >= settings.CREDENTIALS_RESEND_LIMIT:
            logger.info("credentials resend for user %s (%s) refused: rate limit", user.pk, key)
            return False
        CredentialsResendRequest.objects.create(user=user, key=key)
    return True
