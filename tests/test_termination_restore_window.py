"""Termination that keeps what customers ask for (issue 12, item 7), against the simulator:
the restore window (TERMINATION_RESTORE_WINDOW_DAYS: kept suspended on the panel, restorable
by staff, deleted by the terminated_servers_purge job once due) and the final backup
(TERMINATION_FINAL_BACKUP: taken through the client API before the deletion, waited for across
drain turns; a refusal does not block the deletion)."""

import datetime as dt
import re
from contextlib import contextmanager

import pytest
import responses
import time_machine
from django.urls import reverse
from django.utils import timezone

from billing.models import Invoice, InvoiceKind, InvoiceStatus, OrderStatus
from billing.services.payments import payment_record_manual
from billing.services.renewals import renewals_run
from common.actors import Actor
from common.dates import billing_today
from common.errors import ConflictError
from common.jobs import job_run
from config.celery import app as celery_app
from panel_simulator.testing import install_responses
from provisioning import operations
from provisioning.fleet.drain import panel_operations_drain
from provisioning.models import DriftItem, PanelOperation
from provisioning.termination import terminated_servers_purge
from servers.models import Deployment, DeploymentStatus
from tests.conftest import PANEL_URL
from tests.support import redis_clear_own_keys

DAY = dt.timedelta(days=1)


@pytest.fixture
def world(saga, settings):
    settings.PTERODACTYL_CLIENT_API_KEY = saga.sim.seed.client_api_key
    settings.PTERODACTYL_CLIENT_RATE_LIMIT_PER_MINUTE = 1_000_000
    return saga


@pytest.fixture
def order_active(world, place_order, staff):
    def _active():
        order = place_order()
        payment_record_manual(
            invoice_id=order.invoices.get().pk,
            reference=f"R-{order.pk}",
            actor=Actor.staff(staff),
        )
        order.refresh_from_db()
        assert order.status == OrderStatus.COMPLETED
        return order.deployment

    return _active


@pytest.fixture
def by_hand():
    """From here on, tasks are queued, not run: the test drives the drain itself (like the
    manual_steps fixture, but after the servers were provisioned eagerly)."""

    @contextmanager
    def _by_hand():
        celery_app.conf.task_always_eager = False
        try:
            yield
        finally:
            celery_app.conf.task_always_eager = True
            redis_clear_own_keys()

    return _by_hand


def _terminate(deployment, staff, reason="Cancelled"):
    return operations.deployment_terminate(
        deployment_id=deployment.pk, actor=Actor.staff(staff), reason=reason
    )


def _reasons(deployment):
    return [e.reason for e in Deployment.objects.get(pk=deployment.pk).events.order_by("pk")]


# --- the restore window ----------------------------------------------------------------------


def test_window_keeps_the_panel_server_suspended_and_the_deployment_terminated(
    world, order_active, staff, settings
):
    settings.TERMINATION_RESTORE_WINDOW_DAYS = 7
    deployment = order_active()
    server_id = deployment.panel_server_id
    before = timezone.now()

    done = _terminate(deployment, staff)

    assert done.panel_verified is True
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.TERMINATED
    assert deployment.terminated_at is not None
    assert before + 7 * DAY <= deployment.panel_deletion_due_at <= timezone.now() + 7 * DAY
    assert deployment.panel_server_id == server_id  # still known: it still exists
    assert (deployment.final_backup_status, deployment.final_backup_uuid) == ("", "")
    assert world.panel.servers[server_id].status == "suspended"
    assert world.calls("DELETE", "/api/application/servers") == []
    assert len(world.panel.users) == 3  # the customer's panel user stays with its server
    event = deployment.events.order_by("pk").last()
    assert (event.from_status, event.to_status) == ("active", "terminated")
    assert "kept suspended on the panel, restorable by staff until" in event.reason
    assert event.reason.endswith("(7-day restore window); verified suspended on the panel")
    # Billing sees a terminated server: the order stays completed.
    assert deployment.order.status == OrderStatus.COMPLETED
    # The reconcile job does not take the kept server for an orphan to delete.
    assert job_run(name="reconcile").status == "succeeded"
    assert not DriftItem.objects.filter(panel_server_id=server_id).exists()
    assert server_id in world.panel.servers


