"""Fleet jobs in sets: run_job, renewals and dunning over many servers, the advisory lock,
and the drain of panel operations (priority, budget, retries, killed workers, read-back)."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Invoice, InvoiceEvent, InvoiceKind, InvoiceLine
from billing.services.dunning import dunning_run
from billing.services.renewals import renewals_run
from common.actors import Actor
from common.dates import billing_today
from common.jobs import job_lock, job_run
from common.models import JobRun, JobRunStatus
from notifications.models import Delivery
from provisioning.fleet.drain import panel_operations_drain
from provisioning.fleet.operations import OperationRequest, panel_operations_request
from provisioning.models import PanelOperation, PanelOperationKind, PanelOperationStatus
from servers.models import Deployment, DeploymentEvent, DeploymentStatus
from tests.fleet import fleet_seed
from tests.test_renewals import active  # noqa: F401 (fixture)

DAY = dt.timedelta(days=1)


def _renewal_numbers() -> list[str]:
    return sorted(Invoice.objects.filter(kind=InvoiceKind.RENEWAL).values_list("number", flat=True))


def _expected_numbers(count: int, first: int = 1) -> list[str]:
    year = billing_today().year
    return [f"INV-{year}-{n:06d}" for n in range(first, first + count)]


# --- renewals --------------------------------------------------------------------------------


def test_renewals_issue_each_due_server_once_in_batches(catalog, settings):
    settings.FLEET_BATCH_SIZE = 7
    today = billing_today()
    fleet_seed(count=30, next_due_date=today + 3 * DAY)
    fleet_seed(count=4, next_due_date=today + 30 * DAY)  # not due yet

    first, again = renewals_run(), renewals_run()
    assert (first["invoices"], first["not_priced"], first["batches"]) == (30, 0, 5)
    assert (again["invoices"], again["batches"]) == (0, 0)  # a re-run: nothing to do

    assert _renewal_numbers() == _expected_numbers(30)  # gap-free across batches
    invoices = Invoice.objects.filter(kind=InvoiceKind.RENEWAL)
    assert {i.period_start for i in invoices} == {today + 3 * DAY}
    assert {i.due_date for i in invoices} == {today + 3 * DAY}
    # Bronze renewal 4.00 (no setup fee); the Private Instance add-on on every third server.
    assert InvoiceLine.objects.filter(invoice__in=invoices, kind="plan").count() == 30
    assert InvoiceLine.objects.filter(invoice__in=invoices, kind="addon").count() == 10
    for invoice in invoices.prefetch_related("lines"):
        assert invoice.total == sum(line.amount for line in invoice.lines.all())
        assert invoice.total >= Decimal("4.00")
    assert InvoiceEvent.objects.filter(invoice__in=invoices, to_status="unpaid").count() == 30
    assert Delivery.objects.filter(event="invoice_created").count() == 30


@pytest.mark.postgres  # COPY; the SQLite demo falls back to a savepoint per message
def test_renewal_statements_per_batch_do_not_grow_with_rows(catalog, settings):
    settings.FLEET_BATCH_SIZE = 1000
    today = billing_today()
    fleet_seed(count=3, next_due_date=today + 2 * DAY)
    with CaptureQueriesContext(connection) as few:
        assert renewals_run()["invoices"] == 3
    fleet_seed(count=60, next_due_date=today + 2 * DAY)
    with CaptureQueriesContext(connection) as many:
        assert renewals_run()["invoices"] == 60

    assert len(many.captured_queries) == len(few.captured_queries)
    assert len(many.captured_queries) <= 40  # catalog, one batch, the look-up that ends it


def test_renewals_dry_run_writes_nothing_and_reports(catalog, capsys):
    fleet_seed(count=5, next_due_date=billing_today() + DAY)

    call_command("run_job", "renewals", "--dry-run")

    out = capsys.readouterr().out
    assert "renewals (dry run): succeeded" in out
    assert "invoices: 5" in out
    assert not Invoice.objects.exists()
    run = JobRun.objects.get()
    assert (run.name, run.status, run.dry_run) == ("renewals", JobRunStatus.SUCCEEDED, True)
    assert run.counts["invoices"] == 5
    assert run.triggered_by.startswith("command:")


def test_unknown_job_is_refused(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="invalid choice"):
        call_command("run_job", "everything")


@pytest.mark.postgres
def test_a_run_during_another_is_skipped(catalog, transactional_db):
    fleet_seed(count=3, next_due_date=billing_today() + DAY)
    reports = []

    def other_run() -> None:
        try:
            reports.append(job_run(name="renewals", triggered_by="beat"))
        finally:
            connections.close_all()

    with job_lock("renewals") as held:  # a run holds the lock on this connection
        assert held
        thread = threading.Thread(target=other_run)
        thread.start()
        thread.join()

    assert [r.status for r in reports] == [JobRunStatus.SKIPPED]
    assert not Invoice.objects.exists()
    assert job_run(name="renewals").counts["invoices"] == 3  # lock released: the work happens


@pytest.mark.postgres
def test_overlapping_renewal_runs_issue_each_invoice_exactly_once(
    catalog, transactional_db, settings
):
    """Even without the advisory lock (two workers inside renewals_run at once), each server is
    invoiced once and the numbers stay gap-free: SKIP LOCKED plus the unique index."""
    settings.FLEET_BATCH_SIZE = 25
    fleet_seed(count=300, next_due_date=billing_today() + DAY)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def worker() -> None:
        try:
            barrier.wait()
            results.append(renewals_run())
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    issued = sum(r["invoices"] for r in results)
    # A batch skipped by one worker (locked by the other) is picked up by a later pass.
    issued += renewals_run()["invoices"]
    assert issued == 300
    assert Invoice.objects.filter(kind=InvoiceKind.RENEWAL).count() == 300
    assert _renewal_numbers() == _expected_numbers(300)


# --- dunning ---------------------------------------------------------------------------------


def _overdue_fleet(count: int, *, days_overdue: int, status=DeploymentStatus.ACTIVE):
    today = billing_today()
    due = today - days_overdue * DAY
    fleet = fleet_seed(count=count, next_due_date=due, status=status)
    # Issued a week before the due date, never paid.
    renewals_run(today=due - 7 * DAY)
    return fleet


def test_dunning_messages_and_operations_once_per_server(catalog, settings):
    settings.FLEET_BATCH_SIZE = 8
    fleet = _overdue_fleet(20, days_overdue=settings.SUSPENSION_GRACE_DAYS)

    counts = dunning_run()

    assert counts == {
        "reminders": 0,
        "overdue_notices": 20,
        "suspension_warnings": 0,  # the suspension date is today: it is too late to warn
        "suspend": 20,
        "terminate": 0,
        "unsuspend": 0,
    }
    operations = PanelOperation.objects.filter(kind=PanelOperationKind.SUSPEND)
    assert sorted(operations.values_list("deployment_id", flat=True)) == fleet.deployment_ids
    assert set(operations.values_list("status", flat=True)) == {PanelOperationStatus.PENDING}
    assert operations.first().params == {"source": "dunning", "cause": "nonpayment"}
    assert dunning_run() == dict.fromkeys(counts, 0)  # a second run: nothing again
    assert Delivery.objects.filter(event="invoice_overdue").count() == 20


@pytest.mark.postgres
def test_dunning_statements_do_not_grow_with_servers(catalog, settings):
    settings.FLEET_BATCH_SIZE = 1000
    _overdue_fleet(2, days_overdue=settings.SUSPENSION_GRACE_DAYS)
    with CaptureQueriesContext(connection) as few:
        assert dunning_run()["suspend"] == 2
    _overdue_fleet(40, days_overdue=settings.SUSPENSION_GRACE_DAYS)
    with CaptureQueriesContext(connection) as many:
        assert dunning_run()["suspend"] == 40

    assert len(many.captured_queries) == len(few.captured_queries)


def test_suspension_warning_is_sent_the_day_before(catalog, settings):
    settings.SUSPENSION_WARNING_DAYS = 1
    _overdue_fleet(3, days_overdue=settings.SUSPENSION_GRACE_DAYS - 1)

    counts = dunning_run()

    assert (counts["suspension_warnings"], counts["suspend"]) == (3, 0)
    warning = Delivery.objects.filter(event="suspension_warning").first()
    invoice = Invoice.objects.get(number=warning.context["invoice_number"])
    grace = dt.timedelta(days=settings.SUSPENSION_GRACE_DAYS)
    assert warning.context["suspension_date"] == str(invoice.due_date + grace)
    assert dunning_run()["suspension_warnings"] == 0
    assert Delivery.objects.filter(event="suspension_warning").count() == 3


def test_dunning_dry_run_changes_nothing(catalog, settings):
    _overdue_fleet(4, days_overdue=settings.SUSPENSION_GRACE_DAYS)
    deliveries = Delivery.objects.count()

    assert dunning_run(dry_run=True)["suspend"] == 4

    assert not PanelOperation.objects.exists()
    assert Delivery.objects.count() == deliveries
    assert not Invoice.objects.filter(overdue_notice_sent_at__isnull=False).exists()


# --- the drain -------------------------------------------------------------------------------


def _request(kind, deployment_id, **params):
    return panel_operations_request(
        requests=[
            OperationRequest(kind=kind, reason="test", deployment_id=deployment_id, params=params)
        ],
        actor=Actor.system("test"),
    )


def test_staff_suspension_through_the_drain_is_read_back(saga, active, manual_steps):
    assert _request(PanelOperationKind.SUSPEND, active.pk, cause="staff") == 1
    assert _request(PanelOperationKind.SUSPEND, active.pk, cause="staff") == 0  # one open

    assert panel_operations_drain() == {"succeeded": 1}

    operation = PanelOperation.objects.get()
    assert (operation.status, operation.verified, operation.attempts) == ("succeeded", True, 1)
    active.refresh_from_db()
    assert (active.status, active.suspension_cause) == ("suspended", "staff")
    assert saga.panel.servers[active.panel_server_id].status == "suspended"
    event = DeploymentEvent.objects.filter(deployment=active, to_status="suspended").get()
    assert "verified suspended on the panel" in event.reason
    assert event.actor_label == "system:test"


def test_drain_defers_when_the_operations_budget_is_used_up(saga, active, manual_steps, settings):
    settings.PANEL_OPERATIONS_RATE_LIMIT_PER_MINUTE = 3  # one suspension costs 2 calls
    _request(PanelOperationKind.SUSPEND, active.pk, cause="staff")
    panel_operations_drain()
    _request(PanelOperationKind.UNSUSPEND, active.pk)

    assert panel_operations_drain() == {"deferred_for_budget": 1}

    operation = PanelOperation.objects.get(kind=PanelOperationKind.UNSUSPEND)
    assert (operation.status, operation.attempts) == ("pending", 0)
    assert operation.next_attempt_at > timezone.now()
    assert saga.panel.servers[active.panel_server_id].status == "suspended"  # not sent


def test_retryable_failures_back_off_then_alert_staff_once(saga, active, manual_steps, settings):
    settings.PANEL_OPERATIONS_MAX_ATTEMPTS = 3
    saga.fault("status", method="POST", path=r"/suspend$", status=503, times=10)
    _request(PanelOperationKind.SUSPEND, active.pk, cause="staff")

    assert panel_operations_drain() == {"retrying": 2, "failed": 1}  # backoff 0 in tests

    operation = PanelOperation.objects.get()
    assert (operation.status, operation.attempts) == ("failed", 3)
    assert [entry["result"][:5] for entry in operation.attempt_log] == ["retry", "retry", "faile"]
    alerts = Delivery.objects.filter(event="fleet_alert_staff")
    assert alerts.count() == 1
    assert alerts.get().event_key.startswith("panel-operations-failed:suspend:")  # per kind, hour
    active.refresh_from_db()
    assert active.status == DeploymentStatus.ACTIVE  # nothing pretended


def test_operation_of_a_killed_worker_is_finished_once(saga, active, manual_steps):
    _request(PanelOperationKind.SUSPEND, active.pk, cause="staff")
    # A worker claimed it and died before recording anything: its lease ran out.
    PanelOperation.objects.update(
        status=PanelOperationStatus.RUNNING,
        attempts=1,
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1),
    )

    assert panel_operations_drain() == {"succeeded": 1}
    assert panel_operations_drain() == {}

    assert PanelOperation.objects.get().attempts == 2
    suspends = [c for c in saga.calls("POST", "/api/application/servers/") if "suspend" in c[1]]
    assert len(suspends) == 1
    assert DeploymentEvent.objects.filter(deployment=active, to_status="suspended").count() == 1


def test_most_urgent_operation_runs_first(saga, active, place_order, staff):
    from django.db import transaction

    from tests.test_saga import pay

    second = pay(place_order(addon_slugs=[], plan_slug="starter"), staff).deployment
    with transaction.atomic():  # one commit: the (eager) drain finds both due
        panel_operations_request(
            requests=[
                OperationRequest(
                    kind=PanelOperationKind.TERMINATE, reason="t", deployment_id=active.pk
                ),
                OperationRequest(
                    kind=PanelOperationKind.SUSPEND,
                    reason="s",
                    deployment_id=second.pk,
                    params={"cause": "staff"},
                ),
            ],
            actor=Actor.system("test"),
        )

    ran = PanelOperation.objects.order_by("started_at").values_list("kind", "status")
    assert list(ran) == [
        (PanelOperationKind.SUSPEND, "succeeded"),  # suspensions outrank terminations
        (PanelOperationKind.TERMINATE, "succeeded"),
    ]


# --- review: outages, one drain, paying customers first ----------------------------------


def _suspend_all(deployment_ids):
    return panel_operations_request(
        requests=[
            OperationRequest(
                kind=PanelOperationKind.SUSPEND,
                reason="Abuse report",
                deployment_id=pk,
                params={"cause": "staff"},
            )
            for pk in deployment_ids
        ],
        actor=Actor.system("test"),
    )


@pytest.fixture
def panel_fleet(saga, catalog, customer):
    """Six live servers on the simulator (straight into its state) and in our rows."""
    from tests.benchmarks.bench_fleet_health import seed_fleet
    from tests.factories import LocationFactory

    return seed_fleet(saga.sim, count=6, customer=customer, location=LocationFactory())


def test_panel_outage_pauses_the_drain_with_one_incident(saga, panel_fleet, manual_steps):
    from servers.models import HealthIncident

    saga.fault("status", method="POST", path=r"/suspend$", status=503, times=100)
    _suspend_all(panel_fleet)

    counts = panel_operations_drain()

    assert counts == {"retrying": 3, "circuit_opened": 1}
    incident = HealthIncident.objects.get(closed_at__isnull=True)
    assert incident.kind == "panel_operations_failing"
    alerts = Delivery.objects.filter(event="fleet_alert_staff")
    assert alerts.count() == 1  # one incident, not one per operation
    assert not PanelOperation.objects.filter(status="failed").exists()
    untouched = PanelOperation.objects.filter(attempts=0, status="pending")
    assert untouched.count() == 3  # never tried: no attempt spent

    # Still down: the probe is put back without spending its attempt.
    PanelOperation.objects.update(next_attempt_at=timezone.now())
    assert panel_operations_drain() == {"probe_failed": 1, "paused": 1}
    assert sorted(PanelOperation.objects.values_list("attempts", flat=True)) == [0, 0, 0, 1, 1, 1]

    saga.sim.faults.clear()  # the panel is back
    PanelOperation.objects.update(next_attempt_at=timezone.now())
    assert panel_operations_drain() == {"succeeded": 6, "circuit_closed": 1}
    assert HealthIncident.objects.get().closed_at is not None
    assert alerts.count() == 1
    assert set(Deployment.objects.filter(pk__in=panel_fleet).values_list("status", flat=True)) == {
        DeploymentStatus.SUSPENDED
    }


def test_only_one_drain_runs_at_a_time(saga, panel_fleet, manual_steps):
    _suspend_all(panel_fleet[:1])
    locked, release = threading.Event(), threading.Event()

    def other_drain() -> None:  # holds the drain's lock on its own connection
        try:
            with job_lock("panel-operations-drain") as held:
                assert held
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_drain)
    thread.start()
    assert locked.wait(timeout=30)
    try:
        assert panel_operations_drain() == {"another_drain_running": 1}
    finally:
        release.set()
        thread.join()
    assert panel_operations_drain() == {"succeeded": 1}


def test_a_paid_unsuspension_goes_before_pending_work(saga, panel_fleet, manual_steps):
    deployment_id = panel_fleet[0]
    _request(PanelOperationKind.SUSPEND, deployment_id, cause="nonpayment")
    panel_operations_drain()
    _request(PanelOperationKind.REAPPLY_BUILD, deployment_id)  # pending repair

    from billing.services.dunning import unpaid_server_unsuspend_request

    assert unpaid_server_unsuspend_request(deployment_id=deployment_id, reason="paid") == 1

    repair = PanelOperation.objects.get(kind=PanelOperationKind.REAPPLY_BUILD)
    assert repair.status == "skipped"
    assert repair.outcome.startswith("superseded by a unsuspend")
    unsuspend = PanelOperation.objects.get(kind=PanelOperationKind.UNSUSPEND)
    assert (unsuspend.status, unsuspend.params["source"]) == ("pending", "dunning")


def test_a_paid_unsuspension_waits_for_a_running_operation(saga, panel_fleet, manual_steps):
    deployment_id = panel_fleet[0]
    _request(PanelOperationKind.SUSPEND, deployment_id, cause="nonpayment")
    PanelOperation.objects.update(
        status="running", attempts=1, lease_expires_at=timezone.now() + dt.timedelta(minutes=5)
    )
    from billing.services.dunning import unpaid_server_unsuspend_request

    assert unpaid_server_unsuspend_request(deployment_id=deployment_id, reason="paid") == 0

    running = PanelOperation.objects.get()
    assert running.params["follow_up"]["kind"] == PanelOperationKind.UNSUSPEND
    # The running one ends (its lease runs out and the drain finishes it): the follow-up comes.
    PanelOperation.objects.update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    panel_operations_drain()
    kinds = list(PanelOperation.objects.order_by("pk").values_list("kind", "status"))
    assert kinds[0] == (PanelOperationKind.SUSPEND, "succeeded")
    assert kinds[1][0] == PanelOperationKind.UNSUSPEND


def test_servers_missing_from_a_list_are_looked_up_before_they_count(saga, panel_fleet):
    from provisioning.fleet.budget import fleet_panel_client, servers_confirm_absent
    from servers.models import Deployment as D

    server_ids = sorted(
        D.objects.filter(pk__in=panel_fleet).values_list("panel_server_id", flat=True)
    )
    del saga.panel.servers[server_ids[0]]  # really gone

    found = servers_confirm_absent(client=fleet_panel_client(), absent_ids=server_ids[:3])

    assert sorted(found) == server_ids[1:3]
