"""Stripe Checkout."""

from config.env import env

STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
# Webhook signing secrets; during a rotation list both (comma separated).
STRIPE_WEBHOOK_SECRETS = env.list("STRIPE_WEBHOOK_SECRETS", default=[])
# Seconds of clock skew accepted on a webhook signature timestamp (Stripe's default is 300).
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)
STRIPE_API_TIMEOUT = env.int("STRIPE_API_TIMEOUT", default=20)
STRIPE_API_BASE = env("STRIPE_API_BASE", default="")
