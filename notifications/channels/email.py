"""Email through Django's mail backends (console, SMTP, or a provider backend such as anymail).

Plain text + HTML. SMTP 4xx, disconnects, connection errors and timeouts are retryable; 5xx
refusals are permanent. Provider backends: an error with an HTTP `status_code` is retryable
for 429/5xx and permanent otherwise.
"""

import smtplib
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from common.logging import redact
from notifications.errors import DeliveryErrorCode, DeliveryPermanentError, DeliveryRetryableError
from notifications.rendering import RenderedMessage


def send(*, recipient: str, message: RenderedMessage) -> str:
    message_id = make_msgid(domain=_domain())
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
        reply_to=[settings.SUPPORT_EMAIL] if settings.SUPPORT_EMAIL else None,
        headers={"Message-ID": message_id},
        connection=get_connection(fail_silently=False, timeout=_timeout()),
    )
    if message.html:
        email.attach_alternative(message.html, "text/html")
    try:
        sent = email.send(fail_silently=False)
    except Exception as exc:  # every backend raises its own types; classify them all
        raise classify_email_error(exc) from None
    if not sent:
        raise DeliveryRetryableError(
            "The mail backend accepted no message.", code=DeliveryErrorCode.NOT_SENT
        )
    provider_id = getattr(getattr(email, "anymail_status", None), "message_id", None)
    return str(provider_id or message_id)


def classify_email_error(exc: Exception) -> DeliveryRetryableError | DeliveryPermanentError:
    text = redact(f"{type(exc).__name__}: {exc}")[:500]
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(400 <= code < 500 for code in codes):
            return DeliveryRetryableError(text, code=f"smtp_{codes[0]}")
        return DeliveryPermanentError(text, code=f"smtp_{codes[0] if codes else 'refused'}")
    if isinstance(exc, smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected):
        return DeliveryRetryableError(text, code=DeliveryErrorCode.SMTP_CONNECTION)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return DeliveryPermanentError(text, code=f"smtp_{exc.smtp_code}", alert_staff=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        if 400 <= exc.smtp_code < 500:
            return DeliveryRetryableError(text, code=f"smtp_{exc.smtp_code}")
        return DeliveryPermanentError(text, code=f"smtp_{exc.smtp_code}")
    if isinstance(exc, OSError | smtplib.SMTPException):  # connection refused, timeouts, DNS
        return DeliveryRetryableError(text, code=DeliveryErrorCode.SMTP_ERROR)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        if status == 429 or status >= 500:
            return DeliveryRetryableError(text, code=f"http_{status}")
        return DeliveryPermanentError(text, code=f"http_{status}")
    if "RecipientsRefused" in type(exc).__name__:
        return DeliveryPermanentError(text, code=DeliveryErrorCode.RECIPIENTS_REFUSED)
    return DeliveryRetryableError(text, code=DeliveryErrorCode.EMAIL_ERROR)


def _timeout() -> float:
    """Django's SMTP backend waits forever unless told otherwise."""
    return getattr(settings, "EMAIL_TIMEOUT", None) or settings.NOTIFICATIONS_EMAIL_TIMEOUT


def _domain() -> str:
    address = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)
    return address[1].strip(" >") if len(address) == 2 else "localhost"
