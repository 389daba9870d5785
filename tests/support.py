"""Helpers shared by the cross-app tests."""

import subprocess
import threading
from collections.abc import Callable
from typing import Any

from django.db import connection, connections


def race(calls: list[Callable[[], object]], *, timeout: float = 120) -> list[object]:
    """Run the calls at the same moment, each in its own thread and database connection.

    Returns each call's result, or the exception it raised (the outcome is what tests assert).
    """
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return results


def database_url() -> str:
    """The URL of the database this test runs on, for worker subprocesses."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def subprocess_env(**overrides: str) -> dict[str, str]:
    """The environment of a subprocess of a test (a real worker, a job, manage.py): the test
    settings on this test's own database and broker (and so its Redis key prefix)."""
    import os

    from django.conf import settings

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.django.test",
        "TEST_DATABASE_URL": database_url(),
        "TEST_CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        **overrides,
    }


def celery_worker_start(queues: str, *, env: dict[str, str], output: Any) -> subprocess.Popen:
    """Start a real Celery worker (celery_worker_command) from the repository root."""
    from django.conf import settings

    return subprocess.Popen(
        celery_worker_command(queues),
        cwd=settings.BASE_DIR,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )


def celery_worker_command(queues: str) -> list[str]:
    """A real Celery worker process (solo pool) on `queues`, quiet, for the worker tests."""
    import sys

    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-P",
        "solo",
        "-Q",
        queues,
        "-l",
        "warning",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
    ]


def redis_clear_own_keys(url: str | None = None) -> int:
    """Delete this test process's broker keys (TEST_REDIS_KEY_PREFIX) in the suite's Redis
    database: never FLUSHDB, which would drop the tasks of the other xdist workers sharing
    it. Returns how many keys were deleted."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(url or settings.CELERY_BROKER_URL)
    keys = list(client.scan_iter(match=f"{settings.TEST_REDIS_KEY_PREFIX}*", count=500))
    return client.delete(*keys) if keys else 0


def panel_server_made_by_hand(
    seed: Any,
    name: str,
    *,
    limits: Any = None,
    feature_limits: Any = None,
    external_id: str | None = None,
) -> Any:
    """A server made through the panel's API on the simulator (as a person in the panel UI
    would: owned by the panel's admin user, on the eu node's last free allocation); returns the
    panel's server. `seed`: the simulator's SeedInfo; the client reads the test settings."""
    from provisioning.pterodactyl import Limits, PterodactylClient

    client = PterodactylClient.from_settings()
    egg = client.get_egg(seed.minecraft_nest_id, seed.paper_egg_id)
    return client.create_server(
        name=name,
        user_id=seed.admin_user_id,
        egg_id=egg.id,
        docker_image=egg.docker_image,
        startup=egg.startup,
        environment=egg.environment_with_defaults(),
        limits=limits or Limits(1024, 0, 5120, 500, 100),
        feature_limits=feature_limits,
        allocation_id=client.list_free_allocations(seed.eu_node_id)[-1].id,
        external_id=external_id,
    ).resource


def client_api_stats(state: str, uptime_ms: int = 100_000) -> dict:
    """A body of the panel client API's GET /servers/<id>/resources in state `state`."""
    return {
        "object": "stats",
        "attributes": {
            "current_state": state,
            "is_suspended": False,
            "resources": {
                "memory_bytes": 512 * 1024 * 1024,
                "cpu_absolute": 12.5,
                "disk_bytes": 100 * 1024 * 1024,
                "network_rx_bytes": 1,
                "network_tx_bytes": 1,
                "uptime": uptime_ms,
            },
        },
    }
