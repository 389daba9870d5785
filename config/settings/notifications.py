"""Notification channels: WhatsApp Cloud API and staff alerts."""

from config.env import env

WHATSAPP_ENABLED = env.bool("WHATSAPP_ENABLED", default=False)
WHATSAPP_API_BASE_URL = env("WHATSAPP_API_BASE_URL", default="https://graph.facebook.com/v21.0")
WHATSAPP_PHONE_NUMBER_ID = env("WHATSAPP_PHONE_NUMBER_ID", default="")
WHATSAPP_ACCESS_TOKEN = env("WHATSAPP_ACCESS_TOKEN", default="")
# App secret: verifies X-Hub-Signature-256 on status webhooks.
WHATSAPP_APP_SECRET = env("WHATSAPP_APP_SECRET", default="")
# Our own token for the webhook verify handshake (hub.verify_token).
WHATSAPP_WEBHOOK_VERIFY_TOKEN = env("WHATSAPP_WEBHOOK_VERIFY_TOKEN", default="")
# Staff WhatsApp number for alerts (E.164), the seeds' ADMIN_PHONE.
ADMIN_PHONE = env("ADMIN_PHONE", default="")
# How the server-ready message carries credentials: "link" (one-time link) or "inline".
CREDENTIALS_DELIVERY = env("CREDENTIALS_DELIVERY", default="link")
# Region used to read WhatsApp numbers typed without a +country prefix.
PHONE_DEFAULT_REGION = env("PHONE_DEFAULT_REGION", default="ID")
# Support WhatsApp number (E.164) shown to customers in messages; empty = not shown.
SUPPORT_WHATSAPP = env("SUPPORT_WHATSAPP", default="")

# --- WhatsApp Cloud API client -------------------------------------------------------------
WHATSAPP_TIMEOUT_CONNECT = env.float("WHATSAPP_TIMEOUT_CONNECT", default=5.0)
WHATSAPP_TIMEOUT_READ = env.float("WHATSAPP_TIMEOUT_READ", default=15.0)
# Approved message templates for business-initiated messages, per event (empty = send a plain
# text message, which WhatsApp accepts only inside a 24 h customer-service window). Body
# parameters are filled in the order listed in notifications/events.py (whatsapp_params).
WHATSAPP_TEMPLATES = {
    "order_received": env("WHATSAPP_TEMPLATE_ORDER_RECEIVED", default=""),
    "invoice_created": env("WHATSAPP_TEMPLATE_INVOICE_CREATED", default=""),
    "payment_received": env("WHATSAPP_TEMPLATE_PAYMENT_RECEIVED", default=""),
    "provisioning_started": env("WHATSAPP_TEMPLATE_PROVISIONING_STARTED", default=""),
    "server_ready": env("WHATSAPP_TEMPLATE_SERVER_READY", default=""),
    "provisioning_failed": env("WHATSAPP_TEMPLATE_PROVISIONING_FAILED", default=""),
    "provisioning_failed_staff": env("WHATSAPP_TEMPLATE_PROVISIONING_FAILED_STAFF", default=""),
    "credentials_resent": env("WHATSAPP_TEMPLATE_CREDENTIALS_RESENT", default=""),
    "panel_password_reset": env("WHATSAPP_TEMPLATE_PANEL_PASSWORD_RESET", default=""),
    "invoice_reminder": env("WHATSAPP_TEMPLATE_INVOICE_REMINDER", default=""),
    "invoice_overdue": env("WHATSAPP_TEMPLATE_INVOICE_OVERDUE", default=""),
    "suspension_warning": env("WHATSAPP_TEMPLATE_SUSPENSION_WARNING", default=""),
    "server_suspended": env("WHATSAPP_TEMPLATE_SERVER_SUSPENDED", default=""),
    "server_unsuspended": env("WHATSAPP_TEMPLATE_SERVER_UNSUSPENDED", default=""),
    "server_terminated": env("WHATSAPP_TEMPLATE_SERVER_TERMINATED", default=""),
    "delivery_failed_staff": env("WHATSAPP_TEMPLATE_DELIVERY_FAILED_STAFF", default=""),
    "fleet_alert_staff": env("WHATSAPP_TEMPLATE_FLEET_ALERT_STAFF", default=""),
    "payment_review_staff": env("WHATSAPP_TEMPLATE_PAYMENT_REVIEW_STAFF", default=""),
    "provisioning_waiting_capacity": env(
        "WHATSAPP_TEMPLATE_PROVISIONING_WAITING_CAPACITY", default=""
    ),
    "order_refunded": env("WHATSAPP_TEMPLATE_ORDER_REFUNDED", default=""),
}
# Template language code per portal language (as approved in WhatsApp Manager).
WHATSAPP_TEMPLATE_LANGUAGES = {
    "en": env("WHATSAPP_TEMPLATE_LANGUAGE_EN", default="en"),
    "id": env("WHATSAPP_TEMPLATE_LANGUAGE_ID", default="id"),
}

