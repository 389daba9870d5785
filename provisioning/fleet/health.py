"""The `health` job: the whole fleet read from the panel, per-server health rows, incidents, and
(optionally) a restart of servers that crashed.

One run:
1. Reads every panel server with list calls (per_page=100: ceil(N/100) application-API calls)
   into a dict by id. If any page fails, nothing of ours changes: one panel_unreachable
   incident is opened (or refreshed) and alerted once; the next good read closes it.
2. Compares the live deployments (active/suspended) with that dict in memory: missing servers,
   failed installs, suspension and install state.
3. Reads live power state through the client API for at most HEALTH_RESOURCE_CHECKS_PER_RUN
   servers, the stalest first (the application API has no power state; the client API has its
   own budget, shared with the customers' power buttons). A retryable error on one server
   records nothing for it; a throttle or a refused key ends the sampling for this run.
4. Writes the health rows in batches, makes the open incidents match what was seen (open,
   refresh, close; set-based), alerts staff once per new incident.
5. With AUTO_RESTART_CRASHED_SERVERS: for active servers seen offline now that should run (the
   customer's last power action is not stop/kill), requests a RESTART panel operation, at most
   one per server per AUTO_RESTART_MIN_INTERVAL_MINUTES. The drain executes it; the operation
   row and a history row on the deployment are the audit.

`dry_run`: the same reads and the same decisions, reported as counts; nothing is written.
"""

import datetime as dt
import heapq
import logging
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from common.actors import Actor
from common.logging import redact
from provisioning.fleet.budget import (
    CONFIRM_ABSENT_LIMIT,
    fleet_panel_client,
    servers_confirm_absent,
)
from provisioning.fleet.operations import OperationRequest, panel_operations_request
from provisioning.models import PanelOperation, PanelOperationKind
from provisioning.pterodactyl import (
    PanelAuthError,
    PanelBadResponse,
    PanelError,
    PanelPermissionError,
    PanelRateLimited,
    PterodactylClientAPI,
)
from servers.health import (
    FleetMember,
    HealthState,
    IncidentKey,
    PanelObservation,
    deployments_last_power_action,
    deployments_record_bulk,
    fleet_members,
    health_incident_panel_close,
    health_incident_panel_is_open,
    health_incident_panel_open,
    health_incidents_alert,
    health_incidents_apply,
    health_incidents_open,
    health_incidents_plan,
    health_state_next,
    server_health_prune,
    server_health_touch,
    server_health_upsert,
)
from servers.models import DeploymentStatus, HealthIncidentKind, PowerState

logger = logging.getLogger(__name__)

PER_PAGE = 100
ACTOR = Actor.system("health")
K = HealthIncidentKind
_FAILED_INSTALL = frozenset({"install_failed", "reinstall_failed"})
# Signals after which the customer wants the server off.
_STOP_SIGNALS = frozenset({"stop", "kill"})
# Client-API errors that are about the key or the panel, not the one server: stop sampling.
_CLIENT_FATAL = (PanelAuthError, PanelPermissionError, PanelBadResponse)
_MISSING_ERROR = "Not in the panel's server list."


@dataclass(frozen=True, slots=True)
class _PanelServer:
    """What the job keeps of one panel server (not the whole object: 100k of them fit)."""

    identifier: str
    status: str  # "" when the panel's status is null (installed, normal)
    suspended: bool
    installed: bool


@dataclass
class _Run:
    now: dt.datetime
    dry_run: bool
    counts: dict[str, int | str] = field(default_factory=dict)

    def add(self, key: str, value: int = 1) -> None:
        self.counts[key] = int(self.counts.get(key, 0)) + value


