"""The `health` job against the panel simulator: per-server health rows, incidents alerted once,
a panel outage that changes nothing, automatic restarts at most once per interval, the cost of
the fleet read, and dry runs."""

import datetime as dt
import math

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from billing.services.payments import payment_record_manual
from common.actors import Actor
from common.jobs import job_run
from notifications.models import Delivery
from provisioning.fleet.health import health_job
from provisioning.live import server_power_signal
from provisioning.models import PanelOperation, PanelOperationKind, PanelOperationStatus
from servers.models import DeploymentStatus, HealthIncident, ServerHealth
from tests.benchmarks.bench_fleet_health import seed_fleet
from tests.factories import LocationFactory

SERVERS_PATH = "/api/application/servers"


@pytest.fixture
def active(saga, place_order, staff, settings):
    settings.PTERODACTYL_CLIENT_API_KEY = saga.sim.seed.client_api_key
    settings.AUTO_RESTART_CRASHED_SERVERS = False
    order = place_order()
    payment_record_manual(
        invoice_id=order.invoices.get().pk, reference="R", actor=Actor.staff(staff)
    )
    order.deployment.refresh_from_db()
    assert order.deployment.status == DeploymentStatus.ACTIVE
    assert saga.panel.servers[order.deployment.panel_server_id].power_state == "running"
    return order.deployment


@pytest.fixture
def clock():
    """Moments after the saga, one per health run (the simulator's clock follows them too, so
    its 20 s stats cache has expired at each run)."""
    start = (timezone.now() + dt.timedelta(hours=1)).replace(microsecond=0)
    return [start + dt.timedelta(minutes=5 * n) for n in range(10)]


def run_at(moment: dt.datetime, *, dry_run: bool = False) -> dict:
    with time_machine.travel(moment, tick=False):
        return health_job(dry_run=dry_run)


def alerts() -> list[Delivery]:
    return list(Delivery.objects.filter(event="fleet_alert_staff").order_by("pk"))


def read_at(moment: dt.datetime) -> int:
    return ServerHealth.objects.filter(resources_checked_at=moment).count()


def list_calls(saga, since: int) -> int:
    return sum(1 for m, p, _ in list(saga.sim.calls)[since:] if m == "GET" and p == SERVERS_PATH)


def test_stopped_server_shows_offline_after_one_run_and_running_again_later(
    saga, active, clock, staff, client
):
    server = saga.panel.servers[active.panel_server_id]
    counts = run_at(clock[0])
    health = ServerHealth.objects.get(deployment=active)
    assert (health.reachable, health.installed, health.suspended_on_panel) == (True, True, False)
    assert (health.panel_status, health.power_state, health.last_error) == ("", "running", "")
    assert health.power_state_since < clock[0]  # started after the install, from its uptime
    assert health.last_checked_at == health.resources_checked_at == clock[0]
    assert health.panel_server_id == active.panel_server_id
    assert (counts["checked"], counts["offline"], counts["incidents_opened"]) == (1, 0, 0)

    saga.panel.power(server, "stop")  # crashed: no power action of the customer
    counts = run_at(clock[1])
    health.refresh_from_db()
    assert (health.power_state, health.power_state_since) == ("offline", clock[1])
    assert (counts["offline"], counts["incidents_opened"], counts["alerts_sent"]) == (1, 1, 1)
    incident = HealthIncident.objects.get()
    assert (incident.kind, incident.deployment_id, incident.opened_at) == (
        "server_offline",
        active.pk,
        clock[1],
    )
    (alert,) = alerts()
    assert alert.event_key == f"health:{incident.pk}"
    assert alert.context["title"] == f"Server offline: {active.name}"
    assert alert.context["admin_url"].endswith(f"/admin/servers/serverhealth/{active.pk}/change/")
    assert alert.context["customer_email"] == active.customer.email

    # The fleet health page shows it offline.
    client.force_login(staff)
    page = client.get(reverse("admin:servers_serverhealth_changelist") + "?power_state=offline")
    assert page.status_code == 200
    assert f"#{active.pk} {active.name}" in page.content.decode()
    page = client.get(reverse("admin:servers_serverhealth_changelist") + "?power_state=running")
    assert f"#{active.pk} {active.name}" not in page.content.decode()
    for term in (active.name, str(active.pk), "no-such-server"):
        page = client.get(reverse("admin:servers_serverhealth_changelist"), {"q": term})
        assert page.status_code == 200
        assert (f"#{active.pk} {active.name}" in page.content.decode()) is (
            term != "no-such-server"
        )
    assert client.get(reverse("admin:servers_healthincident_changelist") + "?open=yes").status_code
    assert client.get(reverse("admin:servers_serverhealth_change", args=[active.pk])).status_code

    run_at(clock[2])  # still offline: same incident, no second alert
    health.refresh_from_db()
    assert (health.power_state, health.power_state_since) == ("offline", clock[1])
    incident.refresh_from_db()
    assert (incident.checks, incident.last_seen_at, incident.closed_at) == (2, clock[2], None)
    assert len(alerts()) == 1

    started = clock[2] + dt.timedelta(minutes=1)
    with time_machine.travel(started, tick=False):
        saga.panel.power(server, "start")
    counts = run_at(clock[3])
    health.refresh_from_db()
    assert (health.power_state, health.power_state_since) == ("running", started)  # uptime
    assert counts["incidents_closed"] == 1
    incident.refresh_from_db()
    assert incident.closed_at == clock[3]
    assert len(alerts()) == 1


