"""The `reconcile` job: billing <-> panel drift, detected in sets and repaired as rows.

1. Read the whole fleet from the panel with list calls (servers with their allocations, and
   the users carrying our external-id prefix), per_page=100: ceil(N/100) calls, reduced while
   reading to a few ints per server. A failed read raises before anything is compared, so a
   panel outage flips no state; staff get one message per outage, not one per run or server.
2. Compare with our rows in memory by id, FLEET_BATCH_SIZE deployments (and claims, and orphan
   candidates) per query (`drift_findings`, a selector: it writes nothing).
3. Unless dry run: record the findings (set-based), close the items the read no longer sees,
   and request the repairs the operator enabled (RECONCILE_REPAIRS) as panel operations for
   the drain (`provisioning.fleet.repairs.repair_execute` runs them).

Deployments with lifecycle work in flight (an open suspend/unsuspend/terminate) or changed
while the panel was being read are skipped this run: their state is moving, the next run
judges them.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from common.actors import Actor
from common.logging import redact
from common.models import JobRun, JobRunStatus
from notifications.services import notification_send
from provisioning.fleet.budget import fleet_panel_client, servers_confirm_absent
from provisioning.fleet.drift import (
    LIVE_STATUSES,
    REPAIR_NAMES,
    SERVER_EXTERNAL_PREFIX,
    USER_EXTERNAL_PREFIX,
    DriftFinding,
    drift_admin_url,
    drift_items_for_automatic_repair,
    drift_repairs_request,
    drifts_record,
    drifts_resolve_gone,
)
from provisioning.models import (
    ACTIVE_RUN_STATUSES,
    OPEN_OPERATION_STATUSES,
    AllocationClaim,
    DriftItem,
    DriftKind,
    PanelAccount,
    PanelOperation,
    PanelOperationKind,
    ProvisioningRun,
)
from provisioning.pterodactyl import PanelError, PterodactylClient, Server
from servers.models import Deployment, DeploymentStatus

logger = logging.getLogger(__name__)

K = DriftKind
PER_PAGE = 100
ACTOR = Actor.system("reconcile")
# Operations that are changing a server's state right now: its suspension is not drift yet.
IN_FLIGHT_KINDS = (
    PanelOperationKind.SUSPEND,
    PanelOperationKind.UNSUSPEND,
    PanelOperationKind.TERMINATE,
)
# The limits compared (plan + add-ons in Deployment.spec against the panel's build).
LIMIT_FIELDS = ("memory", "swap", "disk", "io", "cpu", "threads")
FEATURE_FIELDS = ("databases", "allocations", "backups")
PANEL_FIELDS = LIMIT_FIELDS + FEATURE_FIELDS
# Lines of the dry-run listing returned to `run_job` (the admin lists everything).
LISTING_LIMIT = 200


# --- the panel read ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PanelServerView:
    """What the comparison needs of one panel server (a few ints, not the whole payload)."""

    id: int
    external_id: str | None
    status: str | None
    user_id: int
    uuid: str
    identifier: str
    # memory, swap, disk, io, cpu, threads, databases, allocations, backups (PANEL_FIELDS).
    limits: tuple[Any, ...]
    primary_ip: str | None
    primary_port: int | None

    @classmethod
    def from_server(cls, server: Server) -> PanelServerView:
        primary = next((a for a in server.allocations or () if a.id == server.allocation_id), None)
        limits, features = server.limits, server.feature_limits
        return cls(
            id=server.id,
            external_id=server.external_id,
            status=server.status,
            user_id=server.user_id,
            uuid=server.uuid,
            identifier=server.identifier,
            limits=(
                limits.memory,
                limits.swap,
                limits.disk,
                limits.io,
                limits.cpu,
                limits.threads,
                features.databases,
                features.allocations,
                features.backups,
            ),
            primary_ip=primary.ip if primary else None,
            primary_port=primary.port if primary else None,
        )

    def limits_dict(self) -> dict[str, Any]:
        return dict(zip(PANEL_FIELDS, self.limits, strict=True))


@dataclass(frozen=True, slots=True)
class PanelUserView:
    id: int
    external_id: str
    username: str
    root_admin: bool


@dataclass
class PanelFleet:
    servers: dict[int, PanelServerView] = field(default_factory=dict)
    # Deployment pk (from "deployment-<pk>") -> panel server id.
    by_external: dict[int, int] = field(default_factory=dict)
    # Panel allocation id -> the panel server it is assigned to.
    allocation_owner: dict[int, int] = field(default_factory=dict)
    # Panel user id -> how many servers it owns.
    owned: Counter[int] = field(default_factory=Counter)
    users: list[PanelUserView] = field(default_factory=list)


def _deployment_pk(external_id: str | None) -> int | None:
    if not external_id or not external_id.startswith(SERVER_EXTERNAL_PREFIX):
        return None
    suffix = external_id[len(SERVER_EXTERNAL_PREFIX) :]
    return int(suffix) if suffix.isdigit() else None


def panel_fleet_read(*, client: PterodactylClient) -> PanelFleet:
    """Every panel server (with its allocations) and every user with our prefix, by list
    calls of PER_PAGE; raises the client's PanelError when any page fails (nothing partial is
    returned, so nothing is judged on half a read)."""
    fleet = PanelFleet()
    for server in client.iter_servers(include=["allocations"], per_page=PER_PAGE):
        _fleet_add(fleet, server)
    # The users' filter is a partial match: it narrows the read, the prefix test decides.
    for user in client.iter_users(external_id=USER_EXTERNAL_PREFIX, per_page=PER_PAGE):
        if user.external_id and user.external_id.startswith(USER_EXTERNAL_PREFIX):
            fleet.users.append(
                PanelUserView(user.id, user.external_id, user.username, user.root_admin)
            )
    return fleet


# --- the comparison ------------------------------------------------------------------------


def limits_difference(
    *, spec_limits: dict[str, Any] | None, spec_features: dict[str, Any] | None, panel: dict
) -> dict[str, dict[str, Any]]:
    """{"expected": {...}, "actual": {...}} for the limits that differ, {} when none does.

    Only what the spec states is compared. The panel stores a null feature limit as 0 on
    create, so null and 0 are the same here; an empty thread pin is no pin.
    """
    expected: dict[str, Any] = {}
    actual: dict[str, Any] = {}
    for name, value in (spec_limits or {}).items():
        if name not in LIMIT_FIELDS:
            continue
        want, have = value, panel.get(name)
        if name == "threads":
            want, have = want or None, have or None
        if want != have:
            expected[name], actual[name] = want, have
    for name, value in (spec_features or {}).items():
        if name not in FEATURE_FIELDS:
            continue
        want, have = value or 0, panel.get(name) or 0
        if want != have:
            expected[name], actual[name] = value, panel.get(name)
    return {"expected": expected, "actual": actual} if expected else {}


@dataclass
class DriftScan:
    """What one read found; `drift_findings` returns it, the job records it."""

    read_started: datetime
    compared_at: datetime
    findings: list[DriftFinding] = field(default_factory=list)
    checked_deployment_ids: list[int] = field(default_factory=list)
    skipped_deployment_ids: list[int] = field(default_factory=list)
    servers_read: int = 0
    users_read: int = 0

    def counts(self) -> Counter[str]:
        return Counter(str(f.kind) for f in self.findings)

    def listing(self, *, limit: int = LISTING_LIMIT) -> str:
        """One indented line per finding, starting on a new line (`run_job` prints it after
        "list:")."""
        lines = sorted(f.describe() for f in self.findings)
        shown = lines[:limit]
        if len(lines) > limit:
            shown.append(f"... and {len(lines) - limit} more (all of them: the admin's list)")
        return "".join(f"\n    {line}" for line in shown) if shown else "(no drift)"


def drift_findings(*, client: PterodactylClient | None = None) -> DriftScan:
    """Read the panel and compare it with our rows; writes nothing (the dry run's listing).

    Raises the client's PanelError when the panel cannot be read completely.
    """
    client = client or fleet_panel_client()
    read_started = timezone.now()
    fleet = panel_fleet_read(client=client)
    _confirm_absent(client, fleet)
    scan = DriftScan(
        read_started=read_started,
        compared_at=timezone.now(),
        servers_read=len(fleet.servers),
        users_read=len(fleet.users),
    )
    batch = max(1, int(settings.FLEET_BATCH_SIZE))
    known, adopted = _compare_deployments(fleet, scan, batch)
    _compare_claims(fleet, scan, batch)
    _find_orphan_servers(fleet, scan, batch, known | adopted)
    _find_orphan_users(fleet, scan, batch)
    return scan


def _confirm_absent(client: PterodactylClient, fleet: PanelFleet) -> None:
    """Servers our live deployments hold that the (long) list read did not show are looked up
    one by one before they count as missing: a page may shift while the list is walked."""
    held = Deployment.objects.filter(
        status__in=LIVE_STATUSES, panel_server_id__isnull=False
    ).values_list("panel_server_id", flat=True)
    absent = [server_id for server_id in held.order_by() if server_id not in fleet.servers]
    for server in servers_confirm_absent(client=client, absent_ids=absent).values():
        _fleet_add(fleet, server)


def _fleet_add(fleet: PanelFleet, server: Server) -> None:
    view = PanelServerView.from_server(server)
    fleet.servers[view.id] = view
    fleet.owned[view.user_id] += 1
    for allocation in server.allocations or ():
        fleet.allocation_owner[allocation.id] = view.id
    pk = _deployment_pk(view.external_id)
    if pk is not None:
        fleet.by_external[pk] = view.id


def _pages(queryset: Any, fields: tuple[str, ...], batch: int) -> Iterator[list[tuple]]:
    """Keyset pages by pk: one indexed query per batch, no OFFSET, no default ordering."""
    last = 0
    while True:
        rows = list(queryset.filter(pk__gt=last).order_by("pk").values_list(*fields)[:batch])
        if not rows:
            return
        last = rows[-1][0]
        yield rows


def _compare_deployments(
    fleet: PanelFleet, scan: DriftScan, batch: int
) -> tuple[set[int], set[int]]:
    """Suspension, missing servers and limits of every live deployment. Returns the panel
    server ids our live deployments hold, and the orphan servers found adoptable."""
    known: set[int] = set()
    adopted: set[int] = set()
    fields = ("pk", "status", "panel_server_id", "updated_at", "spec__limits")
    fields += ("spec__feature_limits",)
    live = Deployment.objects.filter(status__in=LIVE_STATUSES)
    for rows in _pages(live, fields, batch):
        in_flight = set(
            PanelOperation.objects.filter(
                deployment_id__in=[row[0] for row in rows],
                status__in=OPEN_OPERATION_STATUSES,
                kind__in=IN_FLIGHT_KINDS,
            ).values_list("deployment_id", flat=True)
        )
        for pk, status, server_id, updated_at, spec_limits, spec_features in rows:
            if server_id is not None:
                known.add(server_id)
            if pk in in_flight or updated_at >= scan.read_started:
                scan.skipped_deployment_ids.append(pk)
                continue
            scan.checked_deployment_ids.append(pk)
            server = fleet.servers.get(server_id) if server_id is not None else None
            if server is None:
                candidate = fleet.by_external.get(pk)
                if candidate is not None and candidate not in known:
                    adopted.add(candidate)
                    scan.findings.append(_adoptable(pk, server_id, fleet.servers[candidate]))
                else:
                    scan.findings.append(
                        DriftFinding(
                            K.MISSING_ON_PANEL,
                            {"expected_panel_server_id": server_id, "actual": "not on the panel"},
                            deployment_id=pk,
                            panel_server_id=server_id,
                        )
                    )
                continue
            suspended_there = server.status == "suspended"
            if status == DeploymentStatus.SUSPENDED and not suspended_there:
                scan.findings.append(
                    DriftFinding(
                        K.SUSPENDED_HERE_RUNNING_THERE,
                        {"expected": "suspended", "actual": server.status or "normal"},
                        deployment_id=pk,
                        panel_server_id=server_id,
                    )
                )
            elif status == DeploymentStatus.ACTIVE and suspended_there:
                scan.findings.append(
                    DriftFinding(
                        K.SUSPENDED_THERE_ACTIVE_HERE,
                        {"expected": "not suspended", "actual": "suspended"},
                        deployment_id=pk,
                        panel_server_id=server_id,
                    )
                )
            difference = limits_difference(
                spec_limits=spec_limits, spec_features=spec_features, panel=server.limits_dict()
            )
            if difference:
                scan.findings.append(
                    DriftFinding(
                        K.LIMITS_MISMATCH, difference, deployment_id=pk, panel_server_id=server_id
                    )
                )
    return known, adopted


def _adoptable(pk: int, recorded: int | None, server: PanelServerView) -> DriftFinding:
    return DriftFinding(
        K.ORPHAN_SERVER,
        {
            "external_id": server.external_id,
            "why": f"the deployment's panel server #{recorded} is gone; this one carries its "
            "external id",
            "recorded_panel_server_id": recorded,
            "uuid": server.uuid,
            "identifier": server.identifier,
            "ip": server.primary_ip,
            "port": server.primary_port,
            "repair": "adopt",
        },
        deployment_id=pk,
        panel_server_id=server.id,
    )


def _compare_claims(fleet: PanelFleet, scan: DriftScan, batch: int) -> None:
    """Ports we hold (AllocationClaim) that the panel assigned to another server: a create
    would fail on them, and the customer's address may be someone else's."""
    skipped = set(scan.skipped_deployment_ids)
    conflicts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    servers: dict[int, int | None] = {}
    fields = ("pk", "deployment_id", "panel_allocation_id", "ip", "port", "deployment__status")
    fields += ("deployment__panel_server_id", "run__panel_server_id")
    for rows in _pages(AllocationClaim.objects.all(), fields, batch):
        for _pk, deployment_id, allocation_id, ip, port, status, server_id, run_server in rows:
            owner = fleet.allocation_owner.get(allocation_id)
            if owner is None or deployment_id in skipped:
                continue  # free on the panel: not taken from us
            live = status in LIVE_STATUSES
            expected = server_id if live else run_server
            if owner == expected:
                continue
            if fleet.servers[owner].external_id == f"{SERVER_EXTERNAL_PREFIX}{deployment_id}":
                continue  # our own server, created but not recorded yet (a run in flight)
            if live and server_id not in fleet.servers:
                continue  # the server is missing: that item says it
            servers[deployment_id] = expected
            conflicts[deployment_id].append(
                {
                    "ip": ip,
                    "port": port,
                    "allocation_id": allocation_id,
                    "assigned_to_panel_server": owner,
                }
            )
    for deployment_id, ports in conflicts.items():
        scan.findings.append(
            DriftFinding(
                K.PORT_CONFLICT,
                {"expected_panel_server_id": servers[deployment_id], "ports": ports},
                deployment_id=deployment_id,
                panel_server_id=servers[deployment_id],
            )
        )


def _find_orphan_servers(fleet: PanelFleet, scan: DriftScan, batch: int, known: set[int]) -> None:
    """Panel servers with our external-id prefix that no live deployment of ours holds."""
    skipped = set(scan.skipped_deployment_ids)
    candidates = [(pk, sid) for pk, sid in fleet.by_external.items() if sid not in known]
    for start in range(0, len(candidates), batch):
        chunk = candidates[start : start + batch]
        pks = [pk for pk, _sid in chunk]
        deployments = {
            pk: (status, server_id)
            for pk, status, server_id in Deployment.objects.filter(pk__in=pks)
            .order_by()
            .values_list("pk", "status", "panel_server_id")
        }
        running = set(
            ProvisioningRun.objects.filter(
                deployment_id__in=pks, status__in=ACTIVE_RUN_STATUSES
            ).values_list("deployment_id", flat=True)
        )
        for pk, sid in chunk:
            server = fleet.servers[sid]
            base = {"external_id": server.external_id, "status": server.status or "normal"}
            found = deployments.get(pk)
            if found is None:
                scan.findings.append(
                    DriftFinding(
                        K.ORPHAN_SERVER,
                        {**base, "why": f"no deployment #{pk}", "repair": "delete"},
                        panel_server_id=sid,
                    )
                )
                continue
            status, recorded = found
            if pk in running or status in (DeploymentStatus.PENDING, DeploymentStatus.PROVISIONING):
                continue  # being provisioned: the saga adopts it by external id
            if status in LIVE_STATUSES:
                if pk in skipped:
                    continue
                # Live on another server that still exists: which one is real is for staff.
                why = f"deployment #{pk} is live on panel server #{recorded}"
                repair = "review"
            else:
                why, repair = f"deployment #{pk} is {status}", "delete"
            scan.findings.append(
                DriftFinding(
                    K.ORPHAN_SERVER,
                    {**base, "why": why, "repair": repair},
                    deployment_id=pk,
                    panel_server_id=sid,
                )
            )


def _find_orphan_users(fleet: PanelFleet, scan: DriftScan, batch: int) -> None:
    """Panel users with our prefix that no portal account is linked to (never an admin)."""
    for start in range(0, len(fleet.users), batch):
        chunk = fleet.users[start : start + batch]
        accounts = dict(
            PanelAccount.objects.filter(external_id__in=[u.external_id for u in chunk])
            .order_by()
            .values_list("external_id", "panel_user_id")
        )
        for user in chunk:
            if user.root_admin:
                continue
            if user.external_id in accounts:
                linked = accounts[user.external_id]
                if linked is None or linked == user.id:
                    continue  # ours (or ours to adopt on the customer's next order)
                why = f"a duplicate: the account is linked to panel user #{linked}"
            else:
                why = "no portal account has this external id"
            owns = fleet.owned.get(user.id, 0)
            scan.findings.append(
                DriftFinding(
                    K.ORPHAN_USER,
                    {
                        "external_id": user.external_id,
                        "username": user.username,
                        "owns_servers": owns,
                        "why": why,
                        # The panel refuses to delete a user who owns servers.
                        "repair": "delete" if owns == 0 else "review",
                    },
                    panel_user_id=user.id,
                )
            )


# --- the job -------------------------------------------------------------------------------


def enabled_repairs() -> list[str]:
    """RECONCILE_REPAIRS, checked: an unknown name is a configuration error, not ignored."""
    names = [str(name).strip() for name in settings.RECONCILE_REPAIRS if str(name).strip()]
    unknown = sorted(set(names) - set(REPAIR_NAMES))
    if unknown:
        raise ImproperlyConfigured(
            f"RECONCILE_REPAIRS: unknown {', '.join(unknown)}; use {', '.join(REPAIR_NAMES)}."
        )
    return names


def _items_to_repair(*, seen_at: datetime, allowed: list[str], batch: int) -> Iterator[DriftItem]:
    queryset = drift_items_for_automatic_repair(seen_at=seen_at, allowed=allowed)
    last = 0
    while True:
        items = list(queryset.filter(pk__gt=last)[:batch])
        if not items:
            return
        last = items[-1].pk
        yield from items


def reconcile_job(*, dry_run: bool) -> dict[str, int | str]:
    """Detect drift between billing and the panel; unless `dry_run`, record it and request the
    enabled repairs. Returns counts per kind (and, in a dry run, the listing under "list")."""
    allowed = enabled_repairs()
    try:
        scan = drift_findings(client=fleet_panel_client())
    except PanelError as exc:
        logger.warning("reconcile: the panel could not be read: %s", redact(str(exc)))
        if not dry_run:
            _alert_read_failed(exc)
        raise
    by_kind = scan.counts()
    counts: dict[str, int | str] = {
        "servers_read": scan.servers_read,
        "users_read": scan.users_read,
        "deployments_checked": len(scan.checked_deployment_ids),
        "deployments_skipped": len(scan.skipped_deployment_ids),
        **{kind: by_kind.get(kind, 0) for kind in K.values},
    }
    if dry_run:
        for finding in scan.findings[:LISTING_LIMIT]:
            logger.info("drift (dry run): %s", finding.describe())
        counts["list"] = scan.listing()
        return counts
    recorded = drifts_record(findings=scan.findings, source="reconcile", seen_at=scan.compared_at)
    gone = drifts_resolve_gone(
        checked_deployment_ids=scan.checked_deployment_ids,
        skipped_deployment_ids=scan.skipped_deployment_ids,
        read_started=scan.read_started,
        resolved_by=ACTOR.label,
    )
    batch = max(1, int(settings.FLEET_BATCH_SIZE))
    repairs = drift_repairs_request(
        items=_items_to_repair(seen_at=scan.compared_at, allowed=allowed, batch=batch),
        actor=ACTOR,
        allowed=allowed,
    )
    counts.update(
        {
            "new": sum(recorded.new.values()),
            "refreshed": recorded.refreshed,
            "resolved_gone": gone,
            "operations_requested": repairs.requested,
            "adopted": repairs.adopted,
        }
    )
    return counts


def _alert_read_failed(exc: PanelError) -> None:
    """One message per outage: the key names the last successful run, so every failed run
    until the panel answers again shares it."""
    last_ok = (
        JobRun.objects.filter(name="reconcile", status=JobRunStatus.SUCCEEDED)
        .order_by("-started_at", "-id")
        .values_list("pk", flat=True)
        .first()
    )
    notification_send(
        event="fleet_alert_staff",
        staff=True,
        context={
            "title": "Reconcile: the panel could not be read",
            "detail": f"{redact(str(exc))[:500]}. Nothing was compared or changed; the next "
            "run tries again.",
            "admin_url": drift_admin_url(),
            "opened_at": timezone.now().strftime("%Y-%m-%d %H:%M UTC"),
        },
        event_key=f"reconcile:panel-read-failed:after-run-{last_ok or 0}",
    )
