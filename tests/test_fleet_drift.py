"""Drift between billing and the panel: injected on the simulator, listed by a dry run,
recorded and repaired (through repair_execute, not the drain), and nothing flipped or flooded
when the panel cannot be read."""

import datetime as dt
import math
from io import StringIO

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from common.actors import Actor
from common.jobs import job_run
from common.models import JobRun, JobRunStatus
from config.celery import app as celery_app
from notifications.models import Delivery
from panel_simulator.state import ServerRow
from provisioning import operations
from provisioning.fleet.drift import drift_record
from provisioning.fleet.drift_scan import drift_findings
from provisioning.fleet.operations import (
    OperationRequest,
    OperationResult,
    panel_operations_request,
)
from provisioning.fleet.repairs import repair_execute
from provisioning.models import (
    AllocationClaim,
    DriftItem,
    PanelOperation,
    PanelOperationKind,
    PanelOperationStatus,
)
from provisioning.pterodactyl import FeatureLimits, Limits, PanelUnavailable, PterodactylClient
from servers.models import Deployment, DeploymentEvent, DeploymentStatus, Location
from tests.support import panel_server_made_by_hand, redis_clear_own_keys
from tests.test_saga import pay

SERVERS = "/api/application/servers"
USERS = "/api/application/users"
NAMES = ("suspended_there", "running_there", "deleted", "memory", "port", "clean")


@pytest.fixture
def fleet(saga, place_order, staff):
    """Six live servers made by the real saga; "running_there" is suspended here (and, through
    the real service, on the panel)."""
    deployments = {}
    for name in NAMES:
        order = pay(place_order(server_name=name), staff)
        deployment = Deployment.objects.get(pk=order.deployment.pk)
        assert deployment.status == DeploymentStatus.ACTIVE
        deployments[name] = deployment
    operations.deployment_suspend(
        deployment_id=deployments["running_there"].pk, actor=Actor.staff(staff), reason="Abuse"
    )
    deployments["running_there"].refresh_from_db()
    assert deployments["running_there"].status == DeploymentStatus.SUSPENDED
    return deployments


@pytest.fixture
def no_drain(settings):
    """Tasks (the drain, staff e-mails) are queued on the test broker, not run: the tests call
    repair_execute themselves."""
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True
    redis_clear_own_keys()


def _create_server(
    saga, *, name: str, external_id: str | None = None, spec: dict | None = None
) -> int:
    """A server made through the panel's API (as a person in the panel UI would)."""
    return panel_server_made_by_hand(
        saga.sim.seed,
        name,
        limits=Limits(**spec["limits"]) if spec else Limits(1024, 0, 5000, 500, 100),
        feature_limits=FeatureLimits(**spec["feature_limits"]) if spec else None,
        external_id=external_id,
    ).id


@pytest.fixture
def drifted(saga, fleet):
    """Every kind of drift, injected on the simulator."""
    panel = saga.panel
    panel.servers[fleet["suspended_there"].panel_server_id].status = "suspended"
    panel.servers[fleet["running_there"].panel_server_id].status = None
    panel.delete_server(panel.servers[fleet["deleted"].panel_server_id], force=True)
    panel.servers[fleet["memory"].panel_server_id].memory = 4096
    orphan_id = _create_server(saga, name="left over", external_id="deployment-99999")
    ghost = panel.add_user(
        username="ghost",
        email="ghost@example.com",
        first_name="Gh",
        last_name="Ost",
        external_id="portal-user-99999",
    )
    # Someone gives a port we hold to a server of their own (no external id: not ours).
    foreign_id = _create_server(saga, name="someone else's")
    claim = AllocationClaim.objects.get(deployment=fleet["port"], is_primary=True)
    panel.allocations[claim.panel_allocation_id].server_id = foreign_id
    panel.tick()  # the new servers finish installing
    saga.sim.calls.clear()
    return {"orphan_id": orphan_id, "ghost_id": ghost.id, "foreign_id": foreign_id, "claim": claim}