def test_purge_deletes_only_the_past_due_and_is_idempotent(
    world, order_active, staff, settings, by_hand
):
    settings.TERMINATION_RESTORE_WINDOW_DAYS = 3
    settings.FLEET_BATCH_SIZE = 1
    early, late, live = order_active(), order_active(), order_active()
    with time_machine.travel(timezone.now() - 4 * DAY):
        _terminate(early, staff)
    _terminate(late, staff)
    early.refresh_from_db()
    late.refresh_from_db()
    early_server, late_server = early.panel_server_id, late.panel_server_id

    with by_hand():
        assert terminated_servers_purge(dry_run=True) == {"due": 1, "requested": 0}
        assert PanelOperation.objects.count() == 0
        assert terminated_servers_purge() == {"due": 1, "requested": 1}
        assert terminated_servers_purge() == {"due": 0, "requested": 0}  # one open operation
        assert panel_operations_drain() == {"succeeded": 1}

        assert early_server not in world.panel.servers
        assert world.panel.servers[late_server].status == "suspended"
        assert world.panel.servers[live.panel_server_id].status is None
        early.refresh_from_db()
        assert (early.status, early.panel_server_id, early.panel_deletion_due_at) == (
            DeploymentStatus.TERMINATED,
            None,
            None,
        )
        assert early.panel_identifier == ""
        assert early.panel_server_uuid  # kept: backups are filed under it
        last = early.events.order_by("pk").last()
        assert last.reason.startswith(f"Panel server #{early_server} deleted (terminated ")
        assert last.reason.endswith("; verified deleted on the panel")
        assert last.actor_label == "system:termination purge"
        operation = PanelOperation.objects.get()
        assert (operation.status, operation.verified, operation.params["source"]) == (
            "succeeded",
            True,
            "termination_purge",
        )
        # A re-run finds nothing; later the other one is due in turn.
        assert terminated_servers_purge() == {"due": 0, "requested": 0}
        assert panel_operations_drain() == {}
        with time_machine.travel(timezone.now() + 3 * DAY + dt.timedelta(minutes=1)):
            assert terminated_servers_purge() == {"due": 1, "requested": 1}
            assert panel_operations_drain() == {"succeeded": 1}
        assert late_server not in world.panel.servers
        assert world.panel.servers[live.panel_server_id].status is None


def test_purge_job_is_registered_and_runs_through_run_job(world, order_active, staff, settings):
    settings.TERMINATION_RESTORE_WINDOW_DAYS = 1
    deployment = order_active()
    _terminate(deployment, staff)
    with time_machine.travel(timezone.now() + 2 * DAY):
        report = job_run(name="terminated_servers_purge", triggered_by="test")
    assert (report.status, report.counts) == ("succeeded", {"due": 1, "requested": 1})
    deployment.refresh_from_db()
    assert deployment.panel_server_id is None  # the eager drain ran it


def test_restore_within_the_window_brings_it_back_active_and_verified(
    world, order_active, staff, settings, client
):
    settings.TERMINATION_RESTORE_WINDOW_DAYS = 7
    deployment = order_active()
    due_date = deployment.next_due_date
    _terminate(deployment, staff)
    server = world.panel.servers[deployment.panel_server_id]
    assert server.status == "suspended"

    client.force_login(staff)
    changelist = reverse("admin:servers_deployment_changelist")
    page = client.post(changelist, {"action": "restore", "_selected_action": [deployment.pk]})
    assert b"Yes, unsuspend these servers" in page.content
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.TERMINATED  # nothing without confirmation
    page = client.post(
        changelist,
        {
            "action": "restore",
            "_selected_action": [deployment.pk],
            "apply": "1",
            "reason": "Customer paid by bank transfer, ticket #881",
            "confirm": "on",
        },
        follow=True,
    )
    text = page.content.decode()
    assert "restored and active again" in text
    assert "the renewal job issues the next renewal invoice" in text

    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.ACTIVE
    assert server.status is None  # unsuspended on the panel
    assert deployment.panel_deletion_due_at is None
    assert deployment.terminated_at is None
    assert deployment.next_due_date == due_date  # left as it was
    assert deployment.order.status == OrderStatus.COMPLETED
    event = deployment.events.order_by("pk").last()
    assert (event.from_status, event.to_status, event.actor_label) == (
        "terminated",
        "active",
        "staff:staff@example.com",
    )
    assert event.reason == (
        "Restored within the restore window by staff:staff@example.com: Customer paid by bank "
        f"transfer, ticket #881; verified unsuspended on the panel; next due date "
        f"{due_date:%Y-%m-%d} unchanged"
    )
    # Live again: it can be suspended and terminated as any active server.
    operations.deployment_suspend(
        deployment_id=deployment.pk, actor=Actor.staff(staff), reason="check"
    )
    assert server.status == "suspended"


