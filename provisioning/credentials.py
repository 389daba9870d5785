"""Panel usernames and passwords for customers (the provisioning guide's rules)."""

import hashlib
import re
import secrets
import string
import time

from django.conf import settings

_SYMBOLS = "!@#$%^&*-_=+?"
_USERNAME_RE = re.compile(r"^[a-z0-9]([\w\.-]+)[a-z0-9]$")


def panel_username(*, seed: str, now: float | None = None) -> str:
    """A username from a hash of the customer's phone number or email plus a time part.

    Matches the panel's rule ^[a-z0-9]([\\w.-]+)[a-z0-9]$ (lowercase, 3..191 chars).
    """
    digest = hashlib.sha256(seed.strip().lower().encode()).hexdigest()[:8]
    time_part = format(int((now if now is not None else time.time()) * 1000) % 36**6, "x")
    username = f"gh{digest}{time_part}"
    assert _USERNAME_RE.match(username)  # noqa: S101 - the format above guarantees it
    return username


def panel_password(length: int | None = None) -> str:
    """A random password with lower and upper case, digits and symbols (>= 16 chars)."""
    length = max(16, length or settings.DEFAULT_USER_PASSWORD_LENGTH)
    alphabet = string.ascii_letters + string.digits + _SYMBOLS
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and any(c.isdigit() for c in candidate)
            and any(c in _SYMBOLS for c in candidate)
        ):
            return candidate
