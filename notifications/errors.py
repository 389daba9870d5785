"""Errors of the notifications app.

Channel adapters turn provider errors into DeliveryRetryableError (try again later: timeouts,
5xx, 429, rate limits, SMTP 4xx) or DeliveryPermanentError (this channel will not work for this
message: invalid recipient, 5xx SMTP refusals, auth). Messages are redacted and safe to store.
"""

from common.errors import ApplicationError


class NotificationError(ApplicationError):
    default_code = "notification_error"


class CredentialsLinkError(NotificationError):
    """The one-time credentials link cannot be used (invalid, expired or already used)."""

    default_code = "credentials_link_invalid"
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
