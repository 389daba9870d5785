"""Production settings refuse to start without secrets; `check --deploy` is clean with them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
GOOD = {
    "DJANGO_SETTINGS_MODULE": "config.django.production",
    "SECRET_KEY": "x" * 20 + "-production-secret-key-for-the-check-0123456789",
    "FIELD_ENCRYPTION_KEYS": "a-long-random-field-encryption-key",
    "ALLOWED_HOSTS": "portal.example.com",
    "DATABASE_URL": "postgres://portal@127.0.0.1:5432/portal",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "EMAIL_URL": "smtp+tls://mailer:pw@smtp.example.com:587",
    "PORTAL_BASE_URL": "https://portal.example.com",
    "ADMIN_EMAILS": "ops@example.com",
}


def manage(*args: str, **env_overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in GOOD}
    env.update({k: v for k, v in {**GOOD, **env_overrides}.items() if v is not None})
    for key, value in env_overrides.items():
        if value is None:
            env.pop(key, None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_start_up_says_when_nobody_is_set_to_receive_staff_alerts():
    result = manage("check", "--deploy", ADMIN_EMAILS=None, ADMIN_PHONE=None)
    assert "notifications.W001" in result.stderr


def test_production_refuses_without_secret_key():
    result = manage("check", SECRET_KEY=None)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_without_encryption_key():
    result = manage("check", FIELD_ENCRYPTION_KEYS=None)
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS must be set" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DATABASE_URL", "sqlite:///portal.sqlite3", "PostgreSQL"),
        ("CELERY_BROKER_URL", "filesystem://", "Redis or RabbitMQ"),
        ("EMAIL_URL", "consolemail://", "real mail server"),
        ("PORTAL_BASE_URL", "http://127.0.0.1:8000", "public https"),
    ],
)
def test_production_refuses_demo_defaults(variable, value, message):
    result = manage("check", **{variable: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_production_refuses_default_hosts():
    result = manage("check", ALLOWED_HOSTS=None)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr
