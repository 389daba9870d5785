"""The reconcile job's comparison: the panel read against our rows, as drift findings.

`drift_findings` is a selector (it writes nothing: the dry run lists what it returns). Our rows
are read FLEET_BATCH_SIZE at a time (deployments, port claims, orphan candidates) and compared
in memory by id. Deployments with lifecycle work in flight (an open suspend/unsuspend/terminate)
or changed while the panel was being read are skipped: the next run judges them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from provisioning.fleet.budget import fleet_panel_client
from provisioning.fleet.drift import LIVE_STATUSES, SERVER_EXTERNAL_PREFIX, DriftFinding
from provisioning.fleet.panel_read import (
    FEATURE_FIELDS,
    LIMIT_FIELDS,
    PanelFleet,
    PanelServerView,
    panel_fleet_confirm_absent,
    panel_fleet_read,
)
from provisioning.models import (
    ACTIVE_RUN_STATUSES,
    OPEN_OPERATION_STATUSES,
    AllocationClaim,
    DriftKind,
    PanelAccount,
    PanelOperation,
    PanelOperationKind,
    ProvisioningRun,
)
from provisioning.pterodactyl import PterodactylClient, ServerStatus
from servers.models import Deployment, DeploymentStatus

K = DriftKind
# Operations that are changing a server's state right now: its suspension is not drift yet.
IN_FLIGHT_KINDS = (
    PanelOperationKind.SUSPEND,
    PanelOperationKind.UNSUSPEND,
    PanelOperationKind.TERMINATE,
)
# Lines of the dry-run listing returned to `run_job` (the admin lists everything).
LISTING_LIMIT = 200


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
    panel_fleet_confirm_absent(client, fleet)
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
            suspended_there = server.status == ServerStatus.SUSPENDED
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
        deployments = {}
        # Terminated but kept on the panel on purpose (restore window, final backup): the
        # purge job (provisioning.termination) deletes them when due.
        kept = set()
        for pk, status, server_id, deletion_due in (
            Deployment.objects.filter(pk__in=pks)
            .order_by()
            .values_list("pk", "status", "panel_server_id", "panel_deletion_due_at")
        ):
            deployments[pk] = (status, server_id)
            if status == DeploymentStatus.TERMINATED and deletion_due is not None:
                kept.add(pk)
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
            if pk in kept and recorded == sid:
                continue
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
