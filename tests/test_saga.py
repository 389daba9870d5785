"""The provisioning saga end to end: payment -> panel user and server -> active, or rollback."""

import pytest

from billing.models import Order, OrderStatus
from billing.services.payments import payment_record_manual
from common.actors import Actor
from common.errors import ConflictError
from provisioning.models import (
    RUN_TRANSITIONS,
    AllocationClaim,
    PanelAccount,
    ProvisioningRequestStatus,
    ProvisioningRun,
    RunStatus,
    run_move,
)
from provisioning.saga import engine
from provisioning.saga.steps import STEP_NAMES, StepName
from provisioning.services import provisioning_retry
from servers.models import DeploymentStatus, Egg

SEEDED_USERS = 2  # the simulator's admin and support users


def pay(order: Order, staff) -> Order:
    payment_record_manual(
        invoice_id=order.invoices.get().pk, reference=f"REF-{order.pk}", actor=Actor.staff(staff)
    )
    order.refresh_from_db()
    return order


def panel_leftovers(saga) -> dict[str, int]:
    panel = saga.panel
    return {
        "servers": len(panel.servers),
        "users": len(panel.users) - SEEDED_USERS,
        "assigned_allocations": sum(1 for a in panel.allocations.values() if a.server_id),
    }


def drive_until(run_id: int, step: str) -> None:
    """Run the steps of a run (saga steps queued, not run: `manual_steps`) up to `step`."""
    while ProvisioningRun.objects.get(pk=run_id).step_index < STEP_NAMES.index(step):
        engine.run_step(run_id)


def drive_to_end(run_id: int) -> ProvisioningRun:
    """Run the steps of a run, ignoring their countdowns, until it is no longer active."""
    for _ in range(60):
        run = ProvisioningRun.objects.get(pk=run_id)
        if run.status not in (RunStatus.RUNNING, RunStatus.COMPENSATING):
            return run
        ProvisioningRun.objects.filter(pk=run_id).update(next_run_at=None)
        engine.run_step(run_id)
    raise AssertionError("run did not finish")


def test_happy_path_paid_order_becomes_an_active_server(saga, place_order, staff, customer):
    order = pay(place_order(server_name="Survival SMP"), staff)

    assert order.status == OrderStatus.COMPLETED
    deployment = order.deployment
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.ACTIVE
    server = saga.panel.servers[deployment.panel_server_id]
    assert server.external_id == f"deployment-{deployment.pk}"
    assert server.name == "Survival SMP"
    assert (server.memory, server.cpu, server.disk) == (1024, 100, 5120)
    assert deployment.ip_address == "203.0.113.10"
    assert deployment.port == 25565
    assert deployment.connection_address == "203.0.113.10:25565"
    account = PanelAccount.objects.get(user=customer)
    panel_user = saga.panel.users[account.panel_user_id]
    assert panel_user.email == customer.email
    assert server.owner_id == panel_user.id
    assert len(account.password) >= 16
    run = ProvisioningRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED
    forward = [s.step for s in run.steps.filter(direction="forward", status="succeeded")]
    assert forward == STEP_NAMES
    assert run.request.status == ProvisioningRequestStatus.SUCCEEDED
    assert [e.to_status for e in order.events.all()] == [
        "pending",
        "confirmed",
        "provisioning",
        "completed",
    ]
    assert panel_leftovers(saga) == {"servers": 1, "users": 1, "assigned_allocations": 1}
    # The password is encrypted at rest: the raw column is not the password.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT password FROM provisioning_panelaccount")
        (raw,) = cursor.fetchone()
    assert raw != account.password
    assert account.password not in raw


def test_install_failure_rolls_back_everything(saga, place_order, staff):
    saga.panel.eggs[1].fail_install = True

    order = pay(place_order(), staff)

    assert order.status == OrderStatus.CONFIRMED
    assert "install failed" in order.last_error
    run = ProvisioningRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert run.failed_step == "install"
    assert order.deployment.status == DeploymentStatus.FAILED
    assert panel_leftovers(saga) == {"servers": 0, "users": 0, "assigned_allocations": 0}
    assert not AllocationClaim.objects.exists()
    compensated = [s.step for s in run.steps.filter(direction="compensate", status="succeeded")]
    assert compensated == list(reversed(STEP_NAMES[: STEP_NAMES.index("install") + 1]))