def _expected_items(fleet, drifted) -> set[tuple]:
    return {
        ("suspended_there_active_here", fleet["suspended_there"].pk, None, None),
        ("suspended_here_running_there", fleet["running_there"].pk, None, None),
        ("missing_on_panel", fleet["deleted"].pk, None, None),
        ("limits_mismatch", fleet["memory"].pk, None, None),
        ("port_conflict", fleet["port"].pk, None, None),
        ("orphan_server", None, drifted["orphan_id"], None),
        ("orphan_user", None, None, drifted["ghost_id"]),
    }


def _open_items() -> set[tuple]:
    return {
        (i.kind, i.deployment_id, None if i.deployment_id else i.panel_server_id, i.panel_user_id)
        for i in DriftItem.objects.filter(resolved_at__isnull=True)
    }


def _alert_keys() -> set[str]:
    return set(
        Delivery.objects.filter(event="fleet_alert_staff").values_list("event_key", flat=True)
    )


def _panel_state(saga) -> dict:
    return {
        sid: (s.status, s.memory, s.external_id) for sid, s in sorted(saga.panel.servers.items())
    }


def _finish(operation: PanelOperation, result: OperationResult) -> None:
    """What the drain records after an executor returns (the drain itself is not under test)."""
    status = PanelOperationStatus.SKIPPED if result.skipped else PanelOperationStatus.SUCCEEDED
    PanelOperation.objects.filter(pk=operation.pk).update(
        status=status, verified=result.verified, outcome=result.outcome
    )


def _execute_pending(saga) -> dict[str, OperationResult]:
    client = PterodactylClient.from_settings()
    results = {}
    for operation in PanelOperation.objects.filter(status=PanelOperationStatus.PENDING).order_by(
        "pk"
    ):
        result = repair_execute(operation=operation, client=client)
        _finish(operation, result)
        target = operation.deployment_id or operation.panel_server_id or operation.panel_user_id
        results[f"{operation.kind}:{target}"] = result
    return results


def test_dry_run_lists_every_kind_and_changes_nothing(saga, fleet, drifted):
    before = _panel_state(saga)
    out = StringIO()
    call_command("run_job", "reconcile", "--dry-run", stdout=out)
    text = out.getvalue()

    f = fleet
    sid = {name: f[name].panel_server_id for name in NAMES}
    for kind in (
        "suspended_here_running_there",
        "suspended_there_active_here",
        "missing_on_panel",
        "limits_mismatch",
        "orphan_server",
        "orphan_user",
        "port_conflict",
    ):
        assert f"  {kind}: 1\n" in text
    assert f"  servers_read: {len(saga.panel.servers)}\n" in text
    expected_lines = [
        f"limits_mismatch: deployment #{f['memory'].pk} (panel server #{sid['memory']}): "
        f"expected={{'memory': {_planned(f)}}}, actual={{'memory': 4096}} [repair: build]",
        f"missing_on_panel: deployment #{f['deleted'].pk} (panel server #{sid['deleted']}): "
        f"expected_panel_server_id={sid['deleted']}, actual=not on the panel [repair: by hand]",
        f"orphan_server: panel server #{drifted['orphan_id']}: external_id=deployment-99999, "
        "status=normal, why=no deployment #99999 [repair: delete_orphans]",
        f"orphan_user: panel user #{drifted['ghost_id']}: external_id=portal-user-99999, "
        "username=ghost, owns_servers=0, why=no portal account has this external id "
        "[repair: delete_orphans]",
        f"port_conflict: deployment #{f['port'].pk} (panel server #{sid['port']}): "
        f"expected_panel_server_id={sid['port']}, ports=[{{'ip': '203.0.113.10', 'port': "
        f"{drifted['claim'].port}, 'allocation_id': {drifted['claim'].panel_allocation_id}, "
        f"'assigned_to_panel_server': {drifted['foreign_id']}}}] [repair: by hand]",
        f"suspended_here_running_there: deployment #{f['running_there'].pk} (panel server "
        f"#{sid['running_there']}): expected=suspended, actual=normal [repair: suspension]",
        f"suspended_there_active_here: deployment #{f['suspended_there'].pk} (panel server "
        f"#{sid['suspended_there']}): expected=not suspended, actual=suspended "
        "[repair: suspension]",
    ]
    listing = text.split("\n  list: \n", 1)[1]
    assert listing == "".join(f"    {line}\n" for line in expected_lines)

    # Nothing recorded, requested, sent or changed.
    assert DriftItem.objects.count() == 0
    assert PanelOperation.objects.count() == 0
    assert _alert_keys() == set()
    assert _panel_state(saga) == before
    assert [c for c in saga.sim.calls if c[0] != "GET"] == []
    assert JobRun.objects.get(name="reconcile").dry_run is True


