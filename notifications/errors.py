"""Errors of the notifications app.

Channel adapters turn provider errors into DeliveryRetryableError (try again later: timeouts,
5xx, 429, rate limits, SMTP 4xx) or DeliveryPermanentError (this channel will not work for this
message: invalid recipient, 5xx SMTP refusals, auth). Messages are redacted and safe to store.

The codes are in one place (NotificationErrorCode, DeliveryErrorCode): clients, tests and the
reveal page match on these strings, so the values never change; a StrEnum compares and
serializes as its plain string.
"""

from enum import StrEnum

from common.errors import ApplicationError


class NotificationErrorCode(StrEnum):
    """ApplicationError codes of the notifications services."""

    NOTIFICATION_ERROR = "notification_error"
    CONTEXT_MISSING = "notification_context_missing"
    # One-time credentials links ("credentials_link_" + the link's CredentialsLinkState).
    CREDENTIALS_LINK_INVALID = "credentials_link_invalid"
    CREDENTIALS_LINK_USED = "credentials_link_used"
    CREDENTIALS_LINK_REVOKED = "credentials_link_revoked"
    CREDENTIALS_LINK_EXPIRED = "credentials_link_expired"
    CREDENTIALS_LINK_OPENED = "credentials_link_opened"
    # Staff putting a delivery back in the queue.
    NOT_FOUND = "not_found"
    NOT_FAILED = "not_failed"
    # WhatsApp webhooks.
    WEBHOOK_REJECTED = "webhook_rejected"
    INVALID_SIGNATURE = "invalid_signature"
    INVALID_JSON = "invalid_json"
    INVALID_PAYLOAD = "invalid_payload"


class DeliveryErrorCode(StrEnum):
    """The fixed DeliveryError codes; provider ones are built from the provider's own code
    (smtp_<reply code>, http_<status>, wa_<Graph error code>)."""

    RENDER = "render"
    DISABLED = "disabled"
    NOT_SENT = "not_sent"
    SMTP_CONNECTION = "smtp_connection"
    SMTP_ERROR = "smtp_error"
    EMAIL_ERROR = "email_error"
    RECIPIENTS_REFUSED = "recipients_refused"


class NotificationError(ApplicationError):
    default_code = NotificationErrorCode.NOTIFICATION_ERROR


class CredentialsLinkError(NotificationError):
    """The one-time credentials link cannot be used (invalid, expired or already used)."""

    default_code = NotificationErrorCode.CREDENTIALS_LINK_INVALID
    http_status = 404


class DeliveryError(Exception):
    def __init__(self, message: str, *, code: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class DeliveryRetryableError(DeliveryError):
    retryable = True


class DeliveryPermanentError(DeliveryError):
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        retry_after: float | None = None,
        alert_staff: bool = False,
    ) -> None:
        super().__init__(message, code=code, retry_after=retry_after)
        # A configuration problem (bad token, channel not configured): staff must act.
        self.alert_staff = alert_staff
