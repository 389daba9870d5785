"""Encryption of secrets at rest, and the HTTP security headers.

Secrets at rest (panel passwords, the secrets of queued deliveries and one-time reveal pages)
are Fernet tokens in text columns: common.fields.EncryptedCharField / EncryptedTextField, the
library django-fernet-encrypted-fields with its format and keys, but failing closed: a value no
configured key decrypts raises common.fields.UndecryptableValueError (naming model and field,
never the value) instead of being returned as ciphertext.

Key material. Each Fernet key is derived as
    urlsafe_base64(PBKDF2-HMAC-SHA256(password=secret, salt=salt, iterations=100_000, 32 bytes))
for every secret in [SECRET_KEY, *SECRET_KEY_FALLBACKS] and, within it, every salt in
FIELD_ENCRYPTION_KEYS (the library calls that list SALT_KEY; it is the same list), both UTF-8.
The first pair, SECRET_KEY with FIELD_ENCRYPTION_KEYS[0], encrypts; every pair decrypts
(MultiFernet). So SECRET_KEY is part of the encryption key: changing it without keeping the old
one in SECRET_KEY_FALLBACKS makes every stored secret unreadable, exactly like losing
FIELD_ENCRYPTION_KEYS.

Rotation (of either FIELD_ENCRYPTION_KEYS or SECRET_KEY):
1. Add the new key first and keep the old ones after it: FIELD_ENCRYPTION_KEYS=new,old (or
   SECRET_KEY=new with the old one in SECRET_KEY_FALLBACKS). Deploy: everything still reads.
2. `manage.py reencrypt_secrets --dry-run`, then `manage.py reencrypt_secrets`: every encrypted
   column is re-encrypted under the new key, in batches; it fails, naming model and pk, if a
   row is decrypted by no configured key. Run it once every web and Celery process has the new
   settings (one still on the old ones writes under the old key); a second run must report
   "re-encrypted 0" everywhere.
3. Drop the old key and deploy.
"""

from csp.constants import NONCE, NONE, SELF

from config.env import env

FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
SALT_KEY = FIELD_ENCRYPTION_KEYS
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
# The branded "your form expired" page (templates/403_csrf.html); JSON under /api/.
CSRF_FAILURE_VIEW = "common.api.csrf_failure"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- Content-Security-Policy (django-csp 4.x, common.middleware.ContentSecurityPolicyMiddleware)
# Our pages load only our own scripts and styles. No 'unsafe-inline' anywhere: an inline script
# or style needs `nonce="{{ request.csp_nonce }}"` (the nonce appears in the header only on
# responses that use it). A POST that redirects is checked against form-action too, so the card
# payment form (which redirects to Stripe Checkout) needs Checkout's origin there.
STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        # data: for images drawn inline, e.g. the QR code of 2FA enrolment.
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF, STRIPE_CHECKOUT_ORIGIN],
    },
}
# Views (resolver view_name) whose page shows e-mail HTML in a sandboxed srcdoc frame, which
# inherits the page's policy: they may use inline style attributes (never scripts).
SECURITY_INLINE_STYLE_ATTR_VIEWS = [
    "admin:notifications_notificationtemplate_preview",
    "admin:notifications_notificationtemplate_default_preview",
]

# --- Cache-Control (common.middleware.PrivateNoStoreMiddleware) --------------------------------
# Views that anonymous visitors may get from a cache. Every other response, and every response
# to a logged-in user, is sent with `Cache-Control: no-store` (deny by default).
SECURITY_PUBLIC_CACHEABLE_VIEWS = ["plan-list"]