def _break_permission(saga):
    # The check step makes no request (issue 9: at most 6 a server); the first one is refused.
    saga.fault("status", method="POST", path=r"/users$", status=403, times=None)


def _break_panel_user(saga):
    saga.fault("status", method="POST", path=r"/users$", status=422, times=None)


def _break_resources(saga):
    from servers.models import Egg

    Egg.objects.all().delete()  # not mirrored: the step must read it, and the panel says 404
    saga.fault("status", method="GET", path=r"/eggs/\d+$", status=404, times=None)


def _break_allocations(saga):
    for allocation_id in [a.id for a in saga.panel.allocations.values() if a.node_id == 1]:
        del saga.panel.allocations[allocation_id]


def _break_server(saga):
    saga.fault("status", method="POST", path=r"/servers$", status=400, times=None)


@pytest.mark.parametrize(
    ("breaker", "failed_step", "message"),
    [
        (_break_permission, "panel_user", "permission"),
        (_break_panel_user, "panel_user", ""),
        (_break_resources, "resources", ""),
        (_break_allocations, "allocations", "no IP allocation"),
        (_break_server, "server", ""),
    ],
)
def test_terminal_failure_at_each_step_is_fully_compensated(
    saga, place_order, staff, breaker, failed_step, message
):
    allocations_before = len(saga.panel.allocations)
    breaker(saga)
    allocations_after_break = len(saga.panel.allocations)

    order = pay(place_order(), staff)

    run = ProvisioningRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert run.failed_step == failed_step
    assert message in run.last_error
    assert order.status == OrderStatus.CONFIRMED
    assert order.last_error
    assert run.request.status == ProvisioningRequestStatus.FAILED
    order.deployment.refresh_from_db()
    assert order.deployment.status == DeploymentStatus.FAILED
    assert order.deployment.panel_server_id is None
    # Nothing left behind, on the panel or in our reservations.
    assert panel_leftovers(saga) == {"servers": 0, "users": 0, "assigned_allocations": 0}
    assert len(saga.panel.allocations) == allocations_after_break
    assert allocations_after_break <= allocations_before
    assert not AllocationClaim.objects.exists()
    assert (run.reserved_memory_mb, run.reserved_disk_mb) == (0, 0)
    compensated = [s.step for s in run.steps.filter(direction="compensate", status="succeeded")]
    assert compensated == list(reversed(STEP_NAMES[: STEP_NAMES.index(failed_step) + 1]))
    # Terminal errors are not retried.
    failed = run.steps.filter(direction="forward", step=failed_step)
    assert failed.count() == 1


def test_retryable_faults_are_retried_without_duplicates(saga, place_order, staff):
    saga.fault("status", method="POST", path=r"/servers$", status=503, times=2)
    saga.fault("rate_limit", method="POST", path=r"/users$", times=1, retry_after=0)

    order = pay(place_order(), staff)

    assert order.status == OrderStatus.COMPLETED
    assert len(saga.panel.servers) == 1
    run = ProvisioningRun.objects.get()
    server_attempts = list(run.steps.filter(step="server").values_list("status", flat=True))
    assert server_attempts == ["retrying", "retrying", "succeeded"]
    # The panel's 429 ended the try and a countdown queued the next one (no sleeping inside).
    assert list(run.steps.filter(step="panel_user").values_list("status", flat=True)) == [
        "retrying",
        "succeeded",
    ]
    assert (
        run.steps.filter(step="panel_user", status="retrying")
        .get()
        .error.startswith("POST /api/application/users: the panel's rate limit was hit (429")
    )


def test_retries_spent_roll_back(saga, place_order, staff, settings):
    saga.fault("status", method="POST", path=r"/servers$", status=503, times=None)

    order = pay(place_order(), staff)

    run = ProvisioningRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert "retries spent" in run.last_error
    assert run.steps.filter(step="server", direction="forward").count() == (
        settings.PROVISIONING_RETRY_ATTEMPTS
    )
    assert order.status == OrderStatus.CONFIRMED
    assert panel_leftovers(saga) == {"servers": 0, "users": 0, "assigned_allocations": 0}


