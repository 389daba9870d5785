"""Logging: a filter that masks secrets which slipped into a message or its arguments, the
request/task id filter and the JSON formatter (LOG_FORMAT=json)."""

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


class LogContextFilter(logging.Filter):
    """Puts the current request id and Celery task id (common.request_id) on every record, so
    a formatter can print them (None outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from common.request_id import current_request_id, current_task_id

        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        if not hasattr(record, "task_id"):
            record.task_id = current_task_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (LOG_FORMAT=json): time (UTC, ISO 8601), level, logger, message,
    request_id, task_id, and the traceback as `exc_info` when there is one.

    The message has been through RedactSecretsFilter on the handler; the traceback has not (a
    filter sees only the message), so it is redacted here."""

    def format(self, record: logging.LogRecord) -> str:
        import json
        from datetime import UTC, datetime

        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "request_id": getattr(record, "request_id", None),
            "task_id": getattr(record, "task_id", None),
        }
        if record.exc_info:
            entry["exc_info"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exc_info"] = redact(record.exc_text)
        if record.stack_info:
            entry["stack_info"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, default=str, ensure_ascii=False)