def test_reconcile_records_requests_and_the_repairs_fix_the_panel(
    saga, fleet, drifted, no_drain, settings
):
    f = fleet
    report = job_run(name="reconcile", dry_run=False, triggered_by="test")
    assert report.status == JobRunStatus.SUCCEEDED, report.error
    assert {k: v for k, v in report.counts.items() if not k.endswith("_read")} == {
        "deployments_checked": 6,
        "deployments_skipped": 0,
        "suspended_here_running_there": 1,
        "suspended_there_active_here": 1,
        "missing_on_panel": 1,
        "limits_mismatch": 1,
        "orphan_server": 1,
        "orphan_user": 1,
        "port_conflict": 1,
        "new": 7,
        "refreshed": 0,
        "resolved_gone": 0,
        "operations_requested": 3,  # suspension x2 and build; orphans are off by default
        "adopted": 0,
    }
    assert _open_items() == _expected_items(f, drifted)
    item = DriftItem.objects.get(kind="limits_mismatch")
    assert item.details == {"expected": {"memory": _planned(f)}, "actual": {"memory": 4096}}
    assert item.source == "reconcile"
    operations_made = {
        (o.kind, o.deployment_id, o.requested_by)
        for o in PanelOperation.objects.filter(status=PanelOperationStatus.PENDING)
    }
    assert operations_made == {
        (PanelOperationKind.REAPPLY_SUSPENSION, f["suspended_there"].pk, "system:reconcile"),
        (PanelOperationKind.REAPPLY_SUSPENSION, f["running_there"].pk, "system:reconcile"),
        (PanelOperationKind.REAPPLY_BUILD, f["memory"].pk, "system:reconcile"),
    }
    linked = dict(
        DriftItem.objects.filter(repair_operation__isnull=False).values_list(
            "deployment_id", "repair_operation__kind"
        )
    )
    assert linked == {
        f["suspended_there"].pk: PanelOperationKind.REAPPLY_SUSPENSION,
        f["running_there"].pk: PanelOperationKind.REAPPLY_SUSPENSION,
        f["memory"].pk: PanelOperationKind.REAPPLY_BUILD,
    }
    hour = timezone.now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H")
    kinds = {k for k, *_ in _expected_items(f, drifted)}
    assert _alert_keys() == {f"drift:{kind}:{hour}" for kind in kinds}  # one per kind

    # A second run before the repairs ran: the same items, no new operation, no new alert.
    again = job_run(name="reconcile", dry_run=False, triggered_by="test")
    assert (again.counts["new"], again.counts["refreshed"]) == (0, 7)
    assert again.counts["operations_requested"] == 0
    assert PanelOperation.objects.count() == 3
    assert Delivery.objects.filter(event="fleet_alert_staff").count() == 7

    results = _execute_pending(saga)
    sid = {name: f[name].panel_server_id for name in NAMES}
    assert {key: (r.verified, r.skipped) for key, r in results.items()} == {
        f"reapply_suspension:{f['suspended_there'].pk}": (True, False),
        f"reapply_suspension:{f['running_there'].pk}": (True, False),
        f"reapply_build:{f['memory'].pk}": (True, False),
    }
    panel = saga.panel
    assert panel.servers[sid["suspended_there"]].status is None  # active here: unsuspended
    assert panel.servers[sid["running_there"]].status == "suspended"
    assert panel.servers[sid["memory"]].memory == _planned(f)
    repaired = {
        i.deployment_id: (i.resolution, i.resolved_by)
        for i in DriftItem.objects.filter(resolved_at__isnull=False)
    }
    assert repaired == {
        f["suspended_there"].pk: (
            f"repaired: unsuspended on the panel (operation #{_op(f['suspended_there'])})",
            "system:reconcile",
        ),
        f["running_there"].pk: (
            f"repaired: suspended on the panel (operation #{_op(f['running_there'])})",
            "system:reconcile",
        ),
        f["memory"].pk: (
            f"repaired: limits re-applied (operation #{_op(f['memory'])})",
            "system:reconcile",
        ),
    }
    assert DeploymentEvent.objects.filter(
        deployment=f["memory"],
        reason=f"Drift repaired: panel limits re-applied (memory 4096 -> {_planned(f)}; operation "
        f"#{_op(f['memory'])})",
    ).exists()
    # Billing was the record: our statuses did not move.
    assert Deployment.objects.get(pk=f["suspended_there"].pk).status == DeploymentStatus.ACTIVE
    assert Deployment.objects.get(pk=f["running_there"].pk).status == DeploymentStatus.SUSPENDED

    # The operator enables orphan deletion: the next run requests it, the repairs delete.
    settings.RECONCILE_REPAIRS = ["suspension", "build", "delete_orphans"]
    third = job_run(name="reconcile", dry_run=False, triggered_by="test")
    assert (third.counts["new"], third.counts["operations_requested"]) == (0, 2)
    results = _execute_pending(saga)
    assert {key: (r.verified, r.skipped) for key, r in results.items()} == {
        f"delete_orphan_server:{drifted['orphan_id']}": (True, False),
        f"delete_orphan_user:{drifted['ghost_id']}": (True, False),
    }
    assert drifted["orphan_id"] not in panel.servers
    assert drifted["ghost_id"] not in panel.users
    assert _open_items() == {
        ("missing_on_panel", f["deleted"].pk, None, None),
        ("port_conflict", f["port"].pk, None, None),
    }

    # Nothing new after the repairs: the two items staff must handle stay, nothing requested.
    saga.sim.calls.clear()
    last = job_run(name="reconcile", dry_run=False, triggered_by="test")
    assert {k: last.counts[k] for k in ("new", "refreshed", "operations_requested")} == {
        "new": 0,
        "refreshed": 2,
        "operations_requested": 0,
    }
    assert Delivery.objects.filter(event="fleet_alert_staff").count() == 7
    assert [c for c in saga.sim.calls if c[0] != "GET"] == []


