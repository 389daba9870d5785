"""Fleet health: the per-server health rows and the incidents (the servers app owns both).

The `health` job (provisioning.fleet.health) reads the panel and decides; these functions read
and write our side in sets: a constant number of statements per batch of
settings.FLEET_BATCH_SIZE rows, never one query per server. The only per-row work is the staff
alert of a new incident, and that is capped per run (a burst becomes one summary alert).

rows.py:
- fleet_members: every live deployment with its stored health (one query).
- health_state_next: the next stored state of one server from what this run observed (pure).
- server_health_upsert / server_health_touch / server_health_prune: write the rows (INSERT ..
  ON CONFLICT per batch for the changed ones, one UPDATE stamping all, one DELETE).
incidents.py:
- health_incidents_open / health_incidents_plan / health_incidents_apply: make the open
  per-server incidents match what the run wants (open, refresh, close).
- health_incident_panel_open / _is_open / _close: the panel-wide incident.
alerts.py:
- health_incidents_alert: alert staff once per incident.
power.py:
- deployments_last_power_action / deployments_record_bulk: the customers' power actions and the
  audit rows of automatic restarts.
"""

from servers.health.alerts import ALERT_BURST_LIMIT, health_incidents_alert
from servers.health.incidents import (
    SERVER_INCIDENT_KINDS,
    IncidentKey,
    IncidentPlan,
    health_incident_panel_close,
    health_incident_panel_is_open,
    health_incident_panel_open,
    health_incidents_apply,
    health_incidents_open,
    health_incidents_plan,
)
from servers.health.power import deployments_last_power_action, deployments_record_bulk
from servers.health.rows import (
    LIVE_STATUSES,
    FleetMember,
    HealthState,
    PanelObservation,
    fleet_members,
    health_state_next,
    server_health_prune,
    server_health_touch,
    server_health_upsert,
)

__all__ = [
    "ALERT_BURST_LIMIT",
    "LIVE_STATUSES",
    "SERVER_INCIDENT_KINDS",
    "FleetMember",
    "HealthState",
    "IncidentKey",
    "IncidentPlan",
    "PanelObservation",
    "deployments_last_power_action",
    "deployments_record_bulk",
    "fleet_members",
    "health_incident_panel_close",
    "health_incident_panel_is_open",
    "health_incident_panel_open",
    "health_incidents_alert",
    "health_incidents_apply",
    "health_incidents_open",
    "health_incidents_plan",
    "health_state_next",
    "server_health_prune",
    "server_health_touch",
    "server_health_upsert",
]