def test_a_server_the_customer_stopped_is_offline_without_incident_or_restart(
    saga, active, clock, customer, settings
):
    settings.AUTO_RESTART_CRASHED_SERVERS = True
    server_power_signal(deployment_id=active.pk, user=customer, signal="stop")
    counts = run_at(clock[0])
    assert ServerHealth.objects.get(deployment=active).power_state == "offline"
    assert (counts["offline"], counts["incidents_opened"], counts["restarts_requested"]) == (
        1,
        0,
        0,
    )
    assert HealthIncident.objects.count() == 0
    assert PanelOperation.objects.count() == 0
    assert alerts() == []


def test_server_deleted_on_the_panel_is_one_missing_incident_alerted_once(saga, active, clock):
    run_at(clock[0])
    saga.panel.delete_server(saga.panel.servers[active.panel_server_id], force=True)
    results = [run_at(moment) for moment in clock[1:4]]

    assert [r["missing"] for r in results] == [1, 1, 1]
    assert [r["incidents_opened"] for r in results] == [1, 0, 0]
    assert [r["alerts_sent"] for r in results] == [1, 0, 0]
    incident = HealthIncident.objects.get()
    assert (incident.kind, incident.deployment_id, incident.closed_at) == (
        "server_missing",
        active.pk,
        None,
    )
    assert (incident.opened_at, incident.last_seen_at, incident.checks) == (
        clock[1],
        clock[3],
        3,
    )
    (alert,) = alerts()
    assert alert.event_key == f"health:{incident.pk}"
    assert alert.context["title"] == f"Server missing on the panel: {active.name}"
    health = ServerHealth.objects.get(deployment=active)
    assert (health.reachable, health.power_state, health.power_state_since) == (False, "", None)
    assert health.last_error == "Not in the panel's server list."
    assert health.last_checked_at == clock[3]


def test_panel_outage_is_one_incident_one_alert_and_changes_no_server(saga, active, clock):
    run_at(clock[0])
    before = ServerHealth.objects.values().get(deployment=active)
    # Would be seen offline (and alerted) by a successful run.
    saga.panel.power(saga.panel.servers[active.panel_server_id], "stop")
    saga.fault("status", method="GET", path=f"^{SERVERS_PATH}$", status=502, times=None)

    calls_before = len(saga.sim.calls)
    results = [run_at(moment) for moment in clock[1:4]]
    assert [r["panel"] for r in results] == ["unreachable"] * 3
    assert [r["application_api_calls"] for r in results] == [1, 1, 1]
    assert [r["incidents_opened"] for r in results] == [1, 0, 0]
    assert [r["alerts_sent"] for r in results] == [1, 0, 0]
    assert "502" in results[0]["error"]
    assert list_calls(saga, calls_before) == 3
    assert not [c for c in list(saga.sim.calls)[calls_before:] if c[1].startswith("/api/client")]
    assert ServerHealth.objects.values().get(deployment=active) == before
    incident = HealthIncident.objects.get()
    assert (incident.kind, incident.deployment_id, incident.checks) == (
        "panel_unreachable",
        None,
        3,
    )
    (alert,) = alerts()
    assert alert.event_key == f"health:{incident.pk}"
    assert alert.context["title"] == "Panel unreachable: health checks paused"

    saga.sim.faults.clear()  # the panel is back: the work resumes
    counts = run_at(clock[4])
    assert (counts["panel"], counts["incidents_closed"], counts["offline"]) == ("ok", 1, 1)
    incident.refresh_from_db()
    assert incident.closed_at == clock[4]
    health = ServerHealth.objects.get(deployment=active)
    assert (health.power_state, health.power_state_since) == ("offline", clock[4])
    assert HealthIncident.objects.get(closed_at__isnull=True).kind == "server_offline"
    assert len(alerts()) == 2


