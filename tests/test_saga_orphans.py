"""Issue 9, item 3: no fault sequence leaves an orphan. A user create that reached the panel
while its reply was lost, and every lookup of the step after it failed too, is found by our
external id when the run rolls back (or, if the panel still cannot answer then, when staff roll
back the run that needs attention)."""

import threading
import time

from billing.models import OrderStatus
from common.actors import Actor
from provisioning.models import PanelAccount, ProvisioningRun, RunStatus
from provisioning.pterodactyl import PterodactylClient
from provisioning.saga import engine
from provisioning.services import provisioning_abort, provisioning_retry
from tests.conftest import PANEL_URL
from tests.test_saga import drive_to_end, drive_until, panel_leftovers, pay

LOOKUP = r"/users/external/"


def _orphan(saga, customer):
    """What the lost reply left behind: the panel made the user with our external id."""
    client = PterodactylClient(PANEL_URL, saga.sim.seed.admin_api_key, max_retries=0)
    return client.create_user(
        email=customer.email,
        username="alice_orphan",
        first_name="Alice",
        last_name="Orphan",
        external_id=f"portal-user-{customer.pk}",
    ).resource


def test_a_user_created_behind_a_lost_reply_is_removed_on_rollback(
    saga, place_order, staff, customer, settings
):
    orphan = _orphan(saga, customer)
    # Every lookup of the step's attempts fails; the rollback's lookup gets through.
    saga.fault(
        "status", method="GET", path=LOOKUP, status=503, times=settings.PROVISIONING_RETRY_ATTEMPTS
    )

    order = pay(place_order(), staff)

    run = ProvisioningRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert order.status == OrderStatus.CONFIRMED
    assert orphan.id not in saga.panel.users
    assert PanelAccount.objects.get(user=customer).panel_user_id is None
    compensation = run.steps.filter(step="panel_user", direction="compensate").get()
    assert compensation.summary["deleted_panel_user"] == orphan.id


def test_a_rollback_that_cannot_look_it_up_needs_attention_then_finishes(
    saga, place_order, staff, customer
):
    orphan = _orphan(saga, customer)
    saga.fault("status", method="GET", path=LOOKUP, status=503, times=None)

    pay(place_order(), staff)

    run = ProvisioningRun.objects.get()
    assert run.status == RunStatus.NEEDS_ATTENTION  # never "done" with the user unaccounted for
    assert orphan.id in saga.panel.users

    saga.sim.faults.clear()  # the panel answers again; staff roll back
    provisioning_abort(run_id=run.pk, actor=Actor.staff(staff), reason="panel back")

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert orphan.id not in saga.panel.users


ALLOCATIONS = r"/nodes/\d+/allocations$"


def _no_free_ports(saga) -> None:
    """The node's only allocation is taken: the allocations step must create ports."""
    rows = sorted(saga.panel.allocations.values(), key=lambda a: a.port)
    for row in rows[1:]:
        del saga.panel.allocations[row.id]
    rows[0].server_id = 999_999  # someone else's server holds it


def _free_ports_left(saga) -> list[int]:
    return sorted(a.port for a in saga.panel.allocations.values() if a.server_id is None)


def test_ports_created_behind_a_lost_reply_are_ours_and_deleted_on_rollback(
    saga, place_order, staff
):
    _no_free_ports(saga)
    saga.fault("lost_reply", method="POST", path=ALLOCATIONS, times=1)
    # The server create is refused for good: the run rolls back after claiming the ports.
    saga.fault("status", method="POST", path=r"/servers$", status=422, times=None)

    pay(place_order(), staff)

    run = ProvisioningRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert run.ports_requested["ports"]  # recorded before the call
    assert _free_ports_left(saga) == []  # the port the lost reply made is gone again


def test_ports_requested_but_never_claimed_are_deleted_on_rollback(
    saga, place_order, staff, settings
):
    _no_free_ports(saga)
    # Attempt 1 reads the node twice, then its create's reply is lost; every later attempt
    # cannot read the node's allocations; the rollback can.
    saga.fault("latency", method="GET", path=ALLOCATIONS, seconds=0, times=2)
    saga.fault("lost_reply", method="POST", path=ALLOCATIONS, times=1)
    saga.fault(
        "status",
        method="GET",
        path=ALLOCATIONS,
        status=503,
        times=settings.PROVISIONING_RETRY_ATTEMPTS - 1,
    )

    pay(place_order(), staff)

    run = ProvisioningRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert _free_ports_left(saga) == []
    compensation = run.steps.filter(step="allocations", direction="compensate").get()
    assert compensation.summary["deleted"] == run.ports_requested["ports"]


def test_abort_while_the_server_is_being_created_leaves_no_orphan(
    saga, place_order, staff, settings, manual_steps
):
    settings.PROVISIONING_ENABLED = False
    order = pay(place_order(), staff)
    run = provisioning_retry(deployment_id=order.deployment_id, actor=Actor.staff(staff))
    drive_until(run.pk, "server")
    saga.fault("latency", method="POST", path=r"/servers$", seconds=1.5, times=1)
    worker = threading.Thread(target=engine.run_step, args=(run.pk,))
    worker.start()
    deadline = time.monotonic() + 10
    while not ProvisioningRun.objects.get(pk=run.pk).lease_expires_at:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    provisioning_abort(run_id=run.pk, actor=Actor.staff(staff), reason="looks stuck")
    worker.join(timeout=30)

    run = drive_to_end(run.pk)
    assert run.status == RunStatus.FAILED
    assert "rollback requested by staff" in run.last_error
    assert panel_leftovers(saga) == {"servers": 0, "users": 0, "assigned_allocations": 0}