def health_job(*, dry_run: bool) -> dict[str, int | str]:
    """One health run over the whole fleet (see the module docstring); returns its counts."""
    run = _Run(now=timezone.now(), dry_run=dry_run)
    run.counts.update(
        panel="ok",
        servers_on_panel=0,
        deployments=0,
        checked=0,
        check_errors=0,
        offline=0,
        missing=0,
        install_failed=0,
        incidents_opened=0,
        incidents_closed=0,
        alerts_sent=0,
        restarts_requested=0,
        application_api_calls=0,
        client_api_calls=0,
    )
    panel = _read_panel(run)
    if panel is None:
        return run.counts
    run.counts["servers_on_panel"] = len(panel)
    # The read worked: a panel outage incident is over.
    if dry_run:
        closing = int(health_incident_panel_is_open(kind=K.PANEL_UNREACHABLE))
    else:
        closing = health_incident_panel_close(kind=K.PANEL_UNREACHABLE, now=run.now)
    run.add("incidents_closed", closing)

    members = fleet_members()
    run.counts["deployments"] = len(members)
    if not _confirm_absent(run, panel, members):
        return run.counts
    open_incidents = health_incidents_open()
    crashed = {pk for kind, pk in open_incidents if kind == K.SERVER_OFFLINE}
    fresh = _read_resources(run, members, panel, crashed=crashed)

    states: dict[int, HealthState] = {}
    rows = []
    for member in members:
        observation = _observe(member, panel.get(member.panel_server_id), fresh)
        state = health_state_next(previous=member.health, observation=observation, now=run.now)
        states[member.deployment_id] = state
        rows.append((member, state))
    wanted = _wanted_incidents(run, members, states)
    plan = health_incidents_plan(wanted=wanted, open_incidents=open_incidents)
    restarts = _restart_candidates(run, members, fresh, wanted)

    if dry_run:
        run.counts["incidents_opened"] = len(plan.to_open)
        run.add("incidents_closed", len(plan.to_close))
        run.counts["restarts_requested"] = len(restarts)
        return run.counts

    # Only the rows that changed are rewritten (a steady fleet: the servers read this run).
    server_health_upsert(rows=[(m, state) for m, state in rows if m.needs_write(state)])
    server_health_touch(checked_at=run.now)
    server_health_prune()
    opened, closed = health_incidents_apply(plan=plan, now=run.now)
    run.counts["incidents_opened"] = opened
    run.add("incidents_closed", closed)
    run.counts["restarts_requested"] = _request_restarts(run, restarts, states)
    run.counts["alerts_sent"] = health_incidents_alert(now=run.now)
    return run.counts


# ---------------------------------------------------------------------- 1. the panel's list


def _read_panel(run: _Run) -> dict[int, _PanelServer] | None:
    """Every panel server by id, or None when the read failed (then the outage is recorded)."""
    servers: dict[int, _PanelServer] = {}
    client = fleet_panel_client()
    try:
        for server in client.iter_servers(per_page=PER_PAGE):
            servers[server.id] = _PanelServer(
                identifier=server.identifier,
                status=server.status or "",
                suspended=server.suspended,
                installed=server.container.installed,
            )
    except PanelError as exc:
        # The pages read so far plus the one that failed (the client's own retries of a page
        # are not counted).
        run.counts["application_api_calls"] = len(servers) // PER_PAGE + 1
        _panel_unreachable(run, redact(str(exc)))
        return None
    # The client walks pages until the last one: ceil(N/100), and one call for an empty panel.
    run.counts["application_api_calls"] = max(1, math.ceil(len(servers) / PER_PAGE))
    return servers


def _confirm_absent(run: _Run, panel: dict[int, _PanelServer], members: list[FleetMember]) -> bool:
    """Look up, one by one, the servers the list did not show (a page may shift during a long
    read); False when the panel failed meanwhile (then nothing is judged this run)."""
    absent = [
        m.panel_server_id
        for m in members
        if m.panel_server_id is not None and m.panel_server_id not in panel
    ]
    if not absent:
        return True
    try:
        found = servers_confirm_absent(client=fleet_panel_client(), absent_ids=absent)
    except PanelError as exc:
        _panel_unreachable(run, redact(str(exc)))
        return False
    run.add("application_api_calls", min(len(absent), CONFIRM_ABSENT_LIMIT))
    for server_id, server in found.items():
        panel[server_id] = _PanelServer(
            identifier=server.identifier,
            status=server.status or "",
            suspended=server.suspended,
            installed=server.container.installed,
        )
    return True