# --- Delivery ------------------------------------------------------------------------------
# Attempts per delivery before it fails over to the next channel (retryable errors only).
NOTIFICATIONS_MAX_ATTEMPTS = env.int("NOTIFICATIONS_MAX_ATTEMPTS", default=5)
# Backoff: base * 2^(attempt-1) seconds with +-25% jitter, capped at the maximum.
NOTIFICATIONS_RETRY_BASE_SECONDS = env.int("NOTIFICATIONS_RETRY_BASE_SECONDS", default=10)
NOTIFICATIONS_RETRY_MAX_SECONDS = env.int("NOTIFICATIONS_RETRY_MAX_SECONDS", default=900)
# How long one send attempt may hold a delivery (longer than the provider timeouts).
NOTIFICATIONS_SEND_LEASE_SECONDS = env.int("NOTIFICATIONS_SEND_LEASE_SECONDS", default=90)
# Queued deliveries this long past their due time are re-enqueued by the sweeper.
NOTIFICATIONS_STALLED_AFTER_SECONDS = env.int("NOTIFICATIONS_STALLED_AFTER_SECONDS", default=120)
# How long a secret kept for sending (inline password or reveal link) may live, hours.
NOTIFICATIONS_SECRET_RETENTION_HOURS = env.int("NOTIFICATIONS_SECRET_RETENTION_HOURS", default=48)
# Timeout of one email send, seconds (used when EMAIL_TIMEOUT is not set).
NOTIFICATIONS_EMAIL_TIMEOUT = env.int("NOTIFICATIONS_EMAIL_TIMEOUT", default=20)
# Lifetime of the one-time "reveal your login details" link, hours.
CREDENTIALS_LINK_TTL_HOURS = env.int("CREDENTIALS_LINK_TTL_HOURS", default=72)
# "Send my login info again": at most this many requests per window per user and server.
CREDENTIALS_RESEND_LIMIT = env.int("CREDENTIALS_RESEND_LIMIT", default=3)
CREDENTIALS_RESEND_WINDOW_MINUTES = env.int("CREDENTIALS_RESEND_WINDOW_MINUTES", default=60)
# WhatsApp commands ("status", "help", "login"): at most this many answers per number per
# window; more are recorded and not answered (a bot loop or a flood cannot make us spam).
WHATSAPP_COMMAND_REPLY_LIMIT = env.int("WHATSAPP_COMMAND_REPLY_LIMIT", default=5)
WHATSAPP_COMMAND_REPLY_WINDOW_SECONDS = env.int(
    "WHATSAPP_COMMAND_REPLY_WINDOW_SECONDS", default=300
)
# The commands answer only numbers the customer proved they hold by sending us "verify <code>"
# (notifications.services.whatsapp_verification): the code's lifetime and its wrong tries.
WHATSAPP_VERIFICATION_CODE_MINUTES = env.int("WHATSAPP_VERIFICATION_CODE_MINUTES", default=30)
WHATSAPP_VERIFICATION_MAX_ATTEMPTS = env.int("WHATSAPP_VERIFICATION_MAX_ATTEMPTS", default=5)
# Our WhatsApp business number as customers see it (E.164): the profile page's "send this code
# to ..." and its wa.me link. Empty: SUPPORT_WHATSAPP, else the page says "our WhatsApp number".
WHATSAPP_DISPLAY_NUMBER = env("WHATSAPP_DISPLAY_NUMBER", default="")
