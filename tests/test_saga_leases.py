"""Issue 9, item 2 (part): the time a killed worker's lease holds a run is not taken from the
run's PROVISIONING_TIMEOUT: a run whose worker died late still finishes, and a run that keeps
losing workers still ends."""

import datetime as dt

import time_machine
from django.db.models import F
from django.utils import timezone

from common.actors import Actor
from provisioning.models import ProvisioningRun, RunStatus
from provisioning.saga import engine
from provisioning.services import provisioning_retry, provisioning_sweep
from tests.test_saga import drive_to_end, drive_until, pay


def _worker_claims_and_dies(run_id: int, lease_seconds: int) -> None:
    """What a worker's claim leaves when the process is SIGKILLed inside the step."""
    ProvisioningRun.objects.filter(pk=run_id).update(
        fence=F("fence") + 1,
        lease_expires_at=timezone.now() + dt.timedelta(seconds=lease_seconds),
    )


def test_a_worker_killed_late_does_not_time_the_run_out(
    saga, place_order, staff, settings, manual_steps
):
    settings.PROVISIONING_ENABLED = False
    order = pay(place_order(), staff)
    lease = engine.lease_seconds()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        run = provisioning_retry(deployment_id=order.deployment_id, actor=Actor.staff(staff))
        drive_until(run.pk, "server")
        clock.shift(settings.PROVISIONING_TIMEOUT - 60)  # late in the run
        _worker_claims_and_dies(run.pk, lease)
        clock.shift(lease + 1)  # the lease ran out past the original deadline

        assert provisioning_sweep()["expired"] == 1
        final = drive_to_end(run.pk)

    assert final.status == RunStatus.SUCCEEDED, final.last_error
    assert len(saga.panel.servers) == 1


def test_a_run_that_keeps_losing_workers_still_ends(
    saga, place_order, staff, settings, manual_steps
):
    settings.PROVISIONING_ENABLED = False
    order = pay(place_order(), staff)
    lease = engine.lease_seconds()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        run = provisioning_retry(deployment_id=order.deployment_id, actor=Actor.staff(staff))
        drive_until(run.pk, "server")
        for _ in range(25):  # every worker dies inside the step, past twice the timeout
            _worker_claims_and_dies(run.pk, lease)
            clock.shift(lease + 1)
            provisioning_sweep()
        final = drive_to_end(run.pk)

    assert final.status == RunStatus.FAILED
    assert "Timed out" in final.last_error
    started = final.started_at
    assert final.deadline_at == started + dt.timedelta(seconds=2 * settings.PROVISIONING_TIMEOUT)


def test_a_worker_killed_after_a_long_capacity_wait_keeps_the_restarted_deadline(
    saga, place_order, staff, settings, manual_steps
):
    """Waiting for room restarts the run's deadline, so it can lie past twice the timeout
    from the run's start: a dead worker's resume must not pull it back (rolling back a run
    that only had a step left)."""
    settings.PROVISIONING_ENABLED = False
    order = pay(place_order(), staff)
    lease = engine.lease_seconds()
    with time_machine.travel(timezone.now(), tick=False) as clock:
        run = provisioning_retry(deployment_id=order.deployment_id, actor=Actor.staff(staff))
        drive_until(run.pk, "server")
        clock.shift(3 * settings.PROVISIONING_TIMEOUT)  # as if it had waited for capacity
        restarted = timezone.now() + dt.timedelta(seconds=settings.PROVISIONING_TIMEOUT)
        ProvisioningRun.objects.filter(pk=run.pk).update(deadline_at=restarted)
        _worker_claims_and_dies(run.pk, lease)
        clock.shift(lease + 1)

        assert provisioning_sweep()["expired"] == 1
        assert ProvisioningRun.objects.get(pk=run.pk).deadline_at >= restarted
        final = drive_to_end(run.pk)

    assert final.status == RunStatus.SUCCEEDED, final.last_error


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

    assert drive_to_end(run.pk).status == RunStatus.SUCCEEDED
