"""The earlier systems' environment names (the seed documents) are translated to ours, once, when
config/env.py is imported: ours set from theirs with a warning, ours winning over theirs, names
without meaning here reported, and never a value in a warning (README, "Environment names from
other systems")."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import environ
import pytest
from kombu.utils.url import url_to_parts

from billing.services.catalog import BOT_PLANS
from common.checks import environment_names_check
from config import env as config_env
from config.env import (
    APPLIED,
    BOT_PLAN_PACKAGES,
    ENV_ALIASES,
    IGNORED,
    NOT_USED,
    SEED_ENV_NAMES,
    EnvAliasNotice,
    apply_env_aliases,
)
from tests.test_settings import GOOD

ROOT = Path(__file__).resolve().parent.parent
OUR_NAMES = {name for alias in ENV_ALIASES for name in alias.our_names}
PACKAGE_NAME = re.compile(r"[A-Z0-9_]+_(NEST_ID|EGG_ID|DOCKER_IMAGE|STARTUP)")

# Seed-style values; the secret ones must never appear in a warning.
API_KEY = "ptla_SeedAdminKey" + "q" * 32
SMTP_PASSWORD = "sm:tp/p@ss w%rd#1"
REDIS_PASSWORD = "r3d!s:p@ss/w0rd"
ENCRYPTION_KEY = "seed-32-char-encryption-key-0123"
SECRETS = (API_KEY, SMTP_PASSWORD, REDIS_PASSWORD, ENCRYPTION_KEY)
SEED_ENVIRONMENT = {
    # seed 002
    "PTERODACTYL_PANEL_URL": "https://panel.seed.example",
    "PTERODACTYL_API_KEY": API_KEY,
    "PTERODACTYL_DEFAULT_NODE_ID": "4",
    "PTERODACTYL_BOT_EGG_ID": "15",
    "PTERODACTYL_BOT_NEST_ID": "5",
    "PTERODACTYL_DOCKER_IMAGE": "ghcr.io/parkervcp/yolks:nodejs_22",
    "BOT_STARTUP_COMMAND": "node index.js",
    # seed 004
    "REDIS_HOST": "redis.seed.example",
    "REDIS_PORT": "6380",
    "REDIS_PASSWORD": REDIS_PASSWORD,
    "SMTP_HOST": "smtp.seed.example",
    "SMTP_PORT": "587",
    "SMTP_USER": "mailer@seed.example",
    "SMTP_PASSWORD": SMTP_PASSWORD,
    "EMAIL_FROM": "noreply@seed.example",
    "ENCRYPTION_KEY": ENCRYPTION_KEY,
    "COMPANY_NAME": "MigraHosting",
    "ENABLE_CRON": "true",
    "NODE_ENV": "production",
    "BACKUP_RETENTION_DAYS": "30",
}
# Production settings, with the seed's names where ours would be (they refuse to start without
# a broker, a mail server and an encryption key: only the translation provides them).
SEED_PRODUCTION = {
    **{k: v for k, v in GOOD.items() if k not in OUR_NAMES},
    **SEED_ENVIRONMENT,
}

PRINT_SETTINGS = (
    "import json; from django.conf import settings as s; "
    "from billing.catalog import package_overrides as p; "
    "print(json.dumps({n: getattr(s, n) for n in ["
    "'PTERODACTYL_URL', 'PTERODACTYL_ADMIN_API_KEY', 'DEFAULT_NODE_ID', 'EMAIL_BACKEND', "
    "'EMAIL_HOST', 'EMAIL_PORT', 'EMAIL_HOST_USER', 'EMAIL_HOST_PASSWORD', 'EMAIL_USE_TLS', "
    "'CELERY_BROKER_URL', 'FIELD_ENCRYPTION_KEYS', 'DEFAULT_FROM_EMAIL', 'PORTAL_NAME']} "
    "| {'starter': p('starter').as_dict(), 'business': p('business').as_dict(), "
    "'bronze': p('bronze').as_dict()}))"
)


def manage(*args: str, variables: dict[str, str]) -> subprocess.CompletedProcess:
    """manage.py with exactly `variables` for the names this test is about (none inherited)."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in GOOD
        and k not in SEED_ENV_NAMES
        and k not in OUR_NAMES
        and not PACKAGE_NAME.fullmatch(k)
    }
    environment.update(variables)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text
        assert quote(secret, safe="") not in text


# --- manage.py with a seed-style environment --------------------------------------------------


