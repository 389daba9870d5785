"""The per-server health rows (ServerHealth): who is in the fleet, the next stored state of
one server from what a run observed (pure), and the batched writes."""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, replace

from django.conf import settings

from servers.health.batches import batches
from servers.models import Deployment, DeploymentStatus, PowerState, ServerHealth

# Deployments that have a server on the panel which should be there.
LIVE_STATUSES = (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED)
# How far a running server's start time, derived from its uptime, may move between checks before
# we take it as a restart we did not see (the panel caches stats for 20 s).
_RESTART_TOLERANCE = dt.timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class HealthState:
    """The stored columns of one ServerHealth row (without its keys)."""

    reachable: bool
    installed: bool | None
    suspended_on_panel: bool
    panel_status: str
    power_state: str
    power_state_since: dt.datetime | None
    last_checked_at: dt.datetime | None
    resources_checked_at: dt.datetime | None
    last_error: str


_STATE_FIELDS = tuple(HealthState.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class FleetMember:
    deployment_id: int
    status: str
    panel_server_id: int
    health: HealthState | None  # None before the first health run saw it
    stored_panel_server_id: int | None = None  # the health row's copy

    def needs_write(self, state: HealthState) -> bool:
        """Whether `state` differs from the stored row in more than last_checked_at (which
        server_health_touch sets for every row in one statement)."""
        if self.health is None or self.stored_panel_server_id != self.panel_server_id:
            return True
        return replace(state, last_checked_at=self.health.last_checked_at) != self.health


def fleet_members() -> list[FleetMember]:
    """Every live deployment (active or suspended, so with a panel server) and its stored health:
    one LEFT JOIN read, no ordering (the job compares in memory by panel server id)."""
    columns = (
        "pk",
        "status",
        "panel_server_id",
        "health__deployment",
        "health__panel_server_id",
        *_health_columns(),
    )
    rows = (
        Deployment.objects.filter(status__in=LIVE_STATUSES, panel_server_id__isnull=False)
        .order_by()
        .values_list(*columns)
        .iterator(chunk_size=settings.FLEET_BATCH_SIZE)
    )
    members = []
    for pk, status, panel_server_id, health_pk, stored_server_id, *state in rows:
        health = HealthState(*state) if health_pk is not None else None
        members.append(FleetMember(pk, status, panel_server_id, health, stored_server_id))
    return members


def _health_columns() -> list[str]:
    return [f"health__{name}" for name in _STATE_FIELDS]


@dataclass(frozen=True, slots=True)
class PanelObservation:
    """What one health run saw of one server.

    `reachable` False: the server is not in the panel's list (the other panel fields are then
    not known and the stored ones are kept). `power_state` None: its resources were not read
    this run (outside the budget, or the read failed): the stored power state is kept.
    `resources_checked` True with power_state None: the read failed for good (`error`).
    """

    reachable: bool
    installed: bool | None = None
    suspended: bool = False
    panel_status: str = ""
    power_state: str | None = None
    uptime_ms: int = 0
    resources_checked: bool = False
    error: str | None = None  # None: keep the stored error; "" clears it


# Panel statuses under which the panel refuses or stops the server (no power state to show).
_NOT_RUNNABLE_STATUSES = frozenset({"installing", "install_failed", "suspended"})
_POWER_STATES = frozenset(PowerState.values)


def health_state_next(
    *, previous: HealthState | None, observation: PanelObservation, now: dt.datetime
) -> HealthState:
    """The state to store after this run: observed facts replace stored ones, the rest is kept,
    and `power_state_since` moves only when the power state changes (or a restart shows)."""
    obs = observation
    if obs.reachable:
        installed, suspended, panel_status = obs.installed, obs.suspended, obs.panel_status
    elif previous is not None:
        # Gone from the list: keep the last known panel facts for the staff looking at it.
        installed = previous.installed
        suspended, panel_status = previous.suspended_on_panel, previous.panel_status
    else:
        installed, suspended, panel_status = None, False, ""

    previous_power = previous.power_state if previous is not None else PowerState.UNKNOWN
    previous_since = previous.power_state_since if previous is not None else None
    if obs.power_state is not None:
        power = obs.power_state
    elif not obs.reachable or suspended or panel_status in _NOT_RUNNABLE_STATUSES:
        power = PowerState.UNKNOWN  # no such server, or the panel keeps it from running
    else:
        power = previous_power
    if power not in _POWER_STATES:
        power = PowerState.UNKNOWN  # a state this code does not know: shown as unknown

    since = previous_since
    started = None
    if obs.power_state == PowerState.RUNNING and obs.uptime_ms > 0:
        started = now - dt.timedelta(milliseconds=obs.uptime_ms)
    if power == PowerState.UNKNOWN:
        since = None
    elif power != previous_power or since is None:
        since = started or now
    elif started is not None and started > since + _RESTART_TOLERANCE:
        since = started  # restarted between two checks: running again since then

    checked_resources = obs.power_state is not None or obs.resources_checked
    return HealthState(
        reachable=obs.reachable,
        installed=installed,
        suspended_on_panel=suspended,
        panel_status=panel_status,
        power_state=power,
        power_state_since=since,
        last_checked_at=now,
        resources_checked_at=(
            now if checked_resources else (previous.resources_checked_at if previous else None)
        ),
        last_error=(
            obs.error[:2000]
            if obs.error is not None
            else (previous.last_error if previous is not None else "")
        ),
    )


def server_health_upsert(*, rows: Iterable[tuple[FleetMember, HealthState]]) -> int:
    """Store the states: one INSERT .. ON CONFLICT DO UPDATE per batch."""
    written = 0
    for batch in batches(rows):
        objects = [
            ServerHealth(
                deployment_id=member.deployment_id,
                panel_server_id=member.panel_server_id,
                **{name: getattr(state, name) for name in _STATE_FIELDS},
            )
            for member, state in batch
        ]
        ServerHealth.objects.bulk_create(
            objects,
            update_conflicts=True,
            unique_fields=["deployment"],
            update_fields=["panel_server_id", *_STATE_FIELDS],
        )
        written += len(objects)
    return written


def server_health_touch(*, checked_at: dt.datetime) -> int:
    """Stamp every live server's row as checked now: one UPDATE for the whole fleet, so a run
    rewrites only the rows whose state changed (server_health_upsert)."""
    return (
        ServerHealth.objects.filter(deployment__status__in=LIVE_STATUSES)
        .exclude(last_checked_at=checked_at)
        .update(last_checked_at=checked_at)
    )


def server_health_prune() -> int:
    """Drop the rows of deployments that are no longer live (terminated): one DELETE."""
    stale = ServerHealth.objects.exclude(deployment__status__in=LIVE_STATUSES)
    deleted, _ = stale.delete()
    return deleted