def test_crashed_server_is_restarted_at_most_once_per_interval(saga, active, clock, settings):
    settings.AUTO_RESTART_CRASHED_SERVERS = True
    settings.AUTO_RESTART_MIN_INTERVAL_MINUTES = 30
    server = saga.panel.servers[active.panel_server_id]

    server_power_signal(deployment_id=active.pk, user=active.customer, signal="restart")
    saga.panel.power(server, "stop")  # crashed after the customer's restart
    counts = run_at(clock[0])
    assert counts["restarts_requested"] == 1
    operation = PanelOperation.objects.get()
    assert (operation.kind, operation.deployment_id, operation.requested_by) == (
        PanelOperationKind.RESTART,
        active.pk,
        "system:health",
    )
    assert operation.created_at == clock[0]
    assert (
        operation.reason
        == f"Health: offline since {clock[0]:%Y-%m-%d %H:%M} UTC, should be running"
    )
    # The drain (run eagerly here) started it again.
    operation.refresh_from_db()
    assert operation.status == PanelOperationStatus.SUCCEEDED
    assert server.power_state == "running"
    audit = active.events.filter(reason__startswith="Health: automatic restart requested")
    assert [(e.actor_label, e.from_status, e.to_status) for e in audit] == [
        ("system:health", "active", "active")
    ]

    saga.panel.power(server, "stop")  # crashes again within the interval: left offline
    counts = run_at(clock[2])  # 10 minutes later
    assert (counts["offline"], counts["restarts_requested"]) == (1, 0)
    assert PanelOperation.objects.count() == 1
    assert server.power_state == "offline"

    counts = run_at(clock[0] + dt.timedelta(minutes=30))  # the interval is over
    assert counts["restarts_requested"] == 1
    assert PanelOperation.objects.filter(kind=PanelOperationKind.RESTART).count() == 2
    assert server.power_state == "running"
    assert audit.all().count() == 2  # (a fresh query: `audit` was evaluated above)


@pytest.mark.parametrize("servers_on_panel", [100, 101, 250])
def test_the_fleet_read_costs_ceil_n_over_100_list_calls(
    saga, active, clock, settings, servers_on_panel
):
    settings.HEALTH_RESOURCE_CHECKS_PER_RUN = 3
    location = LocationFactory(short_code="bulk")
    seed_fleet(saga.sim, count=servers_on_panel - 1, customer=active.customer, location=location)
    assert len(saga.panel.servers) == servers_on_panel

    calls_before = len(saga.sim.calls)
    counts = run_at(clock[0])
    expected = math.ceil(servers_on_panel / 100)
    assert list_calls(saga, calls_before) == counts["application_api_calls"] == expected
    client_calls = [
        c for c in list(saga.sim.calls)[calls_before:] if c[1].startswith("/api/client")
    ]
    assert len(client_calls) == counts["client_api_calls"] == counts["checked"] == 3
    assert counts["servers_on_panel"] == counts["deployments"] == servers_on_panel
    assert ServerHealth.objects.filter(last_checked_at=clock[0]).count() == servers_on_panel
    assert ServerHealth.objects.filter(resources_checked_at=clock[0]).count() == 3


def test_resource_reads_stay_in_budget_stalest_first_and_a_failed_read_records_nothing(
    saga, active, clock, settings
):
    settings.HEALTH_RESOURCE_CHECKS_PER_RUN = 2
    location = LocationFactory(short_code="bulk")
    seed_fleet(saga.sim, count=4, customer=active.customer, location=location)
    for moment in clock[:2]:
        counts = run_at(moment)
        assert (counts["checked"], counts["client_api_calls"]) == (2, 2)
    assert (read_at(clock[0]), read_at(clock[1])) == (2, 2)
    # Five servers, two a run: the one never read goes first, then one of the stalest.
    never = ServerHealth.objects.get(resources_checked_at__isnull=True)
    identifier = saga.panel.servers[never.panel_server_id].uuid_short
    saga.fault("status", method="GET", path=f"/servers/{identifier}/resources$", status=502)

    counts = run_at(clock[2])
    assert (counts["checked"], counts["check_errors"], counts["client_api_calls"]) == (1, 1, 2)
    never.refresh_from_db()
    assert (never.power_state, never.resources_checked_at) == ("", None)  # nothing recorded
    assert never.last_checked_at == clock[2]  # the list read still saw it
    assert (read_at(clock[0]), read_at(clock[1]), read_at(clock[2])) == (1, 2, 1)