def test_restore_after_the_window_is_refused(world, order_active, staff, settings, by_hand):
    settings.TERMINATION_RESTORE_WINDOW_DAYS = 2
    deployment = order_active()
    _terminate(deployment, staff)
    server = world.panel.servers[deployment.panel_server_id]
    events = deployment.events.count()

    with by_hand():
        with time_machine.travel(timezone.now() + 2 * DAY + dt.timedelta(seconds=1)):
            with pytest.raises(ConflictError) as caught:
                operations.deployment_restore(deployment_id=deployment.pk, actor=Actor.staff(staff))
            assert caught.value.code == "restore_window_closed"
            assert "ended at" in caught.value.message
            assert server.status == "suspended"  # nothing was sent
            assert world.calls("POST", f"/api/application/servers/{server.id}/unsuspend") == []
            deployment.refresh_from_db()
            assert deployment.status == DeploymentStatus.TERMINATED
            assert deployment.events.count() == events
            # Purged: nothing left to restore.
            terminated_servers_purge()
            assert panel_operations_drain() == {"succeeded": 1}
        with pytest.raises(ConflictError) as caught:
            operations.deployment_restore(deployment_id=deployment.pk, actor=Actor.staff(staff))
        assert caught.value.code == "restore_window_closed"
        assert "nothing to restore" in caught.value.message


def test_restore_is_refused_when_the_panel_server_is_gone(world, order_active, staff, settings):
    settings.TERMINATION_RESTORE_WINDOW_DAYS = 7
    deployment = order_active()
    _terminate(deployment, staff)
    world.panel.delete_server(world.panel.servers[deployment.panel_server_id], force=True)
    with pytest.raises(operations.PanelServerMissing):
        operations.deployment_restore(deployment_id=deployment.pk, actor=Actor.staff(staff))
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.TERMINATED


def test_restore_is_refused_unless_the_panel_confirms(world, order_active, staff, settings):
    settings.TERMINATION_RESTORE_WINDOW_DAYS = 7
    deployment = order_active()
    _terminate(deployment, staff)
    # Wings down: the unsuspension is refused (504) and rolled back on the panel.
    world.panel.set_wings_failure(world.sim.seed.eu_node_id, 0)
    with pytest.raises(operations.PanelOperationFailed):
        operations.deployment_restore(deployment_id=deployment.pk, actor=Actor.staff(staff))
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.TERMINATED
    assert deployment.panel_deletion_due_at is not None


def test_without_the_settings_termination_deletes_at_once(world, order_active, staff):
    deployment = order_active()
    server_id = deployment.panel_server_id
    _terminate(deployment, staff)
    deployment.refresh_from_db()
    assert server_id not in world.panel.servers
    assert deployment.panel_deletion_due_at is None
    assert deployment.final_backup_status == ""
    assert world.panel.backups == {}
    with pytest.raises(ConflictError) as caught:
        operations.deployment_restore(deployment_id=deployment.pk, actor=Actor.staff(staff))
    assert caught.value.code == "restore_window_closed"


# --- the final backup ------------------------------------------------------------------------


