"""Production: refuses to start without a secret key, an encryption key and real hosts."""

from django.core.exceptions import ImproperlyConfigured

from config.django.base import *  # noqa: F403
from config.env import env

DEBUG = False

if not SECRET_KEY or len(SECRET_KEY) < 50:  # noqa: F405
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 50 characters."
    )
if not FIELD_ENCRYPTION_KEYS:  # noqa: F405
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEYS must be set: it encrypts panel passwords and tokens at rest."
    )
if not ALLOWED_HOSTS or ALLOWED_HOSTS == ["127.0.0.1", "localhost"]:  # noqa: F405
    raise ImproperlyConfigured("ALLOWED_HOSTS must list the portal's real host names.")

# The local defaults would run "fine" and lose things silently in production: mail printed to a
# log (password resets, one-time login links), one SQLite file, a broker folder.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production.")
if CELERY_BROKER_URL.startswith("filesystem"):  # noqa: F405
    raise ImproperlyConfigured("CELERY_BROKER_URL must be a Redis or RabbitMQ URL in production.")
if EMAIL_BACKEND.endswith(("console.EmailBackend", "locmem.EmailBackend")):  # noqa: F405
    raise ImproperlyConfigured("EMAIL_URL must name a real mail server (smtp+tls://...).")
if not PORTAL_BASE_URL.startswith("https://") or "127.0.0.1" in PORTAL_BASE_URL:  # noqa: F405
    raise ImproperlyConfigured("PORTAL_BASE_URL must be the portal's public https:// address.")

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}
