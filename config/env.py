"""The one django-environ `Env` of the project, and the project root.

Values come from the process environment, then from a `.env` file at the repo root (if any).

Then, once, before any setting is read, the environment names of the earlier systems the portal
was specified from (the seed documents) are translated to ours: `ENV_ALIASES` says which of
their names (or groups of names, e.g. SMTP_HOST + SMTP_PORT -> EMAIL_URL) set which of ours,
`ENV_NAMES_WITHOUT_MEANING` lists their names that mean nothing here. For each one found:

- our name unset (absent or empty): it is set from theirs, with a warning "X is deprecated,
  use Y" (common.W101);
- our name set too: ours wins, theirs is ignored, with a warning saying so (common.W102);
- a name without meaning here, or one that cannot be converted: a warning saying why
  (common.W103); nothing is set.

Each notice is emitted as a `DeprecatedEnvironmentName` warning (printed on stderr when the
process starts) and kept in `ENV_ALIAS_NOTICES`, which the system check
`common.checks.environment_names_check` reports (`manage.py check`). A notice names variables,
never their values. README, "Environment names from other systems", has the table.
"""

import re
import warnings
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

_dotenv = BASE_DIR / ".env"
if _dotenv.is_file():
    environ.Env.read_env(str(_dotenv), overwrite=False)


# --- Environment names of the earlier systems ---------------------------------------------------


class DeprecatedEnvironmentName(FutureWarning):
    """An environment name of an earlier system was found. A FutureWarning, not a
    DeprecationWarning: Python shows FutureWarnings by default, and this one is meant for
    whoever runs the portal, not for a developer running tests."""


APPLIED = "common.W101"
IGNORED = "common.W102"
NOT_USED = "common.W103"

# The Discord-bot plans of the default catalog (billing.services.catalog.BOT_PLANS), the tiers
# of seed 002, whose one bot egg/image/startup served all of them. A test keeps this in step.
BOT_PLAN_PACKAGES = ("STARTER", "PRO", "BUSINESS")


@dataclass(frozen=True)
class Conversion:
    """Our names and the values they get; `note` explains something about it (never a value)."""

    values: dict[str, str]
    note: str = ""


# A converter gets the environment and returns a Conversion, a reason (str) why the names
# cannot be used, or None when they are not the earlier system's at all (and are left alone).
Converter = Callable[[Mapping[str, str]], "Conversion | str | None"]


@dataclass(frozen=True)
class EnvAlias:
    seed_names: tuple[str, ...]
    our_names: tuple[str, ...]
    convert: Converter
    source: str
    hint: str = ""


@dataclass(frozen=True)
class EnvNameWithoutMeaning:
    name: str
    reason: str
    source: str


@dataclass(frozen=True)
class EnvAliasNotice:
    check_id: str
    names: tuple[str, ...]
    message: str
    hint: str = field(default="")


def _is_link_address(value: str) -> bool:
    """Docker links and Kubernetes services set <SERVICE>_PORT=tcp://10.0.0.5:6379 on their own;
    such a value is not a port an operator chose."""
    return bool(re.match(r"(tcp|udp)://", value))