def test_lost_reply_on_create_adopts_the_server(saga, place_order, staff):
    saga.fault("lost_reply", method="POST", path=r"/servers$", times=1)

    order = pay(place_order(), staff)

    assert order.status == OrderStatus.COMPLETED
    assert len(saga.panel.servers) == 1
    run = ProvisioningRun.objects.get()
    server_step = run.steps.get(step="server", status="succeeded")
    assert server_step.summary["origin"] == "recovered"
    assert len(saga.calls("POST", "/api/application/servers")) == 1


def test_lost_reply_on_user_create_adopts_the_user(saga, place_order, staff):
    saga.fault("lost_reply", method="POST", path=r"/users$", times=1)

    order = pay(place_order(), staff)

    assert order.status == OrderStatus.COMPLETED
    assert panel_leftovers(saga)["users"] == 1


def test_egg_rules_rejecting_a_value_fail_terminally_with_a_clear_message(saga, place_order, staff):
    order = place_order(variables={"SERVER_JARFILE": "paper.jar"})
    jar = next(v for v in saga.panel.egg_variables.values() if v.env_variable == "SERVER_JARFILE")
    jar.rules = r"required|regex:/^server\.jar$/"  # the panel's rule changed after the order

    order = pay(order, staff)

    run = ProvisioningRun.objects.get()
    assert run.failed_step == "resources"
    assert "Server Jar File variable field format is invalid" in run.last_error
    # Checked against the mirror first; the panel's 422 on create re-read the egg (one GET),
    # and the second check against the new rule failed terminally.
    assert run.steps.filter(step="resources", direction="forward").count() == 2
    assert len(saga.calls("GET", "/api/application/nests/1/eggs/1")) == 1
    assert order.status == OrderStatus.CONFIRMED
    assert panel_leftovers(saga) == {"servers": 0, "users": 0, "assigned_allocations": 0}


def test_second_server_for_same_customer_reuses_panel_user(saga, place_order, staff):
    first = pay(place_order(), staff)
    second = pay(place_order(), staff)

    assert first.status == second.status == OrderStatus.COMPLETED
    assert panel_leftovers(saga) == {"servers": 2, "users": 1, "assigned_allocations": 2}
    first.deployment.refresh_from_db()
    second.deployment.refresh_from_db()
    assert first.deployment.port != second.deployment.port


def test_failure_keeps_a_panel_user_that_owns_other_servers(saga, place_order, staff):
    pay(place_order(), staff)
    saga.panel.eggs[1].fail_install = True

    failed = pay(place_order(), staff)

    assert failed.status == OrderStatus.CONFIRMED
    assert panel_leftovers(saga) == {"servers": 1, "users": 1, "assigned_allocations": 1}


def test_a_failing_order_keeps_the_panel_user_another_order_is_using(
    saga, place_order, staff, settings, manual_steps
):
    settings.PROVISIONING_ENABLED = False
    first = pay(place_order(), staff)
    second = pay(place_order(plan_slug="starter"), staff)
    run_a = provisioning_retry(deployment_id=first.deployment_id, actor=Actor.staff(staff))
    drive_until(run_a.pk, "placement")  # A has the panel user, no server yet
    Egg.objects.filter(panel_id=2).delete()  # B must read its egg, and the panel says 404
    saga.fault("status", method="GET", path=r"/eggs/2$", status=404, times=None)
    run_b = provisioning_retry(deployment_id=second.deployment_id, actor=Actor.staff(staff))
    drive_until(run_b.pk, "resources")
    # As when B found the user before A had recorded it: B believes it created it.
    ProvisioningRun.objects.filter(pk=run_b.pk).update(panel_user_created=True)

    assert drive_to_end(run_b.pk).status == RunStatus.FAILED

    assert panel_leftovers(saga)["users"] == 1  # kept for A
    assert drive_to_end(run_a.pk).status == RunStatus.SUCCEEDED


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


def test_retry_after_failure_succeeds(saga, place_order, staff):
    from provisioning.services import provisioning_retry

    saga.panel.eggs[1].fail_install = True
    order = pay(place_order(), staff)
    assert order.status == OrderStatus.CONFIRMED
    saga.panel.eggs[1].fail_install = False

    provisioning_retry(deployment_id=order.deployment_id, actor=Actor.staff(staff))

    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert list(ProvisioningRun.objects.order_by("id").values_list("status", flat=True)) == [
        "failed",
        "succeeded",
    ]
    assert len(saga.panel.servers) == 1


