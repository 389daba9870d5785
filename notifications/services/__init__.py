"""Notification services (writes). Other apps call these; notifications imports none of them.

- notification_send: queue a message for a customer or staff (idempotent per event_key).
- notification_send_many: the same for many customers at once (fleet jobs), one send task.
- credentials_reveal_create / credentials_reveal_consume: one-time login-details links.
- credentials_resend_allowed: the rate limit of "send my login info again".
- customer_profile_upsert / customer_event_channels_set: contact profile and preferences.
"""

from notifications.services.bulk import (
    BatchOutcome,
    BulkMessage,
    Recipient,
    deliveries_attempt_many,
    notification_send_many,
)
from notifications.services.credentials import (
    credentials_resend_allowed,
    credentials_reveal_consume,
    credentials_reveal_create,
    credentials_reveal_open,
)
from notifications.services.deliveries import (
    AttemptOutcome,
    deliveries_resume_stalled,
    delivery_attempt,
    delivery_mark_failed,
    delivery_mark_sent,
    delivery_retry,
    delivery_status_apply,
    notification_secrets_purge,
    notification_send,
)
from notifications.services.profiles import customer_event_channels_set, customer_profile_upsert
from notifications.services.recipients import staff_alert_recipients
from notifications.services.webhooks import whatsapp_webhook_handshake, whatsapp_webhook_receive

__all__ = [
    "AttemptOutcome",
    "BatchOutcome",
    "BulkMessage",
    "Recipient",
    "credentials_resend_allowed",
    "credentials_reveal_consume",
    "credentials_reveal_create",
    "credentials_reveal_open",
    "customer_event_channels_set",
    "customer_profile_upsert",
    "deliveries_attempt_many",
    "deliveries_resume_stalled",
    "delivery_attempt",
    "delivery_mark_failed",
    "delivery_mark_sent",
    "delivery_retry",
    "delivery_status_apply",
    "notification_secrets_purge",
    "notification_send",
    "notification_send_many",
    "staff_alert_recipients",
    "whatsapp_webhook_handshake",
    "whatsapp_webhook_receive",
]
