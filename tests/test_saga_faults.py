"""Issue 9, items 1, 2 and 4: one retry layer with no sleeping in workers, short renewed leases,
and at most 6 panel requests per new server (a returning customer's panel user costs none).

The panel is the simulator behind `responses`; faults come from its fault injection."""

import datetime as dt
import time

import pytest
import time_machine
from django.utils import timezone

from common.actors import Actor
from provisioning.models import PanelAccount, ProvisioningRun, RunStatus
from provisioning.saga import engine
from provisioning.services import provisioning_retry, provisioning_sweep
from provisioning.tasks import refresh_node_readings
from servers.models import Node
from tests.test_saga import drive_to_end, drive_until, pay

APP = "/api/application"


def _routes(saga, since: int = 0) -> list[str]:
    """The panel requests made, as 'METHOD /path' with ids kept (the order matters)."""
    return [
        f"{method} {path.removeprefix(APP)}" for method, path, _ in list(saga.sim.calls)[since:]
    ]


def test_a_new_customers_server_costs_four_panel_requests(saga, place_order, staff, settings):
    settings.PTERODACTYL_HTTP_MAX_RETRIES = 3  # ignored by workers: one retry layer

    order = pay(place_order(), staff)

    assert order.deployment.status == "active"
    routes = _routes(saga)
    assert [route.split("?")[0] for route in routes] == [
        "POST /users",
        "GET /nodes/1/allocations",
        "POST /servers",
        f"GET /servers/{order.deployment.panel_server_id}",
    ]
    assert len(routes) <= 6


def test_a_returning_customer_costs_no_panel_user_request(saga, place_order, staff):
    pay(place_order(), staff)
    before = len(saga.sim.calls)

    second = pay(place_order(), staff)

    assert second.deployment.status == "active"
    routes = _routes(saga, before)
    assert not [r for r in routes if "/users" in r]
    assert len(routes) == 3


def test_a_stored_panel_user_gone_from_the_panel_is_made_again(saga, place_order, staff, customer):
    pay(place_order(), staff)
    account = PanelAccount.objects.get(user=customer)
    gone = account.panel_user_id
    for server_id in [s.id for s in saga.panel.servers.values()]:
        del saga.panel.servers[server_id]  # (as if staff removed both on the panel)
    del saga.panel.users[gone]

    second = pay(place_order(), staff)

    assert second.deployment.status == "active", second.last_error
    account.refresh_from_db()
    assert account.panel_user_id not in (None, gone)
    run = ProvisioningRun.objects.get(deployment=second.deployment)
    assert run.rewinds == 1
    rewound = run.steps.get(step="server", status="failed")
    assert f"no longer has user #{gone}" in rewound.error


def test_a_retryable_error_ends_the_try_and_one_request_is_sent_per_try(
    saga, place_order, staff, settings
):
    settings.PTERODACTYL_HTTP_MAX_RETRIES = 3
    saga.fault("status", method="POST", path=r"/servers$", status=503, times=2)

    order = pay(place_order(), staff)

    assert order.deployment.status == "active"
    run = ProvisioningRun.objects.get()
    tries = list(run.steps.filter(step="server").values_list("status", flat=True))
    assert tries == ["retrying", "retrying", "succeeded"]
    # No HTTP retry inside a try: one POST per try, and the tries after an ambiguous 503 look
    # the server up by our external id first.
    assert len(saga.calls("POST", f"{APP}/servers")) == 3
    assert len(saga.calls("GET", f"{APP}/servers/external/")) == 2 + 2  # recover + look first


def test_the_backoff_grows_with_jitter_and_honours_retry_after(settings):
    settings.PROVISIONING_RETRY_BACKOFF = 2.0
    settings.PROVISIONING_RETRY_MAX_BACKOFF = 30.0
    first = [engine.backoff_seconds(1) for _ in range(50)]
    late = [engine.backoff_seconds(8) for _ in range(50)]
    assert all(1.0 <= d <= 2.0 for d in first)
    assert len(set(first)) > 1
    assert all(15.0 <= d <= 30.0 for d in late)
    assert engine.backoff_seconds(1, retry_after=45) == 45


def test_a_rate_limit_wait_is_handed_to_a_countdown_and_spends_no_try(
    saga, place_order, staff, settings, manual_steps
):
    settings.PROVISIONING_ENABLED = False
    settings.PTERODACTYL_RATE_LIMIT_PER_MINUTE = 1  # our budget: one request a minute
    order = pay(place_order(), staff)
    run = provisioning_retry(deployment_id=order.deployment_id, actor=Actor.staff(staff))
    drive_until(run.pk, "allocations")  # POST /users took the minute's only slot

    started = time.monotonic()
    assert engine.run_step(run.pk) == "retrying"

    assert time.monotonic() - started < 2  # no sleeping for the budget inside the worker
    run.refresh_from_db()
    assert run.attempt == 0  # waiting is not failing
    wait = (run.next_run_at - timezone.now()).total_seconds()
    assert 50 < wait < 62
    attempt = run.steps.filter(step="allocations").get()
    assert "client-side rate limit: 1 panel requests per 60 s used up" in attempt.error