def test_provisioning_disabled_waits_for_staff(saga, place_order, staff, settings):
    from provisioning.services import provisioning_retry

    settings.PROVISIONING_ENABLED = False
    order = pay(place_order(), staff)
    assert order.status == OrderStatus.CONFIRMED
    assert not ProvisioningRun.objects.exists()
    assert len(saga.panel.servers) == 0

    provisioning_retry(deployment_id=order.deployment_id, actor=Actor.staff(staff))

    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED


def test_queue_size_limits_concurrent_runs_and_the_rest_follow(saga, place_order, staff, settings):
    from provisioning.models import ProvisioningRequest
    from provisioning.services import provisioning_sweep

    settings.PROVISIONING_QUEUE_SIZE = 1
    settings.PROVISIONING_POLL_INTERVAL = 30  # the next poll is a scheduled task, not now
    saga.panel.install_delay = 3600  # the first run stays in install polling
    first = pay(place_order(), staff)
    second = pay(place_order(), staff)

    assert first.status == OrderStatus.PROVISIONING
    assert second.status == OrderStatus.CONFIRMED  # queued: the one slot is taken
    assert ProvisioningRequest.objects.get(deployment=second.deployment).status == "pending"
    assert provisioning_sweep()["started"] == 0  # still no room

    saga.panel.install_delay = 0
    for server in saga.panel.servers.values():
        saga.panel.complete_install(server)
    ProvisioningRun.objects.update(next_run_at=None)
    from provisioning.tasks import run_step

    run = ProvisioningRun.objects.get()
    assert run.steps.filter(step="install", status="waiting").count() == 1
    run_step.apply(args=(run.pk,))  # the scheduled poll arrives and finishes the first run

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == OrderStatus.COMPLETED
    assert second.status == OrderStatus.COMPLETED  # started as soon as the slot freed


def test_customer_and_staff_are_told_every_step_and_no_password_leaks(
    saga, place_order, staff, customer, caplog, mailoutbox, settings
):
    import logging

    from django.db.models import Q

    from notifications.models import Delivery, DeliveryEvent

    settings.ADMINS = [("", "ops@example.com")]
    with caplog.at_level(logging.DEBUG):
        order = pay(place_order(), staff)
    password = PanelAccount.objects.get(user=customer).password

    events = list(Delivery.objects.filter(user=customer).values_list("event", flat=True))
    assert sorted(events) == sorted(
        [
            "order_received",
            "invoice_created",
            "payment_received",
            "provisioning_started",
            "server_ready",
        ]
    )
    assert Delivery.objects.filter(status="sent").count() == len(events)  # eager worker sent
    ready = Delivery.objects.get(event="server_ready")
    assert order.deployment.connection_address in ready.body
    assert f"#{order.pk}" in ready.body
    # The password is neither stored, logged nor mailed in clear (a one-time link instead).
    assert not Delivery.objects.filter(Q(body__contains=password) | Q(context__icontains=password))
    assert not DeliveryEvent.objects.filter(reason__contains=password).exists()
    assert password not in caplog.text
    ready_mail = next(m for m in mailoutbox if "ready" in m.subject.lower())
    assert password not in ready_mail.body
    assert "/notifications/credentials/" in ready_mail.body


def test_failure_tells_the_customer_and_alerts_staff(saga, place_order, staff, settings):
    from notifications.models import Delivery

    settings.ADMINS = [("", "ops@example.com")]
    saga.panel.eggs[1].fail_install = True

    pay(place_order(), staff)

    customer_failed = Delivery.objects.get(event="provisioning_failed")
    assert customer_failed.status == "sent"
    staff_alert = Delivery.objects.get(event="provisioning_failed_staff")
    assert staff_alert.recipient == "ops@example.com"
    assert "install" in staff_alert.body
    assert "/admin/servers/deployment/" in staff_alert.body


