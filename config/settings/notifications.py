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