def _panel_unreachable(run: _Run, error: str) -> None:
    logger.warning("health: the panel's server list could not be read: %s", error)
    run.counts.update(panel="unreachable", error=error[:500])
    if run.dry_run:
        return
    detail = f"The panel's server list could not be read; no server's health was changed. {error}"
    _incident, opened = health_incident_panel_open(
        kind=K.PANEL_UNREACHABLE, detail=detail, now=run.now
    )
    run.counts["incidents_opened"] = int(opened)
    run.counts["alerts_sent"] = health_incidents_alert(now=run.now)


# ---------------------------------------------------------------------- 2. live power state


@dataclass(frozen=True, slots=True)
class _Resources:
    power_state: str | None  # None: the read failed for good (error kept)
    uptime_ms: int = 0
    error: str = ""


def _checkable(member: FleetMember, server: _PanelServer | None) -> bool:
    # Suspended or installing servers answer 409 (and do not run): not worth a call.
    return (
        member.status == DeploymentStatus.ACTIVE
        and server is not None
        and server.status == ""
        and not server.suspended
    )


def _read_resources(
    run: _Run,
    members: list[FleetMember],
    panel: Mapping[int, _PanelServer],
    *,
    crashed: Collection[int],
) -> dict[int, _Resources]:
    """Live state of up to HEALTH_RESOURCE_CHECKS_PER_RUN servers; deployment id -> what was
    read. Servers with an open "offline" incident get up to half the budget (so the incident
    closes, or a restart is decided, within a run or two); the rest goes to the least recently
    read (never read = first of all), so every server comes round in turn."""
    budget = settings.HEALTH_RESOURCE_CHECKS_PER_RUN
    if not settings.PTERODACTYL_CLIENT_API_KEY or budget <= 0:
        return {}
    never = dt.datetime.min.replace(tzinfo=dt.UTC)

    def staleness(member: FleetMember) -> dt.datetime:
        return (member.health.resources_checked_at if member.health else None) or never

    checkable = [m for m in members if _checkable(m, panel.get(m.panel_server_id))]
    first = heapq.nsmallest(
        budget // 2, (m for m in checkable if m.deployment_id in crashed), key=staleness
    )
    chosen = {m.deployment_id for m in first}
    due = first + heapq.nsmallest(
        budget - len(first),
        (m for m in checkable if m.deployment_id not in chosen),
        key=staleness,
    )
    if not due:
        return {}
    # No retries inside the client: a server that fails is simply read in a later run.
    client = PterodactylClientAPI.from_settings(max_retries=0)
    results: dict[int, _Resources] = {}
    for member in due:
        server = panel[member.panel_server_id]
        run.add("client_api_calls")
        try:
            stats = client.get_server_resources(server.identifier)
        except PanelRateLimited:
            # The budget is shared with the customers' power buttons: leave them the rest.
            logger.warning("health: client API throttled; %s servers read this run", len(results))
            run.add("check_errors")
            break
        except _CLIENT_FATAL as exc:
            logger.error("health: client API refused (%s); power states not read", redact(str(exc)))
            run.add("check_errors")
            break
        except PanelError as exc:
            run.add("check_errors")
            if exc.retryable:
                continue  # Wings down, a 5xx, a transient conflict: record nothing
            results[member.deployment_id] = _Resources(None, error=redact(str(exc)))
            continue
        run.add("checked")
        results[member.deployment_id] = _Resources(stats.current_state, stats.uptime_ms)
    return results


def _observe(
    member: FleetMember, server: _PanelServer | None, fresh: Mapping[int, _Resources]
) -> PanelObservation:
    if server is None:
        return PanelObservation(reachable=False, error=_MISSING_ERROR)
    resources = fresh.get(member.deployment_id)
    if resources is not None:
        error: str | None = resources.error
    elif member.health is None or member.health.last_error == _MISSING_ERROR:
        error = ""  # back on the panel (or new): no error to show until a read fails
    else:
        error = None  # keep the last read's error
    return PanelObservation(
        reachable=True,
        installed=server.installed,
        suspended=server.suspended,
        panel_status=server.status,
        power_state=resources.power_state if resources else None,
        uptime_ms=resources.uptime_ms if resources else 0,
        resources_checked=resources is not None,
        error=error,
    )