def test_provisioning_timeout_rolls_back(saga, place_order, staff, settings):
    import datetime as dt

    import time_machine

    from provisioning.tasks import run_step

    settings.PROVISIONING_POLL_INTERVAL = 30
    saga.panel.install_delay = 3600  # the install never finishes in time
    order = pay(place_order(), staff)
    run = ProvisioningRun.objects.get()
    assert run.status == RunStatus.RUNNING

    with time_machine.travel(run.deadline_at + dt.timedelta(seconds=1)):
        run_step.apply(args=(run.pk,))

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.last_error.startswith(
        f"Timed out after {settings.PROVISIONING_TIMEOUT} s at step install"
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.CONFIRMED
    assert panel_leftovers(saga) == {"servers": 0, "users": 0, "assigned_allocations": 0}


def test_resume_from_a_step_after_an_incomplete_rollback(saga, place_order, staff):
    from provisioning.services import provisioning_retry

    saga.panel.eggs[1].fail_install = True
    # The server cannot be deleted: the rollback gets stuck and staff must look.
    saga.fault("status", method="DELETE", path=r"/servers/\d+", status=500, times=None)
    order = pay(place_order(), staff)
    stuck = ProvisioningRun.objects.get()
    assert stuck.status == RunStatus.NEEDS_ATTENTION
    assert len(saga.panel.servers) == 1
    from notifications.models import Delivery

    assert Delivery.objects.filter(event="provisioning_failed_staff").count() == 1

    # Staff repair the install by hand on the panel, then resume at the install step.
    saga.sim.faults.clear()
    server = next(iter(saga.panel.servers.values()))
    server.status = None
    provisioning_retry(
        deployment_id=order.deployment_id,
        actor=Actor.staff(staff),
        from_step=STEP_NAMES.index("install"),
    )

    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert len(saga.panel.servers) == 1
    resumed = ProvisioningRun.objects.order_by("-pk").first()
    assert resumed.panel_server_id == server.id
    assert [s.step for s in resumed.steps.all()] == ["install", "activate"]


def test_plain_retry_is_refused_while_a_run_needs_attention(saga, place_order, staff):
    saga.panel.eggs[1].fail_install = True
    saga.fault("status", method="DELETE", path=r"/servers/\d+", status=500, times=None)
    order = pay(place_order(), staff)
    assert ProvisioningRun.objects.get().status == RunStatus.NEEDS_ATTENTION

    with pytest.raises(ConflictError, match="roll it back again, or resume it"):
        provisioning_retry(deployment_id=order.deployment_id, actor=Actor.staff(staff))
    assert ProvisioningRun.objects.count() == 1


def test_resume_from_a_step_after_a_clean_rollback_is_refused(saga, place_order, staff):
    from common.errors import ConflictError as Conflict
    from provisioning.services import provisioning_retry

    saga.panel.eggs[1].fail_install = True
    order = pay(place_order(), staff)
    with pytest.raises(Conflict, match="start again from the first step"):
        provisioning_retry(
            deployment_id=order.deployment_id,
            actor=Actor.staff(staff),
            from_step=STEP_NAMES.index("server"),
        )
    assert ProvisioningRun.objects.count() == 1


def test_the_step_names_are_the_steps_in_order():
    assert [str(name) for name in StepName] == STEP_NAMES


def test_the_run_transition_table_covers_every_run_status():
    assert set(RUN_TRANSITIONS.allowed) == set(RunStatus.values)
    for targets in RUN_TRANSITIONS.allowed.values():
        assert targets <= set(RunStatus.values)
    # Only the active statuses lead anywhere; a finished run stays finished.
    assert {s for s, targets in RUN_TRANSITIONS.allowed.items() if targets} == {
        RunStatus.RUNNING,
        RunStatus.COMPENSATING,
        RunStatus.NEEDS_ATTENTION,
    }


@pytest.mark.parametrize(
    ("from_status", "to_status"),
    [
        (RunStatus.SUCCEEDED, RunStatus.COMPENSATING),
        (RunStatus.FAILED, RunStatus.RUNNING),
        (RunStatus.COMPENSATING, RunStatus.SUCCEEDED),
        (RunStatus.NEEDS_ATTENTION, RunStatus.FAILED),
    ],
)
def test_a_forbidden_run_move_is_refused(from_status, to_status):
    run = ProvisioningRun(status=from_status)

    with pytest.raises(ConflictError) as refused:
        run_move(run, to_status)

    assert refused.value.code == "invalid_transition"
    assert refused.value.extra == {"from": from_status, "to": to_status}
    assert run.status == from_status


def test_staff_cannot_roll_back_a_finished_run(saga, place_order, staff):
    from provisioning.services import provisioning_abort

    pay(place_order(), staff)
    run = ProvisioningRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED

    with pytest.raises(ConflictError) as refused:
        provisioning_abort(run_id=run.pk, actor=Actor.staff(staff), reason="oops")

    assert refused.value.code == "run_finished"
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
