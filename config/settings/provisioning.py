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
# Read timeout of writes (a create calls Wings inside the panel); GETs get their own, shorter one
# so a hung read does not hold a worker for 30 s.
PTERODACTYL_TIMEOUT_READ = env.float("PTERODACTYL_TIMEOUT_READ", default=30.0)
PTERODACTYL_TIMEOUT_READ_GET = env.float("PTERODACTYL_TIMEOUT_READ_GET", default=10.0)
# HTTP retries inside one call, for interactive callers (commands, admin checks). Celery workers
# use none: their scheduler retries with a countdown (PterodactylClient.for_workers).
PTERODACTYL_HTTP_MAX_RETRIES = env.int("PTERODACTYL_HTTP_MAX_RETRIES", default=3)
# The longest a worker waits for a slot of the request budget before handing the wait to a
# scheduled retry instead, in seconds.
PTERODACTYL_WORKER_RATE_WAIT = env.float("PTERODACTYL_WORKER_RATE_WAIT", default=0.25)
# The panel allows 240 requests/min per admin; stay under it across all workers (the rest is
# headroom for other tools using the same admin's keys).
PTERODACTYL_RATE_LIMIT_PER_MINUTE = env.int("PTERODACTYL_RATE_LIMIT_PER_MINUTE", default=228)
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
# Tries of a step before the run is rolled back (the only retry layer: one panel request per
# try, the next one scheduled with backoff). Rate-limit waits do not spend a try.
PROVISIONING_RETRY_ATTEMPTS = env.int("PROVISIONING_RETRY_ATTEMPTS", default=8)
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
PROVISIONING_RETRY_MAX_BACKOFF = env.float("PROVISIONING_RETRY_MAX_BACKOFF", default=30.0)
# A running step holds its run for this long and renews it every third of it; a killed worker's
# step is free again this long after its last renewal (plus the sweeper's interval).
PROVISIONING_STEP_LEASE = env.int("PROVISIONING_STEP_LEASE", default=30)
# Node capacity readings younger than this come from the mirror (refreshed every minute by the
# "node capacity readings" beat job, one request for 100 nodes); older ones are read from the
# panel again before placement.
PROVISIONING_NODE_READING_MAX_AGE = env.int("PROVISIONING_NODE_READING_MAX_AGE", default=150)
# A paid order whose location is full waits; placement is tried again this often, in seconds.
PROVISIONING_CAPACITY_RETRY_INTERVAL = env.int("PROVISIONING_CAPACITY_RETRY_INTERVAL", default=60)
# A scheduled step not picked up this many seconds after it was due counts as lost.
PROVISIONING_SWEEP_GRACE = env.int("PROVISIONING_SWEEP_GRACE", default=120)
