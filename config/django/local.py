"""Local development and the `make run` demo: SQLite, filesystem broker, console mail."""

from config.django.base import *  # noqa: F403
from config.env import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = SECRET_KEY or "local-dev-insecure-secret-key-change-me-0123456789abcdef"  # noqa: F405
if not SALT_KEY:  # noqa: F405
    SALT_KEY = ["local-dev-insecure-field-encryption-key"]
    FIELD_ENCRYPTION_KEYS = SALT_KEY

# The demo points at our panel simulator unless told otherwise.
if not PTERODACTYL_URL:  # noqa: F405
    PTERODACTYL_URL = "http://127.0.0.1:8081"
