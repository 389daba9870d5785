"""WhatsApp through the Cloud API: an approved template when configured, text otherwise."""

from django.conf import settings

from notifications.errors import DeliveryErrorCode, DeliveryPermanentError, DeliveryRetryableError
from notifications.rendering import RenderedMessage
from notifications.whatsapp_client import (
    WhatsAppError,
    WhatsAppPermanentError,
    whatsapp_client_from_settings,
)


def send(*, recipient: str, message: RenderedMessage) -> str:
    if not settings.WHATSAPP_ENABLED:
        raise DeliveryPermanentError(
            "WhatsApp is disabled (WHATSAPP_ENABLED).", code=DeliveryErrorCode.DISABLED
        )
    try:
        client = whatsapp_client_from_settings()
        if message.whatsapp_template is not None:
            result = client.send_template(
                to=recipient,
                name=message.whatsapp_template.name,
                language=message.whatsapp_template.language,
                parameters=message.whatsapp_template.parameters,
            )
        else:
            result = client.send_text(to=recipient, body=message.text)
    except WhatsAppError as exc:
        code = f"wa_{exc.code}" if exc.code is not None else f"http_{exc.status or 'error'}"
        if exc.retryable:
            raise DeliveryRetryableError(
                exc.message, code=code, retry_after=exc.retry_after
            ) from None
        auth = isinstance(exc, WhatsAppPermanentError) and exc.auth
        raise DeliveryPermanentError(exc.message, code=code, alert_staff=auth) from None
    return result.message_id
