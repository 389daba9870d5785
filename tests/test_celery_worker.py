"""A real Celery worker (a separate process, as in production) consumes our tasks.

Both brokers the product uses: Redis (CI, production) and the filesystem transport that
`make run` uses so a demo needs no broker server.
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from common.models import WorkerHeartbeat
from tests.support import celery_worker_start, redis_clear_own_keys, subprocess_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker]

ROOT = Path(settings.BASE_DIR)
QUEUES = "default,provisioning,notifications,billing"


@pytest.mark.parametrize("broker", ["redis", "filesystem"])
def test_real_worker_consumes_a_task_from_every_queue(broker, tmp_path):
    if broker == "redis":
        import redis

        url = settings.TEST_REDIS_URL  # the suite's own Redis database, never a pinned one
        try:
            redis_clear_own_keys(url)
        except redis.ConnectionError:
            pytest.fail(f"Redis at {url} is required for this test (CI has it)")
    else:
        url = "filesystem://"
    env = {
        **subprocess_env(),
        "TEST_CELERY_BROKER_URL": url,
        "CELERY_FILESYSTEM_BROKER_DIR": str(tmp_path / "broker"),
    }
    worker = celery_worker_start(QUEUES, env=env, output=subprocess.PIPE)
    try:
        check = subprocess.run(
            [sys.executable, "manage.py", "check_worker", "--timeout", "60"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        time.sleep(1.5)  # a message delivered to the wrong queues would be consumed by now
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert check.returncode == 0, f"{check.stdout}\n{check.stderr}\nworker:\n{output.decode()}"
    assert f"via the {url.split(':')[0]} transport" in check.stdout
    # Each task was delivered to its own queue only, once.
    assert dict(WorkerHeartbeat.objects.values_list("queue", "beats")) == dict.fromkeys(
        QUEUES.split(","), 1
    )
