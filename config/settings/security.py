"""Encryption of secrets at rest and HTTP security headers.

Secrets (panel passwords, tokens) are stored with django-fernet-encrypted-fields. Its key is
derived from SECRET_KEY (+ SECRET_KEY_FALLBACKS) and each salt in SALT_KEY: the first salt
encrypts, all of them decrypt. Rotation: put a new key first in FIELD_ENCRYPTION_KEYS, keep the
old ones after it (they still decrypt), re-save encrypted rows, then drop the old ones.
"""

from config.env import env

FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
SALT_KEY = FIELD_ENCRYPTION_KEYS
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
