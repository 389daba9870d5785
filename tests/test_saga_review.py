"""Regression tests for defects found in review: account takeover, abort mid-step, lost
resume messages, retry after an incomplete rollback, shared panel users."""

import datetime as dt
import threading
import time

import pytest
from django.utils import timezone

from billing.models import OrderStatus
from common.actors import Actor
from common.errors import ConflictError
from provisioning.models import PanelAccount, ProvisioningRun, RunStatus
from provisioning.saga import engine
from provisioning.saga.steps import STEP_NAMES
from provisioning.services import provisioning_abort, provisioning_retry, provisioning_sweep
from servers.models import Egg
from tests.test_saga import panel_leftovers, pay


def _drive_until(run_id: int, step: str) -> None:
    while ProvisioningRun.objects.get(pk=run_id).step_index < STEP_NAMES.index(step):
        engine.run_step(run_id)


def _drive_to_end(run_id: int) -> ProvisioningRun:
    for _ in range(60):
        run = ProvisioningRun.objects.get(pk=run_id)
        if run.status not in (RunStatus.RUNNING, RunStatus.COMPENSATING):
            return run
        ProvisioningRun.objects.filter(pk=run_id).update(next_run_at=None)
        engine.run_step(run_id)
    raise AssertionError("run did not finish")


def test_a_panel_administrator_account_is_never_given_to_a_customer(
    saga, place_order, staff, user_factory
):
    intruder = user_factory(username="admin@example.com")  # the panel admin's e-mail
    order = place_order(customer=intruder, actor=Actor.customer(intruder))

    order = pay(order, staff)

    run = ProvisioningRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert "panel administrator" in run.last_error
    assert order.status == OrderStatus.CONFIRMED
    assert not any(
        u.email == "admin@example.com" and not u.root_admin for u in saga.panel.users.values()
    )
    assert PanelAccount.objects.get(user=intruder).panel_user_id is None


def test_password_of_an_adopted_panel_user_is_not_reset(saga, place_order, staff, user_factory):
    from provisioning.operations import panel_password_reset

    saga.panel.add_user(
        username="olduser",
        email="old@example.com",
        first_name="Old",
        last_name="User",
        root_admin=False,
    )
    customer = user_factory(username="old@example.com")
    order = pay(place_order(customer=customer, actor=Actor.customer(customer)), staff)
    assert order.status == OrderStatus.COMPLETED
    account = PanelAccount.objects.get(user=customer)
    assert account.created_by_portal is False
    assert not account.password

    with pytest.raises(ConflictError, match="not ours to change"):
        panel_password_reset(deployment_id=order.deployment_id, actor=Actor.staff(staff))


def test_abort_while_the_server_is_being_created_leaves_no_orphan(
    saga, place_order, staff, settings, manual_steps
):
    settings.PROVISIONING_ENABLED = False
    order = pay(place_order(), staff)
    run = provisioning_retry(deployment_id=order.deployment_id, actor=Actor.staff(staff))
    _drive_until(run.pk, "server")
    saga.fault("latency", method="POST", path=r"/servers$", seconds=1.5, times=1)
    worker = threading.Thread(target=engine.run_step, args=(run.pk,))
    worker.start()
    deadline = time.monotonic() + 10
    while not ProvisioningRun.objects.get(pk=run.pk).lease_expires_at:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    provisioning_abort(run_id=run.pk, actor=Actor.staff(staff), reason="looks stuck")
    worker.join(timeout=30)

    run = _drive_to_end(run.pk)
    assert run.status == RunStatus.FAILED
    assert "rollback requested by staff" in run.last_error
    assert panel_leftovers(saga) == {"servers": 0, "users": 0, "assigned_allocations": 0}


def test_a_lost_resume_message_is_found_again_by_the_next_sweep(
    saga, place_order, staff, settings, manual_steps
):
    settings.PROVISIONING_ENABLED = False
    order = pay(place_order(), staff)
    run = provisioning_retry(deployment_id=order.deployment_id, actor=Actor.staff(staff))
    engine._prepare(run.pk)  # a worker claims the step and dies
    expired = timezone.now() + dt.timedelta(hours=1)

    assert provisioning_sweep(now=expired)["expired"] == 1  # its resume message gets lost too
    later = timezone.now() + dt.timedelta(seconds=settings.PROVISIONING_SWEEP_GRACE + 5)
    assert provisioning_sweep(now=later)["lost"] == 1

    assert _drive_to_end(run.pk).status == RunStatus.SUCCEEDED


def test_plain_retry_is_refused_while_a_run_needs_attention(saga, place_order, staff):
    saga.panel.eggs[1].fail_install = True
    saga.fault("status", method="DELETE", path=r"/servers/\d+", status=500, times=None)
    order = pay(place_order(), staff)
    assert ProvisioningRun.objects.get().status == RunStatus.NEEDS_ATTENTION

    with pytest.raises(ConflictError, match="roll it back again, or resume it"):
        provisioning_retry(deployment_id=order.deployment_id, actor=Actor.staff(staff))
    assert ProvisioningRun.objects.count() == 1


def test_a_failing_order_keeps_the_panel_user_another_order_is_using(
    saga, place_order, staff, settings, manual_steps
):
    settings.PROVISIONING_ENABLED = False
    first = pay(place_order(), staff)
    second = pay(place_order(plan_slug="starter"), staff)
    run_a = provisioning_retry(deployment_id=first.deployment_id, actor=Actor.staff(staff))
    _drive_until(run_a.pk, "placement")  # A has the panel user, no server yet
    Egg.objects.filter(panel_id=2).delete()  # B must read its egg, and the panel says 404
    saga.fault("status", method="GET", path=r"/eggs/2$", status=404, times=None)
    run_b = provisioning_retry(deployment_id=second.deployment_id, actor=Actor.staff(staff))
    _drive_until(run_b.pk, "resources")
    # As when B found the user before A had recorded it: B believes it created it.
    ProvisioningRun.objects.filter(pk=run_b.pk).update(panel_user_created=True)

    assert _drive_to_end(run_b.pk).status == RunStatus.FAILED

    assert panel_leftovers(saga)["users"] == 1  # kept for A
    assert _drive_to_end(run_a.pk).status == RunStatus.SUCCEEDED
