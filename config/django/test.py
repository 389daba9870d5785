"""Test suite: PostgreSQL and Redis on this machine by default (CI runs the same)."""

from config.django.base import *  # noqa: F403
from config.env import env

SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdefghijkl"
SALT_KEY = ["test-field-encryption-key-1"]
FIELD_ENCRYPTION_KEYS = SALT_KEY
DATABASES = {
    "default": env.db("TEST_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/portal"),
}
TEST_REDIS_URL = env("TEST_REDIS_URL", default="redis://127.0.0.1:6379/15")
CELERY_BROKER_URL = env("TEST_CELERY_BROKER_URL", default=TEST_REDIS_URL)
CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(  # noqa: F405
    CELERY_BROKER_URL,
    CELERY_FILESYSTEM_BROKER_DIR,  # noqa: F405
)
# Each pytest-xdist worker (and the real workers its tests start, which inherit the variable)
# keeps its broker keys under its own prefix in the suite's Redis database, so a test that
# clears "its" Redis (tests.support.redis_clear_own_keys) never drops another worker's tasks.
TEST_REDIS_KEY_PREFIX = f"test:{env('PYTEST_XDIST_WORKER', default='main')}:"
if CELERY_BROKER_URL.startswith("redis"):
    CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = TEST_REDIS_KEY_PREFIX
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STRIPE_SECRET_KEY = "sk_test_dummy_key_for_tests"
STRIPE_WEBHOOK_SECRETS = ["whsec_test_secret_one"]
# Subprocesses of tests (real workers) point these at a simulator the test serves.
PTERODACTYL_URL = env("TEST_PTERODACTYL_URL", default="https://panel.test")
PTERODACTYL_ADMIN_API_KEY = env(
    "TEST_PTERODACTYL_ADMIN_API_KEY", default="ptla_testkey0000" + "s" * 32
)
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}  # noqa: F405
LOGGING["root"]["level"] = "WARNING"  # noqa: F405

# The panel simulator (a demo and test double, not part of the product) for its
# `run_panel_simulator` command; production settings do not install it.
INSTALLED_APPS = [*INSTALLED_APPS, "panel_simulator.apps.PanelSimulatorConfig"]  # noqa: F405