def test_final_backup_is_taken_before_the_deletion(world, order_active, staff, settings, by_hand):
    settings.TERMINATION_FINAL_BACKUP = True
    world.panel.backup_delay = 300
    deployment = order_active()
    server_id, identifier = deployment.panel_server_id, deployment.panel_identifier
    # Suspended first (as dunning does): the panel refuses backups of suspended servers.
    operations.deployment_suspend(
        deployment_id=deployment.pk, actor=Actor.system("dunning"), reason="unpaid"
    )
    _terminate(deployment, staff)
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.TERMINATED
    assert deployment.final_backup_status == "wanted"
    assert deployment.panel_deletion_due_at <= timezone.now()  # no window: due at once
    assert world.panel.servers[server_id].status == "suspended"

    with by_hand():
        assert terminated_servers_purge() == {"due": 1, "requested": 1}
        assert panel_operations_drain() == {"waiting": 1}
        deployment.refresh_from_db()
        assert deployment.final_backup_status == "pending"
        (backup,) = world.panel.backups.values()
        assert (backup.uuid, backup.name, backup.is_locked) == (
            deployment.final_backup_uuid,
            f"final-{deployment.pk}",
            True,
        )
        assert backup.completed_at is None
        assert server_id in world.panel.servers
        operation = PanelOperation.objects.get()
        assert (operation.status, operation.attempts) == ("pending", 0)  # waiting, not failing
        assert operation.outcome == f"waiting for the final backup {backup.uuid}"
        assert terminated_servers_purge() == {"due": 0, "requested": 0}  # still open
        assert panel_operations_drain() == {}  # its next turn is not due yet

        with time_machine.travel(timezone.now() + dt.timedelta(seconds=120)):
            assert panel_operations_drain() == {"waiting": 1}  # Wings is still at it
        assert server_id in world.panel.servers
        with time_machine.travel(timezone.now() + dt.timedelta(seconds=400)):
            assert panel_operations_drain() == {"succeeded": 1}

        assert server_id not in world.panel.servers
        deployment.refresh_from_db()
        assert (deployment.final_backup_status, deployment.panel_server_id) == ("completed", None)
        calls = [
            (method, path)
            for method, path, _status in world.sim.calls
            if path.startswith(
                (
                    f"/api/client/servers/{identifier}/backups",
                    f"/api/application/servers/{server_id}",
                )
            )
        ]
        creates = calls.index(("POST", f"/api/client/servers/{identifier}/backups"))
        deletes = calls.index(("DELETE", f"/api/application/servers/{server_id}/force"))
        # Unsuspended first, then looked up by name (a lost reply never starts a second one).
        assert calls[creates - 2 : creates] == [
            ("POST", f"/api/application/servers/{server_id}/unsuspend"),
            ("GET", f"/api/client/servers/{identifier}/backups"),
        ]
        assert creates < deletes
        reasons = _reasons(deployment)
        assert any(r.startswith(f"Final backup final-{deployment.pk} requested") for r in reasons)
        assert any(
            r.startswith(f"Final backup final-{deployment.pk} completed on the panel")
            for r in reasons
        )
        assert f"final backup {backup.uuid} kept in the backup storage" in reasons[-1]


def test_a_refused_final_backup_does_not_block_the_deletion(
    world, order_active, staff, settings, by_hand
):
    settings.TERMINATION_FINAL_BACKUP = True
    deployment = order_active()
    server_id = deployment.panel_server_id
    world.panel.servers[server_id].backup_limit = 0  # a plan without backups
    _terminate(deployment, staff)

    with by_hand():
        terminated_servers_purge()
        assert panel_operations_drain() == {"succeeded": 1}

        assert server_id not in world.panel.servers
        assert world.panel.backups == {}
        deployment.refresh_from_db()
        assert (deployment.final_backup_status, deployment.final_backup_uuid) == ("refused", "")
        reasons = _reasons(deployment)
        assert reasons[-2] == (
            "Final backup not taken: Cannot create a new backup, this server has reached its limit "
            "of 0 backups.; the panel server is deleted without it"
        )
        assert "without a final backup (refused)" in reasons[-1]


def test_a_throttled_final_backup_is_retried_and_the_server_suspended_meanwhile(
    world, order_active, staff, settings, by_hand
):
    settings.TERMINATION_FINAL_BACKUP = True
    settings.PTERODACTYL_HTTP_MAX_RETRIES = 0
    deployment = order_active()
    server = world.panel.servers[deployment.panel_server_id]
    server.backup_limit = 5
    world.panel.create_backup(server, {"name": "customer 1"})
    world.panel.create_backup(server, {"name": "customer 2"})  # the throttle: 2 per 10 min
    _terminate(deployment, staff)

    with by_hand():
        terminated_servers_purge()
        assert panel_operations_drain() == {"retrying": 1}
        operation = PanelOperation.objects.get()
        assert operation.status == "pending"
        assert "429" in operation.last_error
        assert server.status == "suspended"  # not left unsuspended between attempts
        deployment.refresh_from_db()
        assert deployment.final_backup_status == "wanted"
        with time_machine.travel(timezone.now() + dt.timedelta(minutes=11)):
            assert panel_operations_drain() == {"waiting": 1}
            world.panel.tick()
        with time_machine.travel(timezone.now() + dt.timedelta(minutes=13)):
            assert panel_operations_drain() == {"succeeded": 1}
        deployment.refresh_from_db()
        assert deployment.final_backup_status == "completed"
        assert deployment.panel_server_id is None