# ---------------------------------------------------------------------- 3. incidents


def _utc(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "?"


def _should_run(actions: Mapping[int, str], deployment_id: int) -> bool:
    """Whether our records say the server should run: the customer's last power action, or,
    without one, whether new servers are started after their install."""
    last = actions.get(deployment_id)
    if last is None:
        return bool(settings.AUTO_START_SERVERS)
    return last not in _STOP_SIGNALS


def _wanted_incidents(
    run: _Run, members: list[FleetMember], states: Mapping[int, HealthState]
) -> dict[IncidentKey, str]:
    """The per-server incidents this run's picture calls for: (kind, deployment id) -> detail."""
    wanted: dict[IncidentKey, str] = {}
    offline = []
    for member in members:
        state = states[member.deployment_id]
        pk, server_id = member.deployment_id, member.panel_server_id
        if not state.reachable:
            run.add("missing")
            wanted[(K.SERVER_MISSING, pk)] = (
                f"Panel server #{server_id} of deployment #{pk} ({member.status}) is not in the "
                "panel's server list."
            )
            continue
        if state.panel_status in _FAILED_INSTALL:
            run.add("install_failed")
            wanted[(K.INSTALL_FAILED, pk)] = (
                f"The panel reports panel server #{server_id} as {state.panel_status}."
            )
        if state.power_state == PowerState.OFFLINE:
            run.add("offline")
            if member.status == DeploymentStatus.ACTIVE and not state.suspended_on_panel:
                offline.append(pk)
    actions = deployments_last_power_action(deployment_ids=offline)
    for pk in offline:
        if _should_run(actions, pk):
            wanted[(K.SERVER_OFFLINE, pk)] = (
                f"The panel reports the server offline since {_utc(states[pk].power_state_since)}"
                "; it should be running."
            )
    return wanted


# ---------------------------------------------------------------------- 4. automatic restarts


def _restart_candidates(
    run: _Run,
    members: list[FleetMember],
    fresh: Mapping[int, _Resources],
    wanted: Mapping[IncidentKey, str],
) -> list[int]:
    """Active servers read offline in this very run that should run, without a restart
    requested in the last AUTO_RESTART_MIN_INTERVAL_MINUTES (one query)."""
    if not settings.AUTO_RESTART_CRASHED_SERVERS:
        return []
    # Only what this run read: a stored "offline" may be stale (e.g. restarted since).
    candidates = [
        pk
        for pk, resources in fresh.items()
        if resources.power_state == PowerState.OFFLINE and (K.SERVER_OFFLINE, pk) in wanted
    ]
    if not candidates:
        return []
    window = run.now - dt.timedelta(minutes=settings.AUTO_RESTART_MIN_INTERVAL_MINUTES)
    recent = set(
        PanelOperation.objects.filter(
            kind=PanelOperationKind.RESTART, deployment_id__in=candidates, created_at__gt=window
        )
        .order_by()
        .values_list("deployment_id", flat=True)
    )
    return [pk for pk in candidates if pk not in recent]


def _request_restarts(
    run: _Run, deployment_ids: list[int], states: Mapping[int, HealthState]
) -> int:
    if not deployment_ids:
        return 0
    requests = [
        OperationRequest(
            kind=PanelOperationKind.RESTART,
            reason=f"Health: offline since {_utc(states[pk].power_state_since)}, should be running",
            deployment_id=pk,
        )
        for pk in deployment_ids
    ]
    created = panel_operations_request(requests=requests, actor=ACTOR)
    if not created:
        return 0
    # Those that already had an open operation were not added (one open per server).
    requested = list(
        PanelOperation.objects.filter(
            kind=PanelOperationKind.RESTART,
            deployment_id__in=deployment_ids,
            created_at__gte=run.now,
            requested_by=ACTOR.label,
        )
        .order_by()
        .values_list("deployment_id", flat=True)
    )
    deployments_record_bulk(
        deployment_ids=requested,
        actor=ACTOR,
        reason=(
            "Health: automatic restart requested (the panel reports the server offline; it "
            "should be running)"
        ),
    )
    logger.info("health: restart requested for %s crashed servers", len(requested))
    return len(requested)