def _planned(fleet) -> int:
    return fleet["memory"].spec["limits"]["memory"]


def _op(deployment: Deployment) -> int:
    return PanelOperation.objects.get(deployment=deployment).pk


def test_a_repair_checks_again_and_skips_when_the_drift_is_gone(saga, fleet, no_drain):
    sid = fleet["memory"].panel_server_id
    saga.panel.servers[sid].memory = 4096
    report = job_run(name="reconcile", dry_run=False, triggered_by="test")
    assert report.counts["operations_requested"] == 1
    saga.panel.servers[sid].memory = _planned(fleet)  # fixed by hand meanwhile
    saga.sim.calls.clear()

    operation = PanelOperation.objects.get()
    result = repair_execute(operation=operation, client=PterodactylClient.from_settings())
    assert result == OperationResult(
        outcome="not needed: the limits already match", verified=None, skipped=True
    )
    assert list(saga.sim.calls) == [("GET", f"{SERVERS}/{sid}", 200)]  # nothing sent
    item = DriftItem.objects.get()
    assert item.resolution == "gone: the panel already matches (checked before the repair)"


def test_a_failing_panel_raises_and_changes_nothing(saga, fleet, no_drain):
    deployment = fleet["suspended_there"]
    server = saga.panel.servers[deployment.panel_server_id]
    server.status = "suspended"
    job_run(name="reconcile", dry_run=False, triggered_by="test")
    saga.panel.set_wings_failure(server.node_id, 0)  # Wings down: unsuspend answers 504

    operation = PanelOperation.objects.get()
    with pytest.raises(PanelUnavailable):
        repair_execute(operation=operation, client=PterodactylClient.from_settings())
    assert server.status == "suspended"
    item = DriftItem.objects.get()
    assert (item.kind, item.resolved_at) == ("suspended_there_active_here", None)


