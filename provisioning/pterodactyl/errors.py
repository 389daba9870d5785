"""Our own error classes for the Pterodactyl panel API.

Every error says whether it is worth retrying (``retryable``) so callers never have to parse
HTTP status codes. Messages are written for an admin: what happened and what to fix. They never
contain the API key: the client builds them from the panel's reply (which never echoes the key)
and runs them through ``redact`` as a second line of defence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "FieldError",
    "PanelAuthError",
    "PanelBadRequest",
    "PanelBadResponse",
    "PanelConflict",
    "PanelError",
    "PanelNoViableAllocation",
    "PanelNoViableNode",
    "PanelNotFound",
    "PanelPermissionError",
    "PanelRateLimited",
    "PanelUnavailable",
    "PanelValidationError",
    "redact",
]


def redact(text: str, *secrets: str | None) -> str:
    """Replace every secret (and its 32-char secret half) in ``text`` with a short marker."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, _mask(secret))
        # A Pterodactyl key is a 16-char identifier plus a 32-char secret: never show the secret
        # half either, even if it turns up on its own.
        if len(secret) > 16 and len(secret) - 16 >= 8:
            text = text.replace(secret[16:], "***")
    return text


def _mask(secret: str) -> str:
    prefix = secret[:5] if secret[:5] in ("ptla_", "ptlc_") else ""
    return f"{prefix}***"


class PanelError(Exception):
    """Base class: anything that went wrong talking to the panel.

    ``status`` is the HTTP status (None when no reply arrived or the error is local), ``code``
    the panel's short exception class name (e.g. ``NotFoundHttpException``), ``errors`` the raw
    ``errors`` list of the reply (possibly empty). ``retryable`` says whether the same request may
    succeed later; ``outcome_unknown`` is True when the request may have been processed although
    no usable reply came back (a read timeout, a 5xx on a write).
    """

    retryable: bool = False
    default_hint: str = ""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        hint: str | None = None,
        retryable: bool | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        self.status = status
        self.code = code
        self.errors: list[dict[str, Any]] = list(errors or [])
        self.hint = hint if hint is not None else self.default_hint
        self.outcome_unknown = outcome_unknown
        if retryable is not None:
            # Instance override: e.g. a 409 "suspended" conflict will not clear up by waiting.
            self.retryable = retryable
        self.message = message
        super().__init__(self._full_message())

    def _full_message(self) -> str:
        if self.hint:
            return f"{self.message} (hint: {self.hint})"
        return self.message

    @property
    def detail(self) -> str | None:
        """The first error's ``detail`` from the panel, if any."""
        if self.errors and isinstance(self.errors[0], dict):
            detail = self.errors[0].get("detail")
            return detail if isinstance(detail, str) else None
        return None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, "
            f"code={self.code!r}, retryable={self.retryable!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep errors picklable (Celery serialises exceptions of failed tasks).
        return (
            _rebuild_error,
            (
                type(self),
                self.message,
                {
                    "status": self.status,
                    "code": self.code,
                    "errors": self.errors,
                    "hint": self.hint,
                    "retryable": self.retryable,
                    "outcome_unknown": self.outcome_unknown,
                },
                self._extra_state(),
            ),
        )

    def _extra_state(self) -> dict[str, Any]:
        return {}


def _rebuild_error(
    cls: type[PanelError], message: str, kwargs: dict[str, Any], extra: dict[str, Any]
) -> PanelError:
    error = cls.__new__(cls)
    PanelError.__init__(error, message, **kwargs)
    for name, value in extra.items():
        setattr(error, name, value)
    return error


@dataclass(frozen=True)
class FieldError:
    """One failed rule: ``source_field`` like ``limits.memory``, ``rule`` like ``max``."""

    source_field: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.source_field} [{self.rule}]: {self.detail}"


class PanelValidationError(PanelError):
    """422: the panel rejected the input. Terminal: fix the data (never retried)."""

    retryable = False

    def __init__(
        self, message: str, *, field_errors: list[FieldError] | None = None, **kwargs: Any
    ) -> None:
        self.field_errors: list[FieldError] = list(field_errors or [])
        if self.field_errors:
            listed = "; ".join(str(error) for error in self.field_errors)
            message = f"{message}: {listed}"
        super().__init__(message, **kwargs)

    def _extra_state(self) -> dict[str, Any]:
        return {"field_errors": self.field_errors}

    def fields(self) -> set[str]:
        return {error.source_field for error in self.field_errors}

    def has(self, source_field: str, rule: str | None = None) -> bool:
        """True when ``source_field`` failed (optionally: failed ``rule``)."""
        return any(
            error.source_field == source_field and (rule is None or error.rule == rule)
            for error in self.field_errors
        )


class PanelNotFound(PanelError):
    """404: the object does not exist (or is not under the given parent). Terminal."""

    retryable = False


class PanelAuthError(PanelError):
    """401 (or a redirect to the login page): the panel did not accept the key. Terminal."""

    retryable = False
    default_hint = (
        "the API key is wrong, revoked or expired: set PTERODACTYL_ADMIN_API_KEY to the full "
        "48-character application key (ptla_...) of a root admin"
    )


class PanelPermissionError(PanelError):
    """403: the key was recognised but may not do this. Terminal until an admin fixes the key."""

    retryable = False
    default_hint = (
        "check the key's owner (root admin), its per-resource permissions and allowed IPs"
    )


class PanelRateLimited(PanelError):
    """429 from the panel, or our own limiter gave up waiting. Retryable after ``retry_after`` s."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)

    def _extra_state(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after}


class PanelUnavailable(PanelError):
    """5xx, timeouts, connection errors, Wings (the node daemon) unreachable. Retryable."""

    retryable = True


class PanelConflict(PanelError):
    """409: the server is busy (installing, transferring, restoring a backup).

    Retryable by default because those states end by themselves; a conflict caused by a
    suspended server or a node in maintenance is flagged ``retryable=False`` by the client.
    """

    retryable = True


class PanelBadRequest(PanelError):
    """400 DisplayException and friends (a service refused the request). Terminal."""

    retryable = False


class PanelNoViableNode(PanelBadRequest):
    """400 NoViableNodeException: no public node in the locations has the memory/disk left.

    Terminal: "out of stock". Do not retry blindly; add capacity or change the location.
    """

    retryable = False
    default_hint = (
        "no public node in the requested locations has enough memory/disk (overallocate -1 means "
        "99%, not unlimited; limits are in MiB)"
    )


class PanelNoViableAllocation(PanelBadRequest):
    """400 NoViableAllocationException: no free port on the viable nodes. Terminal."""

    retryable = False
    default_hint = "create more allocations (ports) on the nodes of this location"


class PanelBadResponse(PanelError):
    """The reply is not what the Pterodactyl API sends: HTML, bad JSON, wrong shape, redirect.

    Terminal: this is a configuration problem (wrong URL, a proxy in the way) or a panel
    version we do not understand, not something waiting fixes.
    """

    retryable = False