def test_a_panel_429_pauses_every_worker_for_its_retry_after(
    saga, place_order, staff, settings, manual_steps
):
    settings.PROVISIONING_ENABLED = False
    order = pay(place_order(), staff)
    run = provisioning_retry(deployment_id=order.deployment_id, actor=Actor.staff(staff))
    saga.fault("rate_limit", method="POST", path=r"/users$", times=1, retry_after=40)
    drive_until(run.pk, "panel_user")

    assert engine.run_step(run.pk) == "retrying"
    run.refresh_from_db()
    assert 39 < (run.next_run_at - timezone.now()).total_seconds() < 42
    assert run.attempt == 0
    # Any request in the next 40 s waits too, named for what it is: the panel's Retry-After.
    ProvisioningRun.objects.filter(pk=run.pk).update(next_run_at=None)
    calls_before = len(saga.sim.calls)
    assert engine.run_step(run.pk) == "retrying"
    assert len(saga.sim.calls) == calls_before
    assert "the panel answered 429" in run.steps.order_by("-pk").first().error


def test_a_running_step_renews_its_short_lease_and_a_stale_one_stops(
    saga, place_order, staff, settings, manual_steps
):
    settings.PROVISIONING_ENABLED = False
    order = pay(place_order(), staff)
    run = provisioning_retry(deployment_id=order.deployment_id, actor=Actor.staff(staff))
    claim = engine._prepare(run.pk)
    run.refresh_from_db()
    first = run.lease_expires_at
    assert first - timezone.now() <= dt.timedelta(seconds=settings.PROVISIONING_STEP_LEASE)

    keeper = engine.LeaseKeeper(run.pk, claim.fence)
    time.sleep(0.05)
    assert keeper.renew() is True
    run.refresh_from_db()
    assert run.lease_expires_at > first
    ProvisioningRun.objects.filter(pk=run.pk).update(fence=claim.fence + 1)  # taken over
    assert keeper.renew() is False


def test_a_killed_workers_step_is_resumed_within_the_lease_and_loses_no_deadline(
    saga, place_order, staff, settings, manual_steps
):
    settings.PROVISIONING_ENABLED = False
    order = pay(place_order(), staff)
    with time_machine.travel(timezone.now(), tick=False) as clock:
        run = provisioning_retry(deployment_id=order.deployment_id, actor=Actor.staff(staff))
        drive_until(run.pk, "server")
        engine._prepare(run.pk)  # the worker claims the step ... and is SIGKILLed
        deadline = ProvisioningRun.objects.get(pk=run.pk).deadline_at
        clock.shift(settings.PROVISIONING_STEP_LEASE - 1)
        assert provisioning_sweep()["expired"] == 0  # still held
        clock.shift(2)
        assert provisioning_sweep()["expired"] == 1  # free ~30 s after, not 180 s
        resumed = ProvisioningRun.objects.get(pk=run.pk)
        # The 31 s since the dead worker's claim are given back to the run.
        assert resumed.deadline_at - deadline == dt.timedelta(seconds=31)
        final = drive_to_end(run.pk)
    assert final.status == RunStatus.SUCCEEDED
    assert len(saga.panel.servers) == 1


def test_placement_reads_only_stale_nodes_and_the_beat_job_keeps_them_fresh(
    saga, place_order, staff
):
    Node.objects.update(synced_at=None)
    assert refresh_node_readings() == Node.objects.count()  # one list request for all nodes
    assert _routes(saga) == ["GET /nodes?page=1&per_page=100"] or _routes(saga)[0].startswith(
        "GET /nodes"
    )
    before = len(saga.sim.calls)

    pay(place_order(), staff)

    assert not [r for r in _routes(saga, before) if r.startswith("GET /nodes/1?")]
    assert not [r for r in _routes(saga, before) if r == "GET /nodes/1"]


@pytest.mark.parametrize("kind", ["lost_reply", "read_timeout"])
def test_an_ambiguous_server_create_is_looked_up_before_the_next_post(
    saga, place_order, staff, kind
):
    # The reply is lost, and the immediate lookup fails too: the next try must look first.
    saga.fault(kind, method="POST", path=r"/servers$", times=1)
    saga.fault("status", method="GET", path=r"/servers/external/", status=503, times=1)

    order = pay(place_order(), staff)

    assert order.deployment.status == "active"
    assert len(saga.panel.servers) == 1  # adopted, never made twice
    assert len(saga.calls("POST", f"{APP}/servers")) == 1
