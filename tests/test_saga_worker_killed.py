"""A real Celery worker is SIGKILLed in the middle of a step; the sweeper resumes the run on
another worker and the order ends with exactly one server. The panel is the simulator, served on
127.0.0.1 so the worker processes reach it over HTTP."""

import datetime as dt
import signal
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from billing.models import OrderStatus
from billing.services.payments import payment_record_manual
from common.actors import Actor
from panel_simulator import PanelSimulator
from panel_simulator.wsgi import build_server
from provisioning.models import ProvisioningRun, ProvisioningStepAttempt, RunStatus
from provisioning.services import provisioning_sweep
from tests.support import celery_worker_start, redis_clear_own_keys, subprocess_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]
ROOT = Path(django_settings.BASE_DIR)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_worker_killed_mid_step_is_resumed_by_the_sweeper(settings, place_order, staff, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the worker subprocess needs the shared PostgreSQL test database")
    broker = settings.CELERY_BROKER_URL
    # Only this process's keys: a FLUSHDB would drop the queued tasks of the other xdist
    # workers sharing the database (test_fleet_worker's drain, say).
    redis_clear_own_keys(broker)
    sim = PanelSimulator(install_delay=0.5)
    server = build_server(sim, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    panel_url = f"http://127.0.0.1:{server.server_address[1]}"
    # The server create hangs long enough for us to kill the worker inside it.
    sim.faults.add("latency", method="POST", path=r"/servers$", seconds=6, times=1)
    settings.PTERODACTYL_URL = panel_url
    settings.PTERODACTYL_ADMIN_API_KEY = sim.seed.admin_api_key
    env = {
        **subprocess_env(),
        "TEST_CELERY_BROKER_URL": broker,
        "TEST_PTERODACTYL_URL": panel_url,
        "TEST_PTERODACTYL_ADMIN_API_KEY": sim.seed.admin_api_key,
        "PTERODACTYL_RATE_LIMIT_PER_MINUTE": "100000",
        "PTERODACTYL_HTTP_MAX_RETRIES": "0",
        "PROVISIONING_POLL_INTERVAL": "0.2",
        "PROVISIONING_RETRY_BACKOFF": "0",
    }
    logs = tmp_path / "workers.log"
    log_file = logs.open("w")
    worker_a = celery_worker_start("provisioning", env=env, output=log_file)
    worker_b = None
    try:
        order = place_order()
        payment_record_manual(
            invoice_id=order.invoices.get().pk, reference="K", actor=Actor.staff(staff)
        )
        _wait(
            lambda: ProvisioningStepAttempt.objects.filter(
                step="server", status="running"
            ).exists(),
            60,
            f"worker A to enter the server step; worker log: {logs}",
        )
        worker_a.send_signal(signal.SIGKILL)
        worker_a.wait(timeout=10)
        run = ProvisioningRun.objects.get()
        assert run.status == RunStatus.RUNNING
        assert run.lease_expires_at is not None  # held by a dead worker

        worker_b = celery_worker_start("provisioning", env=env, output=log_file)
        lease_over = run.lease_expires_at + dt.timedelta(seconds=1)
        assert timezone.now() < lease_over  # nothing but the sweeper would resume it yet
        swept = provisioning_sweep(now=lease_over)
        assert swept["expired"] == 1

        _wait(
            lambda: ProvisioningRun.objects.get().status != RunStatus.RUNNING,
            90,
            f"worker B to finish the run; worker log: {logs}",
        )
    finally:
        for worker in (worker_a, worker_b):
            if worker is not None and worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)
        log_file.close()
        redis_clear_own_keys(broker)

    run = ProvisioningRun.objects.get()
    assert run.status == RunStatus.SUCCEEDED, run.last_error
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    server_attempts = list(run.steps.filter(step="server").values_list("status", flat=True))
    assert server_attempts[0] == "running"  # the dead worker's attempt, never finished
    assert server_attempts[-1] == "succeeded"
    time.sleep(7)  # let the hung request finish: it must not add a second server
    server.shutdown()
    assert len(sim.panel.servers) == 1