def test_seed_names_give_our_settings_with_a_warning_each():
    result = manage("shell", "-c", PRINT_SETTINGS, variables=SEED_PRODUCTION)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])

    assert values["PTERODACTYL_URL"] == "https://panel.seed.example"
    assert values["PTERODACTYL_ADMIN_API_KEY"] == API_KEY
    assert values["DEFAULT_NODE_ID"] == 4
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (values["EMAIL_HOST"], values["EMAIL_PORT"], values["EMAIL_USE_TLS"]) == (
        "smtp.seed.example",
        587,
        True,
    )
    assert (values["EMAIL_HOST_USER"], values["EMAIL_HOST_PASSWORD"]) == (
        "mailer@seed.example",
        SMTP_PASSWORD,
    )
    broker = url_to_parts(values["CELERY_BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port, broker.password) == (
        "redis",
        "redis.seed.example",
        6380,
        REDIS_PASSWORD,
    )
    assert values["FIELD_ENCRYPTION_KEYS"] == [ENCRYPTION_KEY]
    assert values["DEFAULT_FROM_EMAIL"] == "noreply@seed.example"
    assert values["PORTAL_NAME"] == "MigraHosting"
    bot = {
        "nest_id": 5,
        "egg_id": 15,
        "docker_image": "ghcr.io/parkervcp/yolks:nodejs_22",
        "startup": "node index.js",
    }
    assert values["starter"] == values["business"] == bot
    assert values["bronze"] == {}

    for seed, ours in [
        ("PTERODACTYL_PANEL_URL", "PTERODACTYL_URL"),
        ("PTERODACTYL_API_KEY", "PTERODACTYL_ADMIN_API_KEY"),
        ("PTERODACTYL_DEFAULT_NODE_ID", "DEFAULT_NODE_ID"),
        ("SMTP_HOST, SMTP_PORT, SMTP_USER and SMTP_PASSWORD are", "EMAIL_URL"),
        ("REDIS_HOST, REDIS_PORT and REDIS_PASSWORD are", "CELERY_BROKER_URL"),
        ("EMAIL_FROM", "DEFAULT_FROM_EMAIL"),
        ("ENCRYPTION_KEY", "FIELD_ENCRYPTION_KEYS"),
        ("COMPANY_NAME", "PORTAL_NAME"),
    ]:
        assert f"{seed}{'' if seed.endswith(' are') else ' is'} deprecated, use {ours}" in (
            result.stderr
        )
    assert "DeprecatedEnvironmentName" in result.stderr
    for name in ("ENABLE_CRON", "NODE_ENV", "BACKUP_RETENTION_DAYS"):
        assert f"{name} has no meaning in this portal and is ignored" in result.stderr
    assert_no_secret(result.stderr)


def test_check_reports_the_seed_names_and_never_a_value():
    result = manage("check", "--deploy", variables=SEED_PRODUCTION)
    assert result.returncode == 0, result.stderr
    output = result.stderr.split("System check identified")[1]
    assert (
        "(common.W101) PTERODACTYL_PANEL_URL is deprecated, use PTERODACTYL_URL; "
        "PTERODACTYL_URL is set from it."
    ) in output
    assert "(common.W101) SMTP_HOST, SMTP_PORT, SMTP_USER and SMTP_PASSWORD" in output
    for name in ("ENABLE_CRON", "NODE_ENV", "BACKUP_RETENTION_DAYS"):
        assert f"(common.W103) {name} has no meaning in this portal" in output
    assert "common.W102" not in output
    assert_no_secret(result.stderr + result.stdout)


def test_our_names_win_over_the_seed_names():
    variables = {
        **GOOD,
        "PTERODACTYL_URL": "https://panel.ours.example",
        "PTERODACTYL_PANEL_URL": "https://panel.seed.example",
        "SMTP_HOST": "smtp.seed.example",
        "SMTP_PASSWORD": SMTP_PASSWORD,
    }
    result = manage("shell", "-c", PRINT_SETTINGS, variables=variables)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["PTERODACTYL_URL"] == "https://panel.ours.example"
    assert values["EMAIL_HOST"] == "smtp.example.com"  # GOOD's EMAIL_URL
    assert (
        "PTERODACTYL_PANEL_URL is deprecated, use PTERODACTYL_URL; PTERODACTYL_URL is set too "
        "and wins, so PTERODACTYL_PANEL_URL is ignored."
    ) in result.stderr
    assert "SMTP_HOST and SMTP_PASSWORD are ignored" in result.stderr
    assert_no_secret(result.stderr)

    check = manage("check", "--deploy", variables=variables)
    assert check.returncode == 0, check.stderr
    assert "(common.W102) PTERODACTYL_PANEL_URL is deprecated" in check.stderr
    assert "(common.W102) SMTP_HOST and SMTP_PASSWORD are deprecated" in check.stderr
    assert_no_secret(check.stderr + check.stdout)


def test_package_overrides_come_from_the_environment_through_the_settings():
    variables = {
        **GOOD,
        "BRONZE_EGG_ID": "7",
        "BRONZE_NEST_ID": "0",
        "BRONZE_DOCKER_IMAGE": "ghcr.io/pterodactyl/yolks:java_21",
        "BRONZE_STARTUP": "",
        "PRO_EGG_ID": "9",
        "PTERODACTYL_BOT_EGG_ID": "15",
    }
    result = manage("shell", "-c", PRINT_SETTINGS, variables=variables)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    # An empty image or startup is unset, a 0 id is kept (and loses to the plan row's).
    assert values["bronze"] == {
        "nest_id": 0,
        "egg_id": 7,
        "docker_image": "ghcr.io/pterodactyl/yolks:java_21",
    }
    assert values["starter"] == {"egg_id": 15}
    assert "PRO_EGG_ID is set too and keeps its value" in result.stderr

    broken = manage("check", variables={**GOOD, "BRONZE_EGG_ID": "seven"})
    assert broken.returncode != 0
    assert "BRONZE_EGG_ID must be a whole number" in broken.stderr


def test_no_seed_names_no_warning():
    result = manage("shell", "-c", "print('ok')", variables=GOOD)
    assert result.returncode == 0, result.stderr
    assert "DeprecatedEnvironmentName" not in result.stderr


# --- The translation itself --------------------------------------------------------------------


def test_every_name_of_seeds_002_and_004_is_known():
    seed_names = [
        *("PTERODACTYL_PANEL_URL", "PTERODACTYL_API_KEY", "PTERODACTYL_DEFAULT_NODE_ID"),
        *("PTERODACTYL_BOT_EGG_ID", "PTERODACTYL_BOT_NEST_ID", "PTERODACTYL_DEFAULT_USER_ID"),
        *("PTERODACTYL_DOCKER_IMAGE", "BOT_STARTUP_COMMAND", "WEBHOOK_SECRET"),
        *("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "ENABLE_CRON", "BACKUP_RETENTION_DAYS"),
        *("EMAIL_PROVIDER", "SMTP_HOST", "SMTP_PORT", "EMAIL_FROM", "ENCRYPTION_KEY"),
        *("COMPANY_NAME", "COMPANY_DOMAIN", "NODE_ENV"),
    ]
    # SUPPORT_EMAIL and SUSPENSION_GRACE_DAYS are our names too.
    assert sorted(set(seed_names) - SEED_ENV_NAMES) == []


def test_every_seed_name_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Environment names from other systems", 1)[1].split("\n## ")[0]
    assert sorted(name for name in SEED_ENV_NAMES if f"`{name}`" not in section) == []


def test_bot_plan_packages_are_the_catalogs_bot_plans():
    assert tuple(slug.upper() for slug, *_ in BOT_PLANS) == BOT_PLAN_PACKAGES


@pytest.mark.parametrize(
    ("port", "scheme", "tls", "ssl"),
    [
        ("587", "smtp+tls", True, False),
        ("465", "smtp+ssl", False, True),
        ("", "smtp+tls", True, False),
    ],
)
def test_smtp_names_become_an_email_url_with_quoted_user_and_password(port, scheme, tls, ssl):
    user, password = "mailer@seed.example", "p@ss:w/rd%?#+ é"
    environment = {"SMTP_HOST": "smtp.seed.example", "SMTP_PORT": port, "SMTP_USER": user}
    environment["SMTP_PASSWORD"] = password
    notices = apply_env_aliases(environment)
    assert [n.check_id for n in notices] == [APPLIED]
    assert environment["EMAIL_URL"].startswith(f"{scheme}://")
    config = environ.Env.email_url_config(environment["EMAIL_URL"])
    assert (config["EMAIL_HOST"], config["EMAIL_PORT"]) == ("smtp.seed.example", int(port or 587))
    assert (config["EMAIL_HOST_USER"], config["EMAIL_HOST_PASSWORD"]) == (user, password)
    assert bool(config.get("EMAIL_USE_TLS")) is tls
    assert bool(config.get("EMAIL_USE_SSL")) is ssl


def test_redis_names_become_a_broker_url():
    environment = {"REDIS_HOST": "localhost", "REDIS_PORT": "6380", "REDIS_PASSWORD": ""}
    apply_env_aliases(environment)
    assert environment["CELERY_BROKER_URL"] == "redis://localhost:6380/0"
    environment = {"REDIS_HOST": "::1", "REDIS_PASSWORD": "a@b:c/d%e"}
    apply_env_aliases(environment)
    parts = url_to_parts(environment["CELERY_BROKER_URL"])
    assert (parts.hostname, parts.port, parts.password) == ("::1", 6379, "a@b:c/d%e")


def test_container_link_variables_are_left_alone():
    # Docker links and Kubernetes services set these for services named "redis" and "smtp".
    environment = {"REDIS_PORT": "tcp://10.0.0.5:6379", "SMTP_PORT": "tcp://10.0.0.6:25"}
    assert apply_env_aliases(environment) == []
    assert environment == {"REDIS_PORT": "tcp://10.0.0.5:6379", "SMTP_PORT": "tcp://10.0.0.6:25"}


def test_a_client_api_key_becomes_the_client_key():
    environment = {"PTERODACTYL_API_KEY": "ptlc_" + "c" * 43}
    (notice,) = apply_env_aliases(environment)
    assert environment["PTERODACTYL_CLIENT_API_KEY"] == "ptlc_" + "c" * 43
    assert "PTERODACTYL_ADMIN_API_KEY" not in environment
    assert "application API key (ptla_) in PTERODACTYL_ADMIN_API_KEY" in notice.message


def test_values_that_cannot_be_converted_are_reported_and_not_used():
    environment = {
        "PTERODACTYL_DEFAULT_NODE_ID": "one",
        "SMTP_HOST": "smtp.seed.example",
        "SMTP_PORT": "smtp",
        "ENCRYPTION_KEY": "a,b",
        "COMPANY_NAME": "$HOME",
        "REDIS_PASSWORD": REDIS_PASSWORD,
    }
    before = dict(environment)
    notices = apply_env_aliases(environment)
    assert environment == before
    assert {n.check_id for n in notices} == {NOT_USED}
    reasons = " ".join(n.message for n in notices)
    assert "PTERODACTYL_DEFAULT_NODE_ID is not a whole number" in reasons
    assert "SMTP_PORT is not a port number" in reasons
    assert "FIELD_ENCRYPTION_KEYS is a comma-separated list" in reasons
    assert "starts with '$'" in reasons
    assert "REDIS_HOST is not set" in reasons


def test_two_seed_names_for_one_of_ours_the_first_wins():
    environment = {
        "PTERODACTYL_PANEL_URL": "https://a.example",
        "PTERODACTYL_ADMIN_URL": "https://b",
    }
    first, second = apply_env_aliases(environment)
    assert environment["PTERODACTYL_URL"] == "https://a.example"
    assert (first.check_id, second.check_id) == (APPLIED, IGNORED)
    assert "set already (from PTERODACTYL_PANEL_URL)" in second.message


def test_applying_again_changes_nothing_and_says_the_same():
    # A child process (a worker, runserver's reloader) inherits the names set by its parent.
    environment = dict(SEED_ENVIRONMENT, PRO_EGG_ID="9", PTERODACTYL_ADMIN_URL="https://other")
    notices = apply_env_aliases(environment)
    again = dict(environment)
    assert apply_env_aliases(again) == notices
    assert again == environment


def test_no_notice_contains_a_value():
    environment = dict(SEED_ENVIRONMENT, WEBHOOK_SECRET="whsec-seed-" + "w" * 20)
    environment["PTERODACTYL_ADMIN_API_KEY"] = "ptla_Ours" + "o" * 40
    notices = apply_env_aliases(environment)
    text = " ".join(f"{n.message} {n.hint}" for n in notices)
    for value in [
        *SECRETS,
        environment["WEBHOOK_SECRET"],
        environment["PTERODACTYL_ADMIN_API_KEY"],
    ]:
        assert value not in text
        assert quote(value, safe="") not in text


def test_the_check_reports_each_notice(monkeypatch):
    notices = (
        EnvAliasNotice(APPLIED, ("EMAIL_FROM",), "EMAIL_FROM is deprecated, use X.", "Rename."),
        EnvAliasNotice(NOT_USED, ("NODE_ENV",), "NODE_ENV has no meaning.", "Remove."),
    )
    monkeypatch.setattr(config_env, "ENV_ALIAS_NOTICES", notices)
    warnings = environment_names_check()
    assert [(w.id, w.msg, w.hint) for w in warnings] == [
        ("common.W101", "EMAIL_FROM is deprecated, use X.", "Rename."),
        ("common.W103", "NODE_ENV has no meaning.", "Remove."),
    ]
