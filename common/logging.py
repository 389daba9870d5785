"""A logging filter that masks secrets which slipped into a message or its arguments."""

import logging
import re

_PATTERNS = [
    re.compile(r"ptl[ac]_[A-Za-z0-9]{8,}"),  # Pterodactyl application/client keys
    re.compile(r"(sk|rk|pk)_(live|test)_[A-Za-z0-9]+"),  # Stripe keys
    re.compile(r"whsec_[A-Za-z0-9]+"),  # Stripe webhook secrets
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(
        r"(?i)(\"?(?:password|passwd|secret|token|api_key|access_token)\"?\s*[:=]\s*\"?)[^\s\",}]+"
    ),
]


_SECRET_NAME = re.compile(r"(?i)(token|password|passwd|secret|api_?key|private_?key)")


def mask_secret_values(value: object) -> object:
    """A copy of a (nested) mapping with the values of secret-looking keys replaced."""
    if isinstance(value, dict):
        return {
            k: "********" if _SECRET_NAME.search(str(k)) and v else mask_secret_values(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_secret_values(v) for v in value]
    return value


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + "***", text)
        else:
            text = pattern.sub("***", text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = ()
        return True