def test_an_orphan_carrying_a_live_deployments_external_id_is_adopted(
    saga, fleet, no_drain, settings
):
    deployment = fleet["clean"]
    old = deployment.panel_server_id
    saga.panel.delete_server(saga.panel.servers[old], force=True)
    # Re-created by hand in the panel, with the deployment's external id.
    new = _create_server(
        saga, name="restored", external_id=deployment.external_id, spec=deployment.spec
    )

    scan = drift_findings()
    assert [(f.kind, f.deployment_id, f.panel_server_id, f.repair) for f in scan.findings] == [
        ("orphan_server", deployment.pk, new, "adopt_orphans")
    ]

    settings.RECONCILE_REPAIRS = ["adopt_orphans"]
    report = job_run(name="reconcile", dry_run=False, triggered_by="test")
    assert (report.counts["adopted"], report.counts["operations_requested"]) == (1, 0)
    deployment.refresh_from_db()
    assert deployment.panel_server_id == new
    assert deployment.panel_identifier == saga.panel.servers[new].uuid_short
    assert deployment.status == DeploymentStatus.ACTIVE
    assert deployment.events.last().reason == (
        f"Drift repaired: adopted panel server #{new} (external id {deployment.external_id}) in "
        f"place of missing #{old}"
    )
    item = DriftItem.objects.get()
    assert (item.resolution, item.resolved_by) == (
        "adopted: linked to its deployment (database only)",
        "system:reconcile",
    )
    assert PanelOperation.objects.count() == 0

    again = job_run(name="reconcile", dry_run=False, triggered_by="test")
    assert {k: again.counts[k] for k in ("new", "adopted", "missing_on_panel")} == {
        "new": 0,
        "adopted": 0,
        "missing_on_panel": 0,
    }


def test_panel_outage_flips_nothing_alerts_once_and_work_resumes(saga, fleet, no_drain):
    f = fleet
    saga.panel.servers[f["memory"].panel_server_id].memory = 4096
    first = job_run(name="reconcile", dry_run=False, triggered_by="test")
    assert first.status == JobRunStatus.SUCCEEDED
    # Meanwhile the limits drift is fixed on the panel, but the panel cannot be read.
    saga.panel.servers[f["memory"].panel_server_id].memory = _planned(f)
    items_before = list(DriftItem.objects.values())
    operations_before = list(PanelOperation.objects.values())
    saga.fault("status", method="GET", path=r"/servers$", status=503, times=None)

    for _ in range(3):
        report = job_run(name="reconcile", dry_run=False, triggered_by="test")
        assert report.status == JobRunStatus.FAILED
        assert "PanelUnavailable" in report.error
    # A failure half-way through the read (servers fine, users not) is the same.
    saga.sim.faults.clear()
    saga.fault("connect_timeout", method="GET", path=r"/users$", times=None)
    assert job_run(name="reconcile", dry_run=False, triggered_by="test").status == "failed"

    assert list(DriftItem.objects.values()) == items_before  # nothing resolved as "gone"
    assert list(PanelOperation.objects.values()) == operations_before
    outage_keys = {k for k in _alert_keys() if k.startswith("reconcile:")}
    assert outage_keys == {f"reconcile:panel-read-failed:after-run-{first.run_id}"}
    assert Delivery.objects.filter(event_key__in=outage_keys).count() == 1

    saga.sim.faults.clear()
    back = job_run(name="reconcile", dry_run=False, triggered_by="test")
    assert back.status == JobRunStatus.SUCCEEDED
    assert (back.counts["limits_mismatch"], back.counts["resolved_gone"]) == (0, 1)
    assert DriftItem.objects.get().resolution == (
        "gone: not seen on a later full read of the panel"
    )
    # The next outage is a new incident: one more message.
    saga.fault("status", method="GET", path=r"/servers$", status=503, times=None)
    job_run(name="reconcile", dry_run=False, triggered_by="test")
    job_run(name="reconcile", dry_run=False, triggered_by="test")
    outage_keys = {k for k in _alert_keys() if k.startswith("reconcile:")}
    assert outage_keys == {
        f"reconcile:panel-read-failed:after-run-{first.run_id}",
        f"reconcile:panel-read-failed:after-run-{back.run_id}",
    }


