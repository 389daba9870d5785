"""One adapter per channel, one entry point: `channel_send`.

Adapters return the provider's message id, or raise DeliveryRetryableError /
DeliveryPermanentError with a redacted message.
"""

from notifications.channels import email, whatsapp
from notifications.models import Channel
from notifications.rendering import RenderedMessage

_ADAPTERS = {Channel.EMAIL: email.send, Channel.WHATSAPP: whatsapp.send}


def channel_send(*, channel: str, recipient: str, message: RenderedMessage) -> str:
    """Send `message` to `recipient`; returns the provider message id."""
    return _ADAPTERS[channel](recipient=recipient, message=message)
