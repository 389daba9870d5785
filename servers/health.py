"""Fleet health: the per-server health rows and the incidents (the servers app owns both).

The `health` job (provisioning.fleet.health) reads the panel and decides; these functions read
and write our side in sets: a constant number of statements per batch of
settings.FLEET_BATCH_SIZE rows, never one query per server. The only per-row work is the staff
alert of a new incident, and that is capped per run (a burst becomes one summary alert).

- fleet_members: every live deployment with its stored health (one query).
- health_state_next: the next stored state of one server from what this run observed (pure).
- server_health_upsert / server_health_touch / server_health_prune: write the rows (INSERT ..
  ON CONFLICT per batch for the changed ones, one UPDATE stamping all, one DELETE).
- health_incidents_open / health_incidents_plan / health_incidents_apply: make the open
  per-server incidents match what the run wants (open, refresh, close).
- health_incident_panel_open / _is_open / _close: the panel-wide incident.
- health_incidents_alert: alert staff once per incident.
- deployments_last_power_action / deployments_record_bulk: the customers' power actions and the
  audit rows of automatic restarts.
"""

import datetime as dt
import logging
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Min, OuterRef, Subquery
from django.urls import reverse

from common.actors import Actor
from notifications.services import notification_send
from servers.models import (
    PANEL_WIDE_INCIDENT_KINDS,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    HealthIncident,
    HealthIncidentKind,
    PowerAction,
    PowerState,
    ServerHealth,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Deployments that have a server on the panel which should be there.
LIVE_STATUSES = (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED)
# Incidents about one server (the panel-wide ones are handled on their own).
SERVER_INCIDENT_KINDS = tuple(
    kind for kind in HealthIncidentKind.values if kind not in PANEL_WIDE_INCIDENT_KINDS
)
# A run alerting more new incidents than this sends one summary instead (a mass event such as a
# panel database restore must not send hundreds of messages).
ALERT_BURST_LIMIT = 20
# How far a running server's start time, derived from its uptime, may move between checks before
# we take it as a restart we did not see (the panel caches stats for 20 s).
_RESTART_TOLERANCE = dt.timedelta(seconds=60)

IncidentKey = tuple[str, int]  # (kind, deployment id)


def _batches(items: Iterable[T], size: int | None = None) -> Iterator[list[T]]:
    iterator = iter(items)
    size = max(1, size or settings.FLEET_BATCH_SIZE)
    while batch := list(islice(iterator, size)):
        yield batch


def _utc(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


# ---------------------------------------------------------------------- health rows


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
    for batch in _batches(rows):
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


# ---------------------------------------------------------------------- incidents


@dataclass(frozen=True)
class IncidentPlan:
    to_open: dict[IncidentKey, str] = field(default_factory=dict)  # key -> detail
    to_refresh: list[int] = field(default_factory=list)  # incident ids
    to_close: list[int] = field(default_factory=list)


def health_incidents_open(
    *, kinds: Collection[str] = SERVER_INCIDENT_KINDS
) -> dict[IncidentKey, int]:
    """The open per-server incidents of these kinds: (kind, deployment id) -> incident id."""
    rows = (
        HealthIncident.objects.filter(
            kind__in=list(kinds), closed_at__isnull=True, deployment__isnull=False
        )
        .order_by()
        .values_list("kind", "deployment_id", "pk")
    )
    return {(kind, deployment_id): pk for kind, deployment_id, pk in rows}


def health_incidents_plan(
    *, wanted: Mapping[IncidentKey, str], open_incidents: Mapping[IncidentKey, int]
) -> IncidentPlan:
    """What to open (wanted, not open), refresh (both) and close (open, no longer wanted)."""
    return IncidentPlan(
        to_open={key: detail for key, detail in wanted.items() if key not in open_incidents},
        to_refresh=[pk for key, pk in open_incidents.items() if key in wanted],
        to_close=[pk for key, pk in open_incidents.items() if key not in wanted],
    )


def health_incidents_apply(*, plan: IncidentPlan, now: dt.datetime) -> tuple[int, int]:
    """Carry out the plan; returns (opened, closed). The partial unique constraint turns an
    open that raced another run into a no-op (ON CONFLICT DO NOTHING)."""
    with transaction.atomic():
        for batch in _batches(plan.to_open.items()):
            HealthIncident.objects.bulk_create(
                [
                    HealthIncident(
                        kind=kind,
                        deployment_id=deployment_id,
                        opened_at=now,
                        last_seen_at=now,
                        detail=detail[:2000],
                    )
                    for (kind, deployment_id), detail in batch
                ],
                ignore_conflicts=True,
            )
        for batch in _batches(plan.to_refresh):
            HealthIncident.objects.filter(pk__in=batch, closed_at__isnull=True).update(
                last_seen_at=now, checks=F("checks") + 1
            )
        closed = 0
        for batch in _batches(plan.to_close):
            closed += HealthIncident.objects.filter(pk__in=batch, closed_at__isnull=True).update(
                closed_at=now, last_seen_at=now
            )
        # ON CONFLICT DO NOTHING returns no ids: this run's inserts carry its timestamp.
        opened = (
            HealthIncident.objects.filter(opened_at=now, deployment__isnull=False).count()
            if plan.to_open
            else 0
        )
    return opened, closed


def health_incident_panel_open(
    *, kind: str, detail: str, now: dt.datetime
) -> tuple[HealthIncident, bool]:
    """Open the panel-wide incident `kind`, or refresh the open one; (incident, opened)."""
    if kind not in PANEL_WIDE_INCIDENT_KINDS:
        raise ValueError(f"{kind} is not a panel-wide incident")
    detail = detail[:2000]
    with transaction.atomic():
        HealthIncident.objects.bulk_create(
            [HealthIncident(kind=kind, opened_at=now, last_seen_at=now, detail=detail)],
            ignore_conflicts=True,
        )
        incident = HealthIncident.objects.select_for_update().get(
            kind=kind, deployment__isnull=True, closed_at__isnull=True
        )
        opened = incident.opened_at == now
        if not opened:
            HealthIncident.objects.filter(pk=incident.pk).update(
                last_seen_at=now, checks=F("checks") + 1, detail=detail
            )
    return incident, opened


def health_incident_panel_is_open(*, kind: str) -> bool:
    return HealthIncident.objects.filter(
        kind=kind, deployment__isnull=True, closed_at__isnull=True
    ).exists()


def health_incident_panel_close(*, kind: str, now: dt.datetime) -> int:
    return HealthIncident.objects.filter(
        kind=kind, deployment__isnull=True, closed_at__isnull=True
    ).update(closed_at=now, last_seen_at=now)


_TITLES = {
    HealthIncidentKind.PANEL_UNREACHABLE: "Panel unreachable: health checks paused",
    HealthIncidentKind.SERVER_MISSING: "Server missing on the panel: {name}",
    HealthIncidentKind.SERVER_OFFLINE: "Server offline: {name}",
    HealthIncidentKind.INSTALL_FAILED: "Server install failed: {name}",
    HealthIncidentKind.PANEL_OPERATIONS_FAILING: "Panel operations paused: the panel keeps failing",
}


def _admin_url(name: str, pk: int | None = None) -> str:
    path = reverse(name, args=[pk]) if pk is not None else reverse(name)
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def _alert_context(incident: HealthIncident) -> dict[str, str]:
    deployment = incident.deployment
    context = {
        "title": _TITLES[incident.kind].format(name=deployment.name if deployment else ""),
        "detail": incident.detail or incident.get_kind_display(),
        "opened_at": _utc(incident.opened_at),
    }
    if deployment is None:
        context["admin_url"] = _admin_url("admin:servers_healthincident_change", incident.pk)
        return context
    return context | {
        "admin_url": _admin_url("admin:servers_serverhealth_change", deployment.pk),
        "deployment_id": str(deployment.pk),
        "server_name": deployment.name,
        "customer_email": deployment.customer.email,
    }


def health_incidents_alert(*, now: dt.datetime, limit: int = ALERT_BURST_LIMIT) -> int:
    """Alert staff of every open incident not alerted yet; returns the messages queued.

    Once per incident: alerted_at is claimed by a conditional UPDATE in the transaction that
    queues the message, and the event_key ("health:<id>") makes a repeat a no-op. More than
    `limit` new incidents at once become one summary alert.
    """
    pending = list(
        HealthIncident.objects.filter(closed_at__isnull=True, alerted_at__isnull=True)
        .select_related("deployment__customer")
        .order_by("opened_at", "pk")[: limit + 1]
    )
    if len(pending) > limit:
        return _alert_burst(now=now)
    sent = 0
    for incident in pending:
        with transaction.atomic():
            claimed = HealthIncident.objects.filter(pk=incident.pk, alerted_at__isnull=True).update(
                alerted_at=now
            )
            if not claimed:
                continue  # another run alerted it meanwhile
            notification_send(
                event="fleet_alert_staff",
                staff=True,
                context=_alert_context(incident),
                event_key=f"health:{incident.pk}",
            )
            sent += 1
    return sent


def _alert_burst(*, now: dt.datetime) -> int:
    """One summary alert for every open incident not alerted yet (a constant number of
    statements however many there are)."""
    with transaction.atomic():
        pending = HealthIncident.objects.filter(closed_at__isnull=True, alerted_at__isnull=True)
        first = pending.aggregate(first=Min("pk"))["first"]
        if first is None:
            return 0
        kinds = dict(
            pending.order_by().values("kind").annotate(n=Count("pk")).values_list("kind", "n")
        )
        total = pending.update(alerted_at=now)
        listed = ", ".join(
            f"{count} {HealthIncidentKind(kind).label.lower()}"
            for kind, count in sorted(kinds.items())
        )
        notification_send(
            event="fleet_alert_staff",
            staff=True,
            context={
                "title": f"{total} new fleet health incidents",
                "detail": f"One health run found: {listed}. See the open incidents.",
                "admin_url": _admin_url("admin:servers_healthincident_changelist") + "?open=yes",
                "opened_at": _utc(now),
            },
            event_key=f"health:burst:{first}",
        )
    logger.warning("health: %s new incidents alerted as one summary (%s)", total, listed)
    return 1


# ---------------------------------------------------------------------- power actions, audit


def deployments_last_power_action(*, deployment_ids: Iterable[int]) -> dict[int, str]:
    """The latest customer power signal ("start", "stop", "restart", "kill") per deployment,
    from PowerAction rows; deployments without one are left out. One query per batch."""
    actions: dict[int, str] = {}
    latest = (
        PowerAction.objects.filter(deployment=OuterRef("pk"))
        .order_by("-created_at", "-pk")
        .values("signal")[:1]
    )
    for batch in _batches(deployment_ids):
        rows = (
            Deployment.objects.filter(pk__in=batch)
            .order_by()
            .annotate(last_power=Subquery(latest))
            .filter(last_power__isnull=False)
            .values_list("pk", "last_power")
        )
        actions.update(dict(rows))
    return actions


def deployments_record_bulk(*, deployment_ids: Sequence[int], actor: Actor, reason: str) -> int:
    """deployment_record for many deployments at once (a history row each, status unchanged):
    two statements per batch instead of two per deployment."""
    recorded = 0
    for batch in _batches(deployment_ids):
        statuses = Deployment.objects.filter(pk__in=batch).order_by().values_list("pk", "status")
        events = [
            DeploymentEvent(
                deployment_id=pk,
                actor=actor.user,
                actor_label=actor.label,
                from_status=status,
                to_status=status,
                reason=reason[:2000],
            )
            for pk, status in statuses
        ]
        DeploymentEvent.objects.bulk_create(events)
        recorded += len(events)
    return recorded