def test_window_and_final_backup_together(world, order_active, staff, settings, by_hand):
    settings.TERMINATION_FINAL_BACKUP = True
    settings.TERMINATION_RESTORE_WINDOW_DAYS = 5
    deployment = order_active()
    _terminate(deployment, staff)
    with by_hand():
        assert terminated_servers_purge() == {"due": 0, "requested": 0}  # in the window
        assert world.panel.backups == {}  # nothing taken while it may still come back
        with time_machine.travel(timezone.now() + 6 * DAY):
            assert terminated_servers_purge() == {"due": 1, "requested": 1}
            assert panel_operations_drain() == {"waiting": 1}
        with time_machine.travel(timezone.now() + 6 * DAY + dt.timedelta(minutes=2)):
            assert panel_operations_drain() == {"succeeded": 1}
        deployment.refresh_from_db()
        assert (deployment.final_backup_status, deployment.panel_server_id) == ("completed", None)


def test_restore_after_the_paid_period_ended_restarts_it_today_and_renewal_invoices_it(
    world, order_active, staff, settings
):
    """Billing's side of a restore: a server terminated for non-payment is past its paid-through
    date; restored, its period restarts today and the renewal job invoices from today."""
    settings.TERMINATION_RESTORE_WINDOW_DAYS = 7
    deployment = order_active()
    _terminate(deployment, staff)
    lapsed = billing_today() - 10 * DAY
    Deployment.objects.filter(pk=deployment.pk).update(next_due_date=lapsed)

    operations.deployment_restore(
        deployment_id=deployment.pk, actor=Actor.staff(staff), reason="Paid by transfer"
    )

    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.ACTIVE
    assert deployment.next_due_date == billing_today()
    assert "paid period restarts today" in deployment.events.order_by("pk").last().reason
    renewals_run()
    renewal = Invoice.objects.get(deployment=deployment, kind=InvoiceKind.RENEWAL)
    assert renewal.period_start == billing_today()
    assert renewal.status == InvoiceStatus.UNPAID


def test_restore_whose_window_closes_meanwhile_is_refused_and_stays_terminated(
    world, order_active, staff, settings
):
    """The window closes while the restore talks to the panel (the purge may be deleting the
    server by then): the restore checks again under the row lock and refuses instead of
    reviving a server whose deletion is due."""
    settings.TERMINATION_RESTORE_WINDOW_DAYS = 7
    deployment = order_active()
    _terminate(deployment, staff)
    deployment.refresh_from_db()
    due = deployment.panel_deletion_due_at
    served_by_simulator = responses.RequestsMock(assert_all_requests_are_fired=False)
    install_responses(served_by_simulator, world.sim, PANEL_URL)
    simulator_callbacks = {r.method: r.callback for r in served_by_simulator.registered()}

    with time_machine.travel(due - dt.timedelta(seconds=5), tick=False) as clock:

        def window_closes_as_the_panel_unsuspends(request):
            if request.method == "POST" and request.url.endswith("/unsuspend"):
                clock.move_to(due + dt.timedelta(seconds=1))
            return simulator_callbacks[request.method](request)

        with responses.RequestsMock(assert_all_requests_are_fired=False) as panel:
            for method in simulator_callbacks:
                panel.add_callback(
                    method,
                    re.compile(re.escape(PANEL_URL) + r"(?:[/?#].*)?$"),
                    callback=window_closes_as_the_panel_unsuspends,
                    content_type=None,
                )
            with pytest.raises(ConflictError) as caught:
                operations.deployment_restore(deployment_id=deployment.pk, actor=Actor.staff(staff))

    assert caught.value.code == "restore_window_closed"
    assert "closed while it was being restored" in caught.value.message
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.TERMINATED
    assert deployment.panel_deletion_due_at == due
