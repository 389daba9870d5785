"""The Pterodactyl panel and automatic provisioning (names from the provisioning guides)."""

from config.env import env

PTERODACTYL_URL = env("PTERODACTYL_URL", default="")
# Application API key (ptla_...) of a root admin. Never logged.
PTERODACTYL_ADMIN_API_KEY = env("PTERODACTYL_ADMIN_API_KEY", default="")
# Optional client API key (ptlc_...) of a root admin: power signals and live resources.
PTERODACTYL_CLIENT_API_KEY = env("PTERODACTYL_CLIENT_API_KEY", default="")
# Our request budget per minute on the client API (the panel allows 720).
PTERODACTYL_CLIENT_RATE_LIMIT_PER_MINUTE = env.int(
    "PTERODACTYL_CLIENT_RATE_LIMIT_PER_MINUTE", default=600
)
PTERODACTYL_TIMEOUT_CONNECT = env.float("PTERODACTYL_TIMEOUT_CONNECT", default=5.0)
PTERODACTYL_TIMEOUT_READ = env.float("PTERODACTYL_TIMEOUT_READ", default=30.0)
PTERODACTYL_HTTP_MAX_RETRIES = env.int("PTERODACTYL_HTTP_MAX_RETRIES", default=3)
# The panel allows 240 requests/min per admin; stay under it across all workers.
PTERODACTYL_RATE_LIMIT_PER_MINUTE = env.int("PTERODACTYL_RATE_LIMIT_PER_MINUTE", default=200)
# Redis for the shared limiter; empty = one limiter per process.
PTERODACTYL_RATE_LIMIT_REDIS_URL = env("PTERODACTYL_RATE_LIMIT_REDIS_URL", default="") or None
# Node used when an order names no location.
DEFAULT_NODE_ID = env.int("DEFAULT_NODE_ID", default=1)
# First port tried when new allocations must be created on a node.
BASE_PORT = env.int("BASE_PORT", default=25565)
# Domain of the e-mail addresses generated for panel users of customers without one.
PTERODACTYL_EMAIL_DOMAIN = env("PTERODACTYL_EMAIL_DOMAIN", default="example.com")

PROVISIONING_ENABLED = env.bool("PROVISIONING_ENABLED", default=True)
# Upper bound of a whole provisioning run, in seconds (the guide's 300000 ms).
PROVISIONING_TIMEOUT = env.int("PROVISIONING_TIMEOUT", default=300)
PROVISIONING_RETRY_ATTEMPTS = env.int("PROVISIONING_RETRY_ATTEMPTS", default=3)
# Runs started at once; the rest wait in the queue.
PROVISIONING_QUEUE_SIZE = env.int("PROVISIONING_QUEUE_SIZE", default=10)
DEFAULT_USER_PASSWORD_LENGTH = max(16, env.int("DEFAULT_USER_PASSWORD_LENGTH", default=16))
DEFAULT_SERVER_STARTUP_TIMEOUT = env.int("DEFAULT_SERVER_STARTUP_TIMEOUT", default=60)
AUTO_START_SERVERS = env.bool("AUTO_START_SERVERS", default=True)

# Per-package overrides read by seed_catalog and provisioning: <PACKAGE>_EGG_ID,
# <PACKAGE>_DOCKER_IMAGE, <PACKAGE>_STARTUP (e.g. BRONZE_EGG_ID=1). Read through
# billing.catalog.package_overrides(), not listed one by one here.

# Seconds between install status polls (each poll is its own scheduled task; no sleeping).
PROVISIONING_POLL_INTERVAL = env.float("PROVISIONING_POLL_INTERVAL", default=5.0)
# Base of the exponential backoff (with jitter) between retries of a failing step, seconds.
PROVISIONING_RETRY_BACKOFF = env.float("PROVISIONING_RETRY_BACKOFF", default=2.0)
# A scheduled step not picked up this many seconds after it was due counts as lost.
PROVISIONING_SWEEP_GRACE = env.int("PROVISIONING_SWEEP_GRACE", default=120)
