"""Outgoing email. Console backend by default: mail is printed, nothing is sent."""

from config.env import env

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="GameHost Portal <no-reply@example.com>")
SERVER_EMAIL = env("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
# Staff who receive alerts (provisioning failures, payment mismatches): "Name <a@b>,c@d".
ADMINS = [("", address) for address in env.list("ADMIN_EMAILS", default=[])]
