"""Fleet jobs: the scheduled work over every server (renewals, dunning, health, reconcile).

Each job has one entry point (`python manage.py run_job NAME`, and the `common.run_job` task
that beat sends); overlapping runs do the work once (an advisory lock plus constraints).
"""

from config.env import env

# name -> dotted path of the job function `(*, dry_run: bool) -> dict[str, int | str]`.
FLEET_JOBS = {
    "renewals": "billing.jobs.renewals_job",
    "dunning": "billing.jobs.dunning_job",
    "cancellations": "billing.jobs.cancellations_job",
    "autocharge": "billing.jobs.autocharge_job",
    "plan_changes": "billing.jobs.plan_changes_job",
    "health": "provisioning.fleet.health.health_job",
    "reconcile": "provisioning.fleet.reconcile.reconcile_job",
    # Terminated servers kept on the panel (restore window, final backup) deleted when due.
    "terminated_servers_purge": "provisioning.termination.terminated_servers_purge_job",
}
# Seconds between scheduled runs of each job (beat).
FLEET_JOB_INTERVALS = {
    "renewals": env.int("FLEET_RENEWALS_INTERVAL", default=3600),
    "dunning": env.int("FLEET_DUNNING_INTERVAL", default=3600),
    "cancellations": env.int("FLEET_CANCELLATIONS_INTERVAL", default=3600),
    "autocharge": env.int("FLEET_AUTOCHARGE_INTERVAL", default=3600),
    "plan_changes": env.int("FLEET_PLAN_CHANGES_INTERVAL", default=3600),
    "health": env.int("FLEET_HEALTH_INTERVAL", default=300),
    "reconcile": env.int("FLEET_RECONCILE_INTERVAL", default=3600),
    "terminated_servers_purge": env.int("FLEET_TERMINATED_PURGE_INTERVAL", default=900),
}
# Servers handled per batch by the set-based jobs (a constant number of statements a batch).
FLEET_BATCH_SIZE = env.int("FLEET_BATCH_SIZE", default=1000)
# Without PostgreSQL's advisory locks (the SQLite demo) a job holds a lease row this long; a
# job killed halfway blocks the next run for at most this many seconds.
FLEET_JOB_LEASE_SECONDS = env.int("FLEET_JOB_LEASE_SECONDS", default=1800)

# Our application-API budget (PTERODACTYL_RATE_LIMIT_PER_MINUTE, 228 of the panel's 240) is
# shared; the fleet work takes two capped shares of it, each its own Redis-shared limiter, so
# provisioning always keeps the rest (at the defaults at least 88/min, ~17 new servers a minute):
# - the drain of panel operations (suspend, unsuspend, terminate, restart, repairs), which also
#   takes half of its share while provisioning runs are in flight;
PANEL_OPERATIONS_RATE_LIMIT_PER_MINUTE = env.int(
    "PANEL_OPERATIONS_RATE_LIMIT_PER_MINUTE", default=100
)
# - the health and reconcile jobs' list reads (100 servers a call: at 100k servers a full read
#   is 1,000 calls, 25 minutes at the default; overlapping scheduled runs are skipped).
FLEET_READ_RATE_LIMIT_PER_MINUTE = env.int("FLEET_READ_RATE_LIMIT_PER_MINUTE", default=40)
# Attempts of one operation on retryable panel errors before staff are alerted.
PANEL_OPERATIONS_MAX_ATTEMPTS = env.int("PANEL_OPERATIONS_MAX_ATTEMPTS", default=8)
# Base of the exponential backoff (with jitter) between attempts, seconds.
PANEL_OPERATIONS_RETRY_BACKOFF = env.float("PANEL_OPERATIONS_RETRY_BACKOFF", default=30.0)
# One drain task works at most this long, then hands over to a new task (no long holders).
PANEL_OPERATIONS_DRAIN_SECONDS = env.int("PANEL_OPERATIONS_DRAIN_SECONDS", default=60)

# Health job: servers whose live power state is read per run through the client API (the
# application API has none), the stalest first; the others keep their last known state. These
# reads share the client-API budget (PTERODACTYL_CLIENT_RATE_LIMIT_PER_MINUTE) with the
# customers' power buttons: keep this well below it per FLEET_HEALTH_INTERVAL.
HEALTH_RESOURCE_CHECKS_PER_RUN = env.int("HEALTH_RESOURCE_CHECKS_PER_RUN", default=600)
# Restart a server that should run (active, the customer's last power action not stop/kill)
# when the panel reports it offline: the health job requests a RESTART panel operation.
AUTO_RESTART_CRASHED_SERVERS = env.bool("AUTO_RESTART_CRASHED_SERVERS", default=False)
# At most one automatic restart per server in this many minutes (no restart loop for a server
# that crashes on start).
AUTO_RESTART_MIN_INTERVAL_MINUTES = env.int("AUTO_RESTART_MIN_INTERVAL_MINUTES", default=30)

# Days before the suspension date that a customer with an overdue invoice is warned.
SUSPENSION_WARNING_DAYS = env.int("SUSPENSION_WARNING_DAYS", default=1)

# Repairs the reconcile job requests by itself for the drift it finds (the admin's "Repair"
# action works for every kind regardless): "suspension" (make the panel's suspension match
# ours), "build" (push the plan + add-on limits), "adopt_orphans" (link a panel server carrying
# a live deployment's external id to it, database only), "delete_orphans" (delete panel servers
# and users with our external-id prefix that nothing of ours owns). Orphans are off by default:
# deleting is for an operator who has looked at the list first.
RECONCILE_REPAIRS = env.list("RECONCILE_REPAIRS", default=["suspension", "build"])
