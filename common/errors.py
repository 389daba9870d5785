"""The one application error type. Services raise it; interfaces render it.

API: `{message, code, extra}` with field errors under `extra.fields` (common.api). Admin:
`message_user`. Template views: form errors or messages.
"""

from typing import Any


class ApplicationError(Exception):
    """A business rule refused the request. `message` is safe to show to the user."""

    default_code = "error"
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
        cls, fields: dict[str, list[str] | str], *, code: str = "invalid"
    ) -> "ApplicationError":
        """An error about named input fields (rendered under `extra.fields`)."""
        normalized = {k: v if isinstance(v, list) else [v] for k, v in fields.items()}
        first = next(iter(normalized.values()))[0] if normalized else "Invalid input."
        return cls(first, code=code, extra={"fields": normalized})

    @property
    def field_errors(self) -> dict[str, list[str]]:
        return self.extra.get("fields", {})


class NotFoundError(ApplicationError):
    default_code = "not_found"
    http_status = 404


class ConflictError(ApplicationError):
    """The object is not in a state that allows this (e.g. paying a cancelled invoice)."""

    default_code = "conflict"
    http_status = 409
