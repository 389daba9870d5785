"""API tokens: create (shown once), revoke, list, and authenticate a bearer token.

A token reads `gsp_<prefix>_<secret>`: the prefix (8 random characters) is public and finds
the row, the whole token's SHA-256 digest proves it. Only the digest is stored.
"""

import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from common.actors import Actor
from common.errors import ApplicationError, NotFoundError
from common.models import STAFF_ONLY_SCOPES, ApiToken, ApiTokenScope

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "gsp_"
# A token's last use is written at most this often: not one UPDATE per API call.
LAST_USED_RESOLUTION = dt.timedelta(seconds=60)
MAX_ACTIVE_TOKENS_PER_USER = 25


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    plaintext: str  # shown once, never stored


def _digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _split(plaintext: str) -> str | None:
    """The prefix of a well-formed token, or None."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    prefix, sep, secret = plaintext[len(TOKEN_PREFIX) :].partition("_")
    if not sep or len(prefix) != 8 or not secret:
        return None
    return prefix


def scopes_allowed_for(user: Any) -> list[str]:
    """Customers get read and write on their own account; staff may also get staff scopes."""
    if user.is_staff:
        return list(ApiTokenScope.values)
    return [ApiTokenScope.READ.value, ApiTokenScope.WRITE.value]


def api_token_create(
    *,
    user: Any,
    name: str,
    scopes: list[str],
    actor: Actor,
    expires_at: dt.datetime | None = None,
) -> CreatedToken:
    name = name.strip()
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = [_("Give the token a name (what uses it).")]
    unknown = sorted(set(scopes) - set(ApiTokenScope.values))
    if unknown:
        errors["scopes"] = [_("Unknown scope: %(scopes)s.") % {"scopes": ", ".join(unknown)}]
    elif not user.is_staff and set(scopes) & STAFF_ONLY_SCOPES:
        errors["scopes"] = [_("Provisioning and billing scopes are for staff accounts only.")]
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = [_("The expiry must be in the future.")]
    if errors:
        raise ApplicationError.for_fields(errors)
    # Every token reads; an empty choice means a read-only token.
    granted = sorted(set(scopes) | {ApiTokenScope.READ.value})
    with transaction.atomic():
        active = (
            ApiToken.objects.select_for_update()
            .filter(user=user, revoked_at__isnull=True)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
        )
        if len(list(active)) >= MAX_ACTIVE_TOKENS_PER_USER:
            raise ApplicationError(
                _("At most %(count)s active tokens per account: revoke one first.")
                % {"count": MAX_ACTIVE_TOKENS_PER_USER},
                code="token_limit",
            )
        prefix = secrets.token_hex(4)
        plaintext = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
        token = ApiToken.objects.create(
            user=user,
            name=name[:100],
            prefix=prefix,
            digest=_digest(plaintext),
            scopes=granted,
            created_by=actor.label,
            expires_at=expires_at,
        )
    logger.info("API token %s… created for user %s by %s", prefix, user.pk, actor.label)
    return CreatedToken(token=token, plaintext=plaintext)


def api_token_revoke(*, token_id: int, actor: Actor, owner: Any = None) -> ApiToken:
    """Revoke a token (idempotent). With `owner`, only that user's token: 404 otherwise."""
    with transaction.atomic():
        tokens = ApiToken.objects.select_for_update()
        if owner is not None:
            tokens = tokens.filter(user=owner)
        token = tokens.filter(pk=token_id).first()
        if token is None:
            raise NotFoundError(_("No such token."))
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.revoked_by = actor.label
            token.save(update_fields=["revoked_at", "revoked_by"])
            logger.info("API token %s… revoked by %s", token.prefix, actor.label)
    return token


def token_public_prefix(plaintext: str) -> str:
    """What a log may say of a presented token: its public prefix when it has our shape, else
    only that it has not (a pasted foreign secret is never logged, not even a part)."""
    prefix = _split(plaintext)
    return f"{TOKEN_PREFIX}{prefix}…" if prefix is not None else "(not a portal token)"


def api_token_list_for_user(*, user: Any) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def api_token_authenticate(*, plaintext: str, ip_address: str | None = None) -> ApiToken | None:
    """The live token this plaintext proves, with its user; None if unknown/revoked/expired."""
    prefix = _split(plaintext)
    if prefix is None:
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.digest, _digest(plaintext)):
        return None
    now = timezone.now()
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    if not token.user.is_active:
        return None
    if token.last_used_at is None or token.last_used_at <= now - LAST_USED_RESOLUTION:
        # A conditional UPDATE: concurrent calls write it once, and never block each other.
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now, last_used_ip=_valid_ip(ip_address))
        token.last_used_at = now
    return token


def _valid_ip(value: str | None) -> str | None:
    # X-Forwarded-For is the client's claim: an unparsable one is not stored (inet column).
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None
