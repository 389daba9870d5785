"""One-time links that reveal login details after login, and the resend rate limit."""

import hashlib
import json
import logging
import re
from datetime import timedelta
from secrets import token_urlsafe

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from notifications.errors import CredentialsLinkError, NotificationErrorCode
from notifications.models import CredentialReveal, CredentialsLinkState, CredentialsResendRequest
from notifications.selectors import credentials_reveal_status

logger = logging.getLogger(__name__)


def credentials_scope(event_key: str) -> str:
    """What a message's login details belong to, from its event key: "deployment-12" in
    "server_ready:deployment-12" or "credentials_resent:deployment-12:3"; else the key."""
    match = re.search(r"deployment-\d+", event_key)
    return match.group(0) if match else event_key[:100]


def credentials_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def credentials_reveal_url(token: str) -> str:
    try:
        path = reverse("notifications:credentials-reveal", args=[token])
    except NoReverseMatch:  # notifications.urls not mounted (yet): the documented path
        path = f"/notifications/credentials/{token}/"
    return f"{settings.PORTAL_BASE_URL.rstrip('/')}{path}"


def credentials_reveal_create(*, user: User, secrets: dict, ttl: timedelta, scope: str = "") -> str:
    """Store `secrets` (encrypted) behind a one-time token; return the absolute reveal URL.

    Only the token's SHA-256 is stored. The page shows the secrets once, to `user` only. With
    a `scope` (e.g. "deployment-12"), the user's older unrevealed links of that scope are
    revoked (their secrets wiped): only the newest message opens.
    """
    if ttl <= timedelta(0):
        raise ValueError("ttl must be positive")
    token = token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        revoked = 0
        if scope:
            revoked = CredentialReveal.objects.filter(
                user=user, scope=scope, revealed_at__isnull=True, revoked_at__isnull=True
            ).update(revoked_at=now, secrets=None)
        reveal = CredentialReveal.objects.create(
            user=user,
            token_hash=credentials_token_hash(token),
            scope=scope[:100],
            secrets=json.dumps({str(k): str(v) for k, v in secrets.items()}),
            expires_at=now + ttl,
        )
    logger.info(
        "credentials link %s created for user %s (%s older revoked)", reveal.pk, user.pk, revoked
    )
    return credentials_reveal_url(token)


# What the link's owner is told, and the error code, per unusable state.
_PROBLEMS = {
    CredentialsLinkState.INVALID: (
        "This link is not valid.",
        NotificationErrorCode.CREDENTIALS_LINK_INVALID,
    ),
    CredentialsLinkState.USED: (
        "These login details were already shown once.",
        NotificationErrorCode.CREDENTIALS_LINK_USED,
    ),
    CredentialsLinkState.REVOKED: (
        "A newer link was sent for these login details.",
        NotificationErrorCode.CREDENTIALS_LINK_REVOKED,
    ),
    CredentialsLinkState.EXPIRED: (
        "This link has expired.",
        NotificationErrorCode.CREDENTIALS_LINK_EXPIRED,
    ),
}


def _reveal_usable(reveal: CredentialReveal | None) -> CredentialReveal:
    """`reveal`, if its link can still be used; else raises the CredentialsLinkError of its state
    (None is INVALID)."""
    status = credentials_reveal_status(reveal)
    if reveal is None or status != CredentialsLinkState.VALID:
        message, code = _PROBLEMS[status]
        raise CredentialsLinkError(message, code=code)
    return reveal


def credentials_reveal_open(*, user: User, token: str, opened_here: int | None = None) -> int:
    """Exchange the link's token for the reveal's id, once: the caller keeps the id in the
    user's session and the token stops working (it may sit in an access log or a browser
    history). `opened_here` is the id the session already holds: opening the same link again
    there is fine. Raises CredentialsLinkError (invalid, used, revoked, expired, or "opened":
    the link was already opened in another session)."""
    with transaction.atomic():
        reveal = (
            CredentialReveal.objects.select_for_update()
            .filter(token_hash=credentials_token_hash(token), user=user)
            .first()
        )
        reveal = _reveal_usable(reveal)
        if reveal.opened_at is not None:
            if reveal.pk == opened_here:  # the same browser session clicked the link again
                return reveal.pk
            raise CredentialsLinkError(
                "This link was already opened.", code=NotificationErrorCode.CREDENTIALS_LINK_OPENED
            )
        reveal.opened_at = timezone.now()
        reveal.save(update_fields=["opened_at"])
    logger.info("credentials link %s opened by user %s", reveal.pk, user.pk)
    return reveal.pk


def credentials_reveal_consume(*, user: User, reveal_id: int) -> dict[str, str]:
    """The secrets of an opened link, once. Raises CredentialsLinkError (invalid, expired,
    used, revoked). The secrets are wiped from the database in the same transaction."""
    with transaction.atomic():
        reveal = (
            CredentialReveal.objects.select_for_update()
            .filter(pk=reveal_id, user=user, opened_at__isnull=False)
            .first()
        )
        reveal = _reveal_usable(reveal)
        values = json.loads(reveal.secrets)
        reveal.secrets = None
        reveal.revealed_at = timezone.now()
        reveal.save(update_fields=["secrets", "revealed_at"])
    logger.info("credentials link %s revealed to user %s", reveal.pk, user.pk)
    return values


def credentials_resend_allowed(*, user: User, key: str) -> bool:
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