def test_a_terminated_servers_leftover_is_deleted_when_enabled(
    saga, fleet, no_drain, settings, staff
):
    deployment = fleet["clean"]
    operations.deployment_terminate(
        deployment_id=deployment.pk, actor=Actor.staff(staff), reason="Cancelled"
    )
    # The panel still has a server under its external id (restored by hand, say).
    leftover = _create_server(saga, name="leftover", external_id=deployment.external_id)
    settings.RECONCILE_REPAIRS = ["delete_orphans"]
    report = job_run(name="reconcile", dry_run=False, triggered_by="test")
    assert (report.counts["orphan_server"], report.counts["operations_requested"]) == (1, 1)
    item = DriftItem.objects.get()
    assert (item.kind, item.deployment_id, item.panel_server_id) == (
        "orphan_server",
        deployment.pk,
        leftover,
    )
    assert item.details["why"] == f"deployment #{deployment.pk} is terminated"
    operation = PanelOperation.objects.get()
    assert (operation.kind, operation.deployment_id, operation.panel_server_id) == (
        PanelOperationKind.DELETE_ORPHAN_SERVER,
        None,
        leftover,
    )

    result = repair_execute(operation=operation, client=PterodactylClient.from_settings())
    assert result == OperationResult(outcome="orphan server deleted", verified=True)
    assert leftover not in saga.panel.servers
    item.refresh_from_db()
    assert item.resolution == f"repaired: deleted from the panel (operation #{operation.pk})"


def test_a_server_with_lifecycle_work_in_flight_is_judged_later(saga, fleet, no_drain):
    deployment = fleet["suspended_there"]
    saga.panel.servers[deployment.panel_server_id].status = "suspended"
    job_run(name="reconcile", dry_run=False, triggered_by="test")
    item = DriftItem.objects.get()
    PanelOperation.objects.all().delete()
    DriftItem.objects.filter(pk=item.pk).update(repair_operation=None)
    panel_operations_request(
        requests=[
            OperationRequest(
                kind=PanelOperationKind.SUSPEND, reason="Unpaid", deployment_id=deployment.pk
            )
        ],
        actor=Actor.system("dunning"),
    )
    saga.panel.servers[deployment.panel_server_id].status = None  # drift gone, or not yet?

    report = job_run(name="reconcile", dry_run=False, triggered_by="test")
    assert {k: report.counts[k] for k in ("deployments_skipped", "resolved_gone", "new")} == {
        "deployments_skipped": 1,
        "resolved_gone": 0,
        "new": 0,
    }
    item.refresh_from_db()
    assert (item.resolved_at, item.last_seen_at) == (None, item.detected_at)  # left as it was


def _add_panel_servers(saga, count: int, *, memory: int = 512) -> list[int]:
    """Rows straight into the simulator's table (fast): servers someone else made."""
    panel, seed = saga.panel, saga.sim.seed
    egg = panel.eggs[seed.paper_egg_id]
    ids = []
    for index in range(count):
        server_id = panel.next_id("servers")
        uuid = panel.new_uuid()
        panel.servers[server_id] = ServerRow(
            id=server_id,
            uuid=uuid,
            uuid_short=uuid[:8],
            name=f"bulk-{index}",
            owner_id=seed.admin_user_id,
            node_id=seed.eu_node_id,
            allocation_id=1,
            nest_id=egg.nest_id,
            egg_id=egg.id,
            memory=memory,
            swap=0,
            disk=1000,
            io=500,
            cpu=100,
            startup=egg.startup,
            image="ghcr.io/pterodactyl/yolks:java_17",
            status=None,
        )
        ids.append(server_id)
    return ids


def test_the_fleet_is_read_with_list_calls_only(saga, fleet):
    _add_panel_servers(saga, 250)
    saga.sim.calls.clear()
    scan = drift_findings()
    assert scan.findings == []
    assert scan.servers_read == len(saga.panel.servers) == 256
    assert [c for c in saga.sim.calls if c[1] == SERVERS] == [("GET", SERVERS, 200)] * math.ceil(
        256 / 100
    )
    assert [c for c in saga.sim.calls if c[1] == USERS] == [("GET", USERS, 200)]
    assert len(saga.sim.calls) == 4  # nothing per server


def _bulk_live_deployments(saga, customer, count: int) -> None:
    """Live deployments whose panel servers all run 1024 MB instead of the plan's 512."""
    location = Location.objects.get(short_code="eu")
    spec = {
        "limits": {"memory": 512, "swap": 0, "disk": 1000, "io": 500, "cpu": 100},
        "feature_limits": {"databases": 0, "allocations": 0, "backups": 0},
    }
    server_ids = _add_panel_servers(saga, count, memory=1024)
    Deployment.objects.bulk_create(
        [
            Deployment(
                customer=customer,
                name=f"bulk {server_id}",
                plan_slug="bronze",
                plan_name="Bronze",
                billing_cycle="monthly",
                location=location,
                spec=spec,
                status=DeploymentStatus.ACTIVE,
                panel_server_id=server_id,
            )
            for server_id in server_ids
        ]
    )