def test_a_crashed_server_is_read_again_first_so_its_incident_closes(saga, active, clock, settings):
    location = LocationFactory(short_code="bulk")
    seed_fleet(saga.sim, count=3, customer=active.customer, location=location)
    server = saga.panel.servers[active.panel_server_id]
    saga.panel.power(server, "stop")
    settings.HEALTH_RESOURCE_CHECKS_PER_RUN = 4
    assert run_at(clock[0])["incidents_opened"] == 1  # every server read once

    settings.HEALTH_RESOURCE_CHECKS_PER_RUN = 2  # one slot for the open incident, one in turn
    run_at(clock[1])
    with time_machine.travel(clock[1] + dt.timedelta(minutes=1), tick=False):
        saga.panel.power(server, "start")
    counts = run_at(clock[2])
    health = ServerHealth.objects.get(deployment=active)
    # Two others still date from clock[0]: in turn, this one would not have been read again.
    assert (health.resources_checked_at, health.power_state) == (clock[2], "running")
    assert counts["incidents_closed"] == 1
    assert read_at(clock[0]) == 1


def test_a_run_costs_the_same_statements_for_5_or_55_servers(saga, active, clock, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.HEALTH_RESOURCE_CHECKS_PER_RUN = 0
    location = LocationFactory(short_code="bulk")
    seed_fleet(saga.sim, count=4, customer=active.customer, location=location)
    run_at(clock[0])
    with CaptureQueriesContext(connection) as small:
        run_at(clock[1])
    seed_fleet(saga.sim, count=50, customer=active.customer, location=location)
    run_at(clock[2])
    with CaptureQueriesContext(connection) as large:
        run_at(clock[3])
    assert ServerHealth.objects.filter(last_checked_at=clock[3]).count() == 55
    assert len(large) == len(small)


def test_many_new_incidents_at_once_are_one_summary_alert(saga, active, clock):
    location = LocationFactory(short_code="bulk")
    ids = seed_fleet(saga.sim, count=25, customer=active.customer, location=location)
    run_at(clock[0])
    for deployment_id in ids:
        server_id = ServerHealth.objects.get(deployment_id=deployment_id).panel_server_id
        saga.panel.delete_server(saga.panel.servers[server_id], force=True)

    counts = run_at(clock[1])
    assert (counts["missing"], counts["incidents_opened"], counts["alerts_sent"]) == (25, 25, 1)
    (alert,) = alerts()
    assert alert.event_key.startswith("health:burst:")
    assert alert.context["title"] == "25 new fleet health incidents"
    assert HealthIncident.objects.filter(alerted_at=clock[1]).count() == 25
    assert run_at(clock[2])["alerts_sent"] == 0
    assert len(alerts()) == 1


def test_failed_install_is_an_incident(saga, active, clock):
    saga.panel.servers[active.panel_server_id].status = "install_failed"
    counts = run_at(clock[0])
    assert counts["install_failed"] == 1
    incident = HealthIncident.objects.get()
    assert (incident.kind, incident.deployment_id) == ("install_failed", active.pk)
    health = ServerHealth.objects.get(deployment=active)
    assert (health.installed, health.panel_status, health.power_state) == (
        False,
        "install_failed",
        "",
    )
    assert counts["client_api_calls"] == 0  # the panel would refuse it (409)


def test_dry_run_reports_and_writes_nothing(saga, active, clock, settings):
    settings.AUTO_RESTART_CRASHED_SERVERS = True
    saga.panel.power(saga.panel.servers[active.panel_server_id], "stop")
    with time_machine.travel(clock[0], tick=False):
        report = job_run(name="health", dry_run=True, triggered_by="test")
    assert report.status == "succeeded"
    counts = report.counts
    assert (counts["checked"], counts["offline"], counts["incidents_opened"]) == (1, 1, 1)
    assert counts["restarts_requested"] == 1
    assert ServerHealth.objects.count() == 0
    assert HealthIncident.objects.count() == 0
    assert PanelOperation.objects.count() == 0
    assert alerts() == []

    saga.fault("status", method="GET", path=f"^{SERVERS_PATH}$", status=503, times=None)
    counts = run_at(clock[1], dry_run=True)
    assert counts["panel"] == "unreachable"
    assert HealthIncident.objects.count() == 0
    assert alerts() == []

    run_at(clock[2])  # a real run during the outage opens the incident ...
    saga.sim.faults.clear()
    counts = run_at(clock[3], dry_run=True)  # ... which a dry run would close, and does not
    assert (counts["panel"], counts["incidents_closed"]) == ("ok", 1)
    assert HealthIncident.objects.get().closed_at is None
    assert ServerHealth.objects.count() == 0
    assert len(alerts()) == 1
