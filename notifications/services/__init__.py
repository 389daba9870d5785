"""Notification services (writes). Other apps call these; notifications imports none of them.

- notification_send: queue a message for a customer or staff (idempotent per event_key).
- notification_send_many: the same for many customers at once (fleet jobs), one send task.
- credentials_reveal_create / credentials_reveal_consume: one-time login-details links.
- credentials_resend_allowed: the rate limit of "send my login info again".
- customer_profile_upsert / customer_event_channels_set: contact profile and preferences.

A message's way, one module per step:
1. sending.py: `notification_send` (in the caller's transaction) creates one Delivery per
   recipient and channel and enqueues `notifications.deliver` after commit (bulk.py: the same
   for many customers at once).
2. attempts.py: `delivery_attempt` (the task) prepares under a lock, sends without one, and
   finishes fenced by the attempt number: sent, retry later, or failed.
3. failures.py: a failed delivery falls back to the next channel (WhatsApp -> email); when every
   delivery of the message failed, staff are alerted.
4. receipts.py: provider receipts move a sent delivery forward; retries.py: staff retries and
   the stalled-delivery sweeper.
delivery_rows.py locks a message's rows together and records their history; delivery_secrets.py
keeps the send-time secrets.
"""

from notifications.services.attempts import delivery_attempt, delivery_mark_sent
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
from notifications.services.delivery_rows import AttemptOutcome
from notifications.services.delivery_secrets import notification_secrets_purge
from notifications.services.failures import delivery_mark_failed
from notifications.services.profiles import (
    customer_event_channels_set,
    customer_language_set,
    customer_profile_upsert,
)
from notifications.services.receipts import delivery_status_apply
from notifications.services.recipients import staff_alert_recipients
from notifications.services.retries import deliveries_resume_stalled, delivery_retry
from notifications.services.sending import notification_send
from notifications.services.webhooks import whatsapp_webhook_handshake, whatsapp_webhook_receive
from notifications.services.whatsapp_verification import (
    VerificationCode,
    whatsapp_verification_start,
)

__all__ = [
    "AttemptOutcome",
    "BatchOutcome",
    "BulkMessage",
    "Recipient",
    "VerificationCode",
    "credentials_resend_allowed",
    "credentials_reveal_consume",
    "credentials_reveal_create",
    "credentials_reveal_open",
    "customer_event_channels_set",
    "customer_language_set",
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
    "whatsapp_verification_start",
    "whatsapp_webhook_handshake",
    "whatsapp_webhook_receive",
]