def test_statements_grow_per_batch_not_per_server(saga, catalog, customer, settings):
    settings.FLEET_BATCH_SIZE = 25
    settings.RECONCILE_REPAIRS = []
    queries = []
    start = timezone.now() + dt.timedelta(hours=1)
    for step, count in enumerate((25, 50, 75)):
        DriftItem.objects.all().delete()
        Deployment.objects.all().delete()
        saga.panel.servers.clear()
        _bulk_live_deployments(saga, customer, count)
        # A new hour each time, so each run queues its one alert the same way.
        with (
            time_machine.travel(start + dt.timedelta(hours=step), tick=False),
            CaptureQueriesContext(connection) as captured,
        ):
            report = job_run(name="reconcile", dry_run=False, triggered_by="test")
        assert report.status == JobRunStatus.SUCCEEDED, report.error
        assert (report.counts["limits_mismatch"], report.counts["new"]) == (count, count)
        queries.append(len(captured.captured_queries))
    per_batch = queries[1] - queries[0]
    assert queries[2] - queries[1] == per_batch  # linear in batches ...
    assert per_batch <= 8  # ... a few statements each (25 servers a batch), none per server


def test_drift_record_is_idempotent_and_alerts_once(saga, fleet):
    deployment = fleet["clean"]
    for shown in ("status normal", "status installing"):
        item = drift_record(
            kind="suspended_here_running_there",
            deployment_id=deployment.pk,
            panel_server_id=deployment.panel_server_id,
            details={"expected": "suspended", "panel_shows": shown},
            source="verify:suspended",
        )
    assert DriftItem.objects.get() == item
    assert item.details == {"expected": "suspended", "panel_shows": "status installing"}
    assert Delivery.objects.filter(event="fleet_alert_staff").count() == 1


def test_admin_lists_repairs_and_dismisses(saga, fleet, drifted, no_drain, client, staff, settings):
    # Nothing automatic: the admin's repair works whatever RECONCILE_REPAIRS says.
    settings.RECONCILE_REPAIRS = []
    job_run(name="reconcile", dry_run=False, triggered_by="test")
    assert PanelOperation.objects.count() == 0
    client.force_login(staff)
    url = reverse("admin:provisioning_driftitem_changelist")
    page = client.get(url, {"state": "open", "kind__exact": "orphan_server"})
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [DriftItem.objects.get(kind="orphan_server")]
    found = client.get(url, {"q": str(fleet["memory"].pk)})
    assert [i.kind for i in found.context["cl"].result_list] == ["limits_mismatch"]

    chosen = DriftItem.objects.filter(
        kind__in=["orphan_server", "limits_mismatch", "port_conflict"]
    )
    response = client.post(
        url,
        {"action": "repair", "_selected_action": [str(i.pk) for i in chosen]},
        follow=True,
    )
    assert [str(m) for m in response.context["messages"]] == [
        "2 repair operation(s) requested, 0 orphan server(s) adopted, 0 already in progress, "
        "1 without an automatic repair (handle by hand)."
    ]
    assert set(PanelOperation.objects.values_list("kind", "requested_by")) == {
        (PanelOperationKind.DELETE_ORPHAN_SERVER, "staff:staff@example.com"),
        (PanelOperationKind.REAPPLY_BUILD, "staff:staff@example.com"),
    }

    # Staff who may only look see the list without the actions.
    viewer = get_user_model().objects.create_user(username="viewer@example.com", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_driftitem"))
    client.force_login(viewer)
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["action_form"] is None  # no repair, no dismiss
    client.force_login(staff)

    port = DriftItem.objects.get(kind="port_conflict")
    response = client.post(
        url, {"action": "dismiss", "_selected_action": [str(port.pk)]}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == ["1 drift item(s) dismissed."]
    port.refresh_from_db()
    assert (port.resolution, port.resolved_by) == (
        "dismissed by staff:staff@example.com",
        "staff:staff@example.com",
    )
