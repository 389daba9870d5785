"""Settings shared by every environment. Environment files (local, test, production) import this."""

from config.env import BASE_DIR, env

# --- Core -----------------------------------------------------------------------------------
# Local/test settings give SECRET_KEY a development default; production.py refuses to start
# without a real one.
SECRET_KEY = env("SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
PORTAL_BASE_URL = env("PORTAL_BASE_URL", default="http://127.0.0.1:8000")
PORTAL_NAME = env("PORTAL_NAME", default="GameHost Portal")
SUPPORT_EMAIL = env("SUPPORT_EMAIL", default="support@example.com")

INSTALLED_APPS = [
    # django.contrib.admin with our admin site: it requires a second factor (common.admin_site).
    "common.admin_site.PortalAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "common.apps.CommonConfig",
    "notifications.apps.NotificationsConfig",
    "servers.apps.ServersConfig",
    "provisioning.apps.ProvisioningConfig",
    "billing.apps.BillingConfig",
]

MIDDLEWARE = [
    # First: every response (and every log line of the request) carries its X-Request-ID.
    "common.request_id.RequestIdMiddleware",
    # Before security, sessions and hosts: /healthz, /readyz and /metrics are answered here, with
    # no HTTPS redirect, ALLOWED_HOSTS check (probes use the pod's IP), session or CSRF.
    "common.health.OperationsEndpointsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After auth: a signed-in customer's profile language wins over cookie/browser.
    "notifications.i18n.ProfileLanguageMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # request.htmx: the live fragments answer htmx polls (billing.views.live).
    "django_htmx.middleware.HtmxMiddleware",
    # After messages: it tells a user why they were logged out.
    "common.sessions.SessionLifetimeMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "common.middleware.ContentSecurityPolicyMiddleware",
    "common.middleware.PrivateNoStoreMiddleware",
    # Last, as axes asks: turns a locked-out login attempt into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "common.context_processors.portal",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
# SQLite by default so `make run` needs no server; CI and production use PostgreSQL.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'portal.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo's web, workers and beat share one SQLite file: WAL lets readers run beside the
    # writer, IMMEDIATE transactions take the write lock up front (no "database is locked" on
    # upgrade), and writers wait up to 30 s for each other instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Axes first: it refuses a locked-out client before any backend computes a password hash.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "plan-list"

# --- I18n / time ------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("id", "Bahasa Indonesia")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
# Storage and computation are UTC; BILLING_TIME_ZONE decides which calendar day a due date is.
TIME_ZONE = "UTC"
USE_TZ = True

# --- Static -----------------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env("STATIC_ROOT", default=str(BASE_DIR / "var" / "staticfiles"))

# --- Logging ----------------------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
# "text" (default) or "json": one JSON object per line (common.logging.JsonFormatter).
LOG_FORMAT = env("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured('LOG_FORMAT must be "text" or "json".')
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "common.logging.RedactSecretsFilter"},
        # request_id / task_id on every record (common.request_id).
        "log_context": {"()": "common.logging.LogContextFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "common.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["redact_secrets", "log_context"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}

from config.settings.api import *  # noqa: E402, F403
from config.settings.auth import *  # noqa: E402, F403
from config.settings.billing import *  # noqa: E402, F403
from config.settings.celery import *  # noqa: E402, F403
from config.settings.email import *  # noqa: E402, F403
from config.settings.fleet import *  # noqa: E402, F403
from config.settings.notifications import *  # noqa: E402, F403
from config.settings.operations import *  # noqa: E402, F403
from config.settings.payments import *  # noqa: E402, F403
from config.settings.provisioning import *  # noqa: E402, F403
from config.settings.security import *  # noqa: E402, F403
