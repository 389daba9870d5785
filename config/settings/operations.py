"""Operations endpoints: /metrics (Prometheus), /healthz and /readyz (common/metrics.py,
common/health.py). LOG_FORMAT and the request id are with LOGGING in config/django/base.py.

/metrics is answered to callers from METRICS_ALLOWED_NETWORKS, or to any caller with
`Authorization: Bearer <METRICS_TOKEN>`. With no token the default is localhost only; once a
token is set the default is "token only". Behind a reverse proxy on the same host every request
comes from 127.0.0.1: set a token (or list only the scraper's network) and do not let the proxy
publish /metrics.
"""

from config.env import env

METRICS_TOKEN = env("METRICS_TOKEN", default="")
# Empty counts as unset (a copied .env.example must not close /metrics to localhost).
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[]) or (
    [] if METRICS_TOKEN else ["127.0.0.1/32", "::1/128"]
)
# prometheus-client's multiprocess mode: web (each gunicorn worker), Celery workers and beat on
# one host write their counters into this folder and /metrics adds them up. The variable must be
# in the environment of every process before it starts (the client reads it at import); empty
# the folder when the services (re)start. Unset: each process counts for itself only, so panel
# requests made by workers are not seen by the web's /metrics.
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default="")
# The collectors that read business metrics from the database (and the broker) at scrape time;
# each app owns its own (the app graph forbids common from importing them).
METRICS_COLLECTORS = [
    "provisioning.metrics.ProvisioningMetricsCollector",
    "notifications.metrics.DeliveryMetricsCollector",
    "common.metrics.JobRunMetricsCollector",
    "common.metrics.BrokerQueueCollector",
]
# Seconds a scrape or probe waits for the broker (Redis) before reporting it down.
OPERATIONS_BROKER_TIMEOUT = env.float("OPERATIONS_BROKER_TIMEOUT", default=0.5)

# /readyz: name -> check; each returns a short status (never a secret or a traceback).
READINESS_CHECKS = {
    "database": "common.health.check_database",
    "broker": "common.health.check_broker",
    "panel": "provisioning.health.check_panel",
}
# The panel probe's timeout and how long its answer is reused, so a probe storm spends at most
# one request of the panel's 240/min budget per process per this many seconds.
READINESS_PANEL_TIMEOUT = env.float("READINESS_PANEL_TIMEOUT", default=2.0)
READINESS_PANEL_CACHE_SECONDS = env.float("READINESS_PANEL_CACHE_SECONDS", default=10.0)
