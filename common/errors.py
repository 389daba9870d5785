"""The one application error type. Services raise it; interfaces render it.

API: `{message, code, extra}` with field errors under `extra.fields` (common.api). Admin:
`message_user`. Template views: form errors or messages.

Codes are StrEnums (CommonErrorCode here, one per app beside its errors): clients and tests
match on these strings, so the values never change; a StrEnum compares and serializes as its
plain string.
"""

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class CommonErrorCode(StrEnum):
    # The generic codes of the error types below and of the API's error shape (common.api).
    ERROR = "error"
    INVALID = "invalid"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    BAD_REQUEST = "bad_request"
    REQUEST_TOO_LARGE = "request_too_large"
    # A status change the model's transition table does not allow (common.state).
    INVALID_TRANSITION = "invalid_transition"
    # Fleet jobs (common.jobs) and staff two-factor enrolment (common.two_factor).
    UNKNOWN_JOB = "unknown_job"
    ALREADY_ENROLLED = "already_enrolled"


class ApplicationError(Exception):
    """A business rule refused the request. `message` is safe to show to the user."""

    default_code: str = CommonErrorCode.ERROR
    http_status = 400

    def __init__(
        self, message: str, *, code: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.extra = extra or {}

    @classmethod
    def for_fields(
        cls, fields: Mapping[str, list[str] | str], *, code: str = CommonErrorCode.INVALID
    ) -> "ApplicationError":
        """An error about named input fields (rendered under `extra.fields`)."""
        normalized = {k: v if isinstance(v, list) else [v] for k, v in fields.items()}
        first = next(iter(normalized.values()))[0] if normalized else "Invalid input."
        return cls(first, code=code, extra={"fields": normalized})

    @property
    def field_errors(self) -> dict[str, list[str]]:
        return self.extra.get("fields", {})


class NotFoundError(ApplicationError):
    default_code = CommonErrorCode.NOT_FOUND
    http_status = 404


class ConflictError(ApplicationError):
    """The object is not in a state that allows this (e.g. paying a cancelled invoice)."""

    default_code = CommonErrorCode.CONFLICT
    http_status = 409
