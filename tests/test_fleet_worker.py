"""The drain on a real Celery worker (Redis broker, the simulator over HTTP): each drain task
hands the rest over to a fresh task, and a backlog of panel operations is worked off once."""

import threading
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction

from common.actors import Actor
from panel_simulator import PanelSimulator
from panel_simulator.wsgi import build_server
from provisioning.fleet.operations import OperationRequest, panel_operations_request
from provisioning.models import PanelOperation, PanelOperationKind
from servers.models import Deployment, DeploymentStatus
from tests.benchmarks.bench_fleet_health import seed_fleet
from tests.factories import LocationFactory, UserFactory
from tests.support import celery_worker_start, redis_clear_own_keys, subprocess_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]
ROOT = Path(django_settings.BASE_DIR)
COUNT = 5


def test_a_backlog_of_operations_is_drained_by_a_real_worker(settings, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("the worker subprocess needs the shared PostgreSQL test database")
    broker = settings.CELERY_BROKER_URL
    redis_clear_own_keys(broker)
    sim = PanelSimulator(install_delay=0)
    server = build_server(sim, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    panel_url = f"http://127.0.0.1:{server.server_address[1]}"
    deployment_ids = seed_fleet(
        sim,
        count=COUNT,
        customer=UserFactory(username="drain@example.com"),
        location=LocationFactory(short_code="drain"),
    )
    env = {
        **subprocess_env(),
        "TEST_CELERY_BROKER_URL": broker,
        "TEST_PTERODACTYL_URL": panel_url,
        "TEST_PTERODACTYL_ADMIN_API_KEY": sim.seed.admin_api_key,
        "PTERODACTYL_RATE_LIMIT_PER_MINUTE": "100000",
        "PANEL_OPERATIONS_RATE_LIMIT_PER_MINUTE": "100000",
        "PTERODACTYL_HTTP_MAX_RETRIES": "0",
        # One operation a task: every further one comes through a hand-over on the broker.
        "PANEL_OPERATIONS_DRAIN_SECONDS": "0",
    }
    logs = tmp_path / "worker.log"
    with logs.open("w") as log_file:
        worker = celery_worker_start("billing", env=env, output=log_file)
        try:
            with transaction.atomic():  # the drain task is published after this commit
                created = panel_operations_request(
                    requests=[
                        OperationRequest(
                            kind=PanelOperationKind.SUSPEND,
                            reason="Abuse report",
                            deployment_id=deployment_id,
                            params={"cause": "staff"},
                        )
                        for deployment_id in deployment_ids
                    ],
                    actor=Actor.system("test"),
                )
            assert created == COUNT
            deadline = time.monotonic() + 90
            pending = PanelOperation.objects.exclude(status="succeeded")
            while pending.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            redis_clear_own_keys(broker)
            server.shutdown()

    operations = list(PanelOperation.objects.values_list("status", "attempts", "verified"))
    assert operations == [("succeeded", 1, True)] * COUNT, logs.read_text()[-2000:]
    assert set(
        Deployment.objects.filter(pk__in=deployment_ids).values_list("status", flat=True)
    ) == {DeploymentStatus.SUSPENDED}
    suspend_calls = [c for c in sim.calls if c[0] == "POST" and c[1].endswith("/suspend")]
    assert len(suspend_calls) == COUNT  # each once, whatever the hand-overs