def _host_part(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _rename(seed: str, ours: str, *, integer: bool = False) -> Converter:
    def convert(environ: Mapping[str, str]) -> Conversion | str:
        value = environ.get(seed, "").strip()
        if not value:
            return f"{seed} is empty"
        if integer and not value.isdigit():
            return f"{seed} is not a whole number"
        return Conversion({ours: value})

    return convert


def _bot_plans(seed: str, suffix: str, *, integer: bool = False) -> Converter:
    def convert(environ: Mapping[str, str]) -> Conversion | str:
        value = environ.get(seed, "").strip()
        if not value:
            return f"{seed} is empty"
        if integer and not value.isdigit():
            return f"{seed} is not a whole number"
        return Conversion(
            {f"{package}_{suffix}": value for package in BOT_PLAN_PACKAGES},
            note="plans added later need their own <PACKAGE>_" + suffix,
        )

    return convert


def _pterodactyl_api_key(environ: Mapping[str, str]) -> Conversion | str:
    # Seed 002 asks for an Application API key (servers.*, nodes.*, users.*) but its example is a
    # client key (ptlc_); which one it is shows in the key's documented prefix.
    value = environ.get("PTERODACTYL_API_KEY", "").strip()
    if not value:
        return "PTERODACTYL_API_KEY is empty"
    if value.startswith("ptlc_"):
        return Conversion(
            {"PTERODACTYL_CLIENT_API_KEY": value},
            note=(
                "it is a client API key (ptlc_), so it became PTERODACTYL_CLIENT_API_KEY; "
                "provisioning needs an application API key (ptla_) in PTERODACTYL_ADMIN_API_KEY"
            ),
        )
    return Conversion({"PTERODACTYL_ADMIN_API_KEY": value})


def _port(environ: Mapping[str, str], name: str, default: int) -> int | str:
    raw = environ.get(name, "").strip()
    if not raw or _is_link_address(raw):
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        return f"{name} is not a port number"
    return int(raw)


def _smtp(environ: Mapping[str, str]) -> Conversion | str | None:
    host = environ.get("SMTP_HOST", "").strip()
    user = environ.get("SMTP_USER", "")
    password = environ.get("SMTP_PASSWORD", "")
    if not host:
        if _is_link_address(environ.get("SMTP_PORT", "")) and not (user or password):
            return None  # a container link named "smtp", not a seed setting
        return "SMTP_HOST is not set, so there is no mail server for EMAIL_URL"
    port = _port(environ, "SMTP_PORT", 587)
    if isinstance(port, str):
        return port
    # 465 is implicit TLS (smtps); anything else gets STARTTLS, never a cleartext login.
    scheme = "smtp+ssl" if port == 465 else "smtp+tls"
    userinfo = ""
    if user or password:
        userinfo = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        userinfo += "@"
    return Conversion({"EMAIL_URL": f"{scheme}://{userinfo}{_host_part(host)}:{port}"})


def _redis(environ: Mapping[str, str]) -> Conversion | str | None:
    host = environ.get("REDIS_HOST", "").strip()
    password = environ.get("REDIS_PASSWORD", "")
    if not host:
        if not password and (
            not environ.get("REDIS_PORT", "").strip()
            or _is_link_address(environ.get("REDIS_PORT", ""))
        ):
            return None  # a container link named "redis" (or an empty REDIS_PASSWORD alone)
        return "REDIS_HOST is not set, so there is no Redis server for CELERY_BROKER_URL"
    port = _port(environ, "REDIS_PORT", 6379)
    if isinstance(port, str):
        return port
    auth = f":{quote(password, safe='')}@" if password else ""
    return Conversion({"CELERY_BROKER_URL": f"redis://{auth}{_host_part(host)}:{port}/0"})


def _encryption_key(environ: Mapping[str, str]) -> Conversion | str:
    value = environ.get("ENCRYPTION_KEY", "")
    if not value.strip():
        return "ENCRYPTION_KEY is empty"
    if "," in value:
        return (
            "ENCRYPTION_KEY contains a comma, and FIELD_ENCRYPTION_KEYS is a comma-separated list"
        )
    return Conversion(
        {"FIELD_ENCRYPTION_KEYS": value},
        note="data the earlier system encrypted stays unreadable here; the key only salts ours",
    )


ENV_ALIASES: tuple[EnvAlias, ...] = (
    EnvAlias(
        ("PTERODACTYL_PANEL_URL",),
        ("PTERODACTYL_URL",),
        _rename("PTERODACTYL_PANEL_URL", "PTERODACTYL_URL"),
        "002",
    ),
    EnvAlias(
        ("PTERODACTYL_ADMIN_URL",),
        ("PTERODACTYL_URL",),
        _rename("PTERODACTYL_ADMIN_URL", "PTERODACTYL_URL"),
        "001",
    ),
    EnvAlias(
        ("PTERODACTYL_API_KEY",),
        ("PTERODACTYL_ADMIN_API_KEY", "PTERODACTYL_CLIENT_API_KEY"),
        _pterodactyl_api_key,
        "002",
        hint="An application key (ptla_) goes in PTERODACTYL_ADMIN_API_KEY, a client key "
        "(ptlc_) in PTERODACTYL_CLIENT_API_KEY.",
    ),
    EnvAlias(
        ("PTERODACTYL_DEFAULT_NODE_ID",),
        ("DEFAULT_NODE_ID",),
        _rename("PTERODACTYL_DEFAULT_NODE_ID", "DEFAULT_NODE_ID", integer=True),
        "002",
    ),
    EnvAlias(
        ("PTERODACTYL_BOT_EGG_ID",),
        tuple(f"{p}_EGG_ID" for p in BOT_PLAN_PACKAGES),
        _bot_plans("PTERODACTYL_BOT_EGG_ID", "EGG_ID", integer=True),
        "002",
    ),
    EnvAlias(
        ("PTERODACTYL_BOT_NEST_ID",),
        tuple(f"{p}_NEST_ID" for p in BOT_PLAN_PACKAGES),
        _bot_plans("PTERODACTYL_BOT_NEST_ID", "NEST_ID", integer=True),
        "002",
    ),
    EnvAlias(
        ("PTERODACTYL_DOCKER_IMAGE",),
        tuple(f"{p}_DOCKER_IMAGE" for p in BOT_PLAN_PACKAGES),
        _bot_plans("PTERODACTYL_DOCKER_IMAGE", "DOCKER_IMAGE"),
        "002",
    ),
    EnvAlias(
        ("BOT_STARTUP_COMMAND",),
        tuple(f"{p}_STARTUP" for p in BOT_PLAN_PACKAGES),
        _bot_plans("BOT_STARTUP_COMMAND", "STARTUP"),
        "002",
    ),
    EnvAlias(
        ("SMTP_HOST", "SMTP_PORT", "SMTP_USER", "SMTP_PASSWORD"),
        ("EMAIL_URL",),
        _smtp,
        "004",
        hint="Set EMAIL_URL=smtp+tls://USER:PASSWORD@HOST:587 (URL-quote the user and "
        "password; smtp+ssl:// for port 465).",
    ),
    EnvAlias(
        ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"),
        ("CELERY_BROKER_URL",),
        _redis,
        "004",
        hint="Set CELERY_BROKER_URL=redis://:PASSWORD@HOST:PORT/0 (URL-quote the password).",
    ),
    EnvAlias(
        ("EMAIL_FROM",),
        ("DEFAULT_FROM_EMAIL",),
        _rename("EMAIL_FROM", "DEFAULT_FROM_EMAIL"),
        "004",
    ),
    EnvAlias(
        ("ENCRYPTION_KEY",),
        ("FIELD_ENCRYPTION_KEYS",),
        _encryption_key,
        "004",
    ),
    EnvAlias(
        ("COMPANY_NAME",),
        ("PORTAL_NAME",),
        _rename("COMPANY_NAME", "PORTAL_NAME"),
        "004",
    ),
)

ENV_NAMES_WITHOUT_MEANING: tuple[EnvNameWithoutMeaning, ...] = (
    EnvNameWithoutMeaning(
        "ENABLE_CRON",
        "scheduled work is run by Celery beat (the fleet jobs, FLEET_*_INTERVAL); "
        "run the beat process or not instead",
        "004",
    ),
    EnvNameWithoutMeaning(
        "NODE_ENV",
        "DJANGO_SETTINGS_MODULE chooses the environment (config.django.production)",
        "004",
    ),
    EnvNameWithoutMeaning(
        "BACKUP_RETENTION_DAYS",
        "the portal has no backup cleanup yet (a plan's backups limit caps panel backups)",
        "004",
    ),
    EnvNameWithoutMeaning(
        "EMAIL_PROVIDER",
        "the scheme of EMAIL_URL chooses how mail is sent (SMTP_HOST and SMTP_PORT become an "
        "smtp+tls:// EMAIL_URL)",
        "004",
    ),
    EnvNameWithoutMeaning(
        "COMPANY_DOMAIN",
        "it has no single equivalent: set PORTAL_BASE_URL, ALLOWED_HOSTS and "
        "PTERODACTYL_EMAIL_DOMAIN (addresses of generated panel users)",
        "004",
    ),
    EnvNameWithoutMeaning(
        "WEBHOOK_SECRET",
        "webhooks are verified with the providers' own secrets: STRIPE_WEBHOOK_SECRETS (the "
        "whsec_ secret Stripe shows for the endpoint) and WHATSAPP_APP_SECRET",
        "002",
    ),
    EnvNameWithoutMeaning(
        "PTERODACTYL_DEFAULT_USER_ID",
        "every customer gets a panel user of their own; servers are not created under one user",
        "002",
    ),
)

# Every name of the earlier systems this module knows (the settings skip them when they scan
# the environment, e.g. for <PACKAGE>_DOCKER_IMAGE).
SEED_ENV_NAMES = frozenset(
    [name for alias in ENV_ALIASES for name in alias.seed_names]
    + [entry.name for entry in ENV_NAMES_WITHOUT_MEANING]
)


def _join(names: list[str] | tuple[str, ...]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _is(names: list[str]) -> str:
    return "is" if len(names) == 1 else "are"


def apply_env_aliases(environ: MutableMapping[str, str]) -> list[EnvAliasNotice]:
    """Set our names from the earlier systems' names in `environ` (in place); the notices say
    what happened. Applying it again to the result gives the same notices and changes nothing
    (a child process inherits the names set here: its notices are those of its parent)."""
    notices: list[EnvAliasNotice] = []
    set_here: dict[str, str] = {}
    for alias in ENV_ALIASES:
        present = [name for name in alias.seed_names if name in environ]
        if not present:
            continue
        label, verb = _join(present), _is(present)
        result = alias.convert(environ)
        if result is None:
            continue
        if isinstance(result, Conversion):
            proxied = [name for name, value in result.values.items() if value.startswith("$")]
            if proxied:
                result = (
                    f"the value starts with '$', which django-environ reads as the name of "
                    f"another variable; set {_join(proxied)} yourself"
                )
        if isinstance(result, str):
            notices.append(
                EnvAliasNotice(
                    NOT_USED,
                    tuple(present),
                    f"{label} {verb} deprecated, use {' or '.join(alias.our_names)}; "
                    f"{label} {verb} not used: {result}.",
                    alias.hint or f"Set {' or '.join(alias.our_names)} instead.",
                )
            )
            continue
        applied: list[str] = []
        kept: list[str] = []
        for name, value in result.values.items():
            current = environ.get(name, "")
            if not current:
                environ[name] = value
                set_here[name] = label
                applied.append(name)
            elif current == value:
                set_here[name] = label
                applied.append(name)
            else:
                kept.append(name)
        ours = _join(list(result.values))
        message = f"{label} {verb} deprecated, use {ours}"
        if applied:
            source = "it" if len(present) == 1 else "them"
            message += f"; {_join(applied)} {_is(applied)} set from {source}"
        if kept:
            earlier = sorted({set_here[name] for name in kept if name in set_here})
            where = f" already (from {_join(earlier)})" if earlier else " too"
            message += f"; {_join(kept)} {_is(kept)} set{where}"
            one = len(kept) == 1
            if applied:
                message += " and keeps its value" if one else " and keep their values"
            else:
                message += f" and {'wins' if one else 'win'}, so {label} {verb} ignored"
        if result.note:
            message += f" ({result.note})"
        notices.append(
            EnvAliasNotice(
                IGNORED if kept else APPLIED,
                tuple(present),
                message + ".",
                alias.hint or f"Rename {label} to {ours} in the environment.",
            )
        )
    for entry in ENV_NAMES_WITHOUT_MEANING:
        if entry.name in environ:
            notices.append(
                EnvAliasNotice(
                    NOT_USED,
                    (entry.name,),
                    f"{entry.name} has no meaning in this portal and is ignored: {entry.reason}.",
                    f"Remove {entry.name} from the environment.",
                )
            )
    return notices


ENV_ALIAS_NOTICES: tuple[EnvAliasNotice, ...] = tuple(apply_env_aliases(env.ENVIRON))
for _notice in ENV_ALIAS_NOTICES:
    warnings.warn(_notice.message, DeprecatedEnvironmentName, stacklevel=1)
