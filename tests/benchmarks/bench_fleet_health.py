"""Benchmark: one `health` run over a large fleet against the panel simulator.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench_health \\
        .venv/bin/python tests/benchmarks/bench_fleet_health.py --count 10000

Runs against the PostgreSQL database named by DATABASE_URL (migrated first). `bench_health`
seeds `count` running servers straight into a PanelSimulator's state and the matching active
Deployment rows (bulk_create), serves the simulator in-process through `responses` (no socket,
no latency: what is measured is our side plus the simulator's own Python), runs health_job once
and returns what it cost. Its rows are removed afterwards unless keep=True.

Other live deployments already in the database take part in the run too (with no panel server
they count as missing): use a database without them for clean numbers.
"""

import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PANEL_URL = "https://panel.bench-health.test"
NAME_PREFIX = "bench-health-"


def seed_fleet(
    sim: Any,
    *,
    count: int,
    customer: Any,
    location: Any,
    name_prefix: str = NAME_PREFIX,
    power_state: str = "running",
) -> list[int]:
    """Add `count` installed servers to the simulator's state and an ACTIVE deployment for each
    (bulk_create); returns the deployment ids. The panel server ids continue the simulator's
    own sequence, past every panel_server_id already in the database."""
    from django.db.models import Max

    from panel_simulator.state import ServerRow
    from servers.models import Deployment, DeploymentStatus

    panel = sim.panel
    seed = sim.seed
    floor = Deployment.objects.aggregate(top=Max("panel_server_id"))["top"] or 0
    ids = []
    while len(ids) < count:
        server_id = panel.next_id("servers")
        if server_id > floor:
            ids.append(server_id)
    now = panel.now()
    deployments = Deployment.objects.bulk_create(
        [
            Deployment(
                customer=customer,
                name=f"{name_prefix}{server_id}",
                plan_slug="bench",
                plan_name="Bench",
                billing_cycle="monthly",
                location=location,
                status=DeploymentStatus.ACTIVE,
                panel_server_id=server_id,
                panel_identifier=f"{server_id:08x}"[-8:],
                spec={"limits": {"memory": 1024, "disk": 5120, "cpu": 100}},
            )
            for server_id in ids
        ],
        batch_size=2000,
    )
    for deployment in deployments:
        server_id = deployment.panel_server_id
        identifier = deployment.panel_identifier
        panel.servers[server_id] = ServerRow(
            id=server_id,
            uuid=f"{identifier}-0000-4000-8000-{server_id:012d}",
            uuid_short=identifier,
            name=deployment.name,
            owner_id=seed.admin_user_id,
            node_id=seed.eu_node_id,
            allocation_id=0,
            nest_id=seed.minecraft_nest_id,
            egg_id=seed.paper_egg_id,
            memory=1024,
            swap=0,
            disk=5120,
            io=500,
            cpu=100,
            startup="java -jar server.jar",
            image="ghcr.io/pterodactyl/yolks:java_17",
            external_id=deployment.external_id,
            status=None,
            power_state=power_state,
            started_at=now - 3600 if power_state == "running" else None,
            created_at=now,
            updated_at=now,
        )
    return [deployment.pk for deployment in deployments]


def _cleanup(name_prefix: str) -> None:
    from servers.models import Deployment, DeploymentEvent, HealthIncident, ServerHealth

    ours = Deployment.objects.filter(name__startswith=name_prefix)
    ServerHealth.objects.filter(deployment__in=ours).delete()
    HealthIncident.objects.filter(deployment__in=ours).delete()
    DeploymentEvent.objects.filter(deployment__in=ours).delete()
    ours.delete()


def bench_health(count: int, *, keep: bool = False, runs: int = 1) -> dict[str, Any]:
    """Seed `count` servers, run health_job once; returns servers, application_api_calls,
    client_api_calls, queries (SQL statements of the run), seconds (the whole run) and
    panel_seconds (of which inside the simulator). With runs=2 a second run follows (every row
    exists then, as on every scheduled run): next_run_seconds, next_run_queries,
    next_run_panel_seconds. Needs Django
    set up on PostgreSQL."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, override_settings

    from panel_simulator import PanelSimulator
    from panel_simulator.testing import simulated_panel
    from provisioning.fleet.health import health_job
    from tests.factories import LocationFactory, UserFactory

    sim = PanelSimulator(
        install_delay=0,
        rng_seed=1,
        rate_limit_per_minute=10_000_000,
        client_rate_limit_per_minute=10_000_000,
    )
    _cleanup(NAME_PREFIX)
    customer = UserFactory(username="bench-health@example.com")
    location = LocationFactory(short_code="bench-health")
    seed_fleet(sim, count=count, customer=customer, location=location)

    # Time spent inside the simulator, to tell it apart from ours.
    inner = sim.handle
    panel_seconds = 0.0

    def timed_handle(request: Any) -> Any:
        nonlocal panel_seconds
        started = time.perf_counter()
        try:
            return inner(request)
        finally:
            panel_seconds += time.perf_counter() - started

    sim.handle = timed_handle
    overrides = {
        "PTERODACTYL_URL": PANEL_URL,
        "PTERODACTYL_ADMIN_API_KEY": sim.seed.admin_api_key,
        "PTERODACTYL_CLIENT_API_KEY": sim.seed.client_api_key,
        "PTERODACTYL_RATE_LIMIT_PER_MINUTE": 10_000_000,
        "PTERODACTYL_CLIENT_RATE_LIMIT_PER_MINUTE": 10_000_000,
        "PTERODACTYL_RATE_LIMIT_REDIS_URL": None,
        "PTERODACTYL_HTTP_MAX_RETRIES": 0,
        "ADMINS": [("", "ops@example.com")],
    }
    try:
        with (
            override_settings(**overrides),
            simulated_panel(sim, PANEL_URL),
            CaptureQueriesContext(connection) as queries,
        ):
            calls_before = len(sim.calls)
            started = time.perf_counter()
            counts = health_job(dry_run=False)
            seconds = time.perf_counter() - started
        list_calls = sum(
            1
            for method, path, _status in list(sim.calls)[calls_before:]
            if method == "GET" and path == "/api/application/servers"
        )
        result = {
            "servers": count,
            "application_api_calls": list_calls,
            "client_api_calls": counts["client_api_calls"],
            "checked": counts["checked"],
            "queries": len(queries),
            "seconds": round(seconds, 3),
            "panel_seconds": round(panel_seconds, 3),
        }
        for _ in range(runs - 1):
            panel_seconds = 0.0
            with (
                override_settings(**overrides),
                simulated_panel(sim, PANEL_URL),
                CaptureQueriesContext(connection) as queries,
            ):
                started = time.perf_counter()
                health_job(dry_run=False)
                result["next_run_seconds"] = round(time.perf_counter() - started, 3)
            result["next_run_queries"] = len(queries)
            result["next_run_panel_seconds"] = round(panel_seconds, 3)
    finally:
        if not keep:
            _cleanup(NAME_PREFIX)
    return result


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="servers in the fleet")
    parser.add_argument("--runs", type=int, default=1, help="health runs (2: also a steady one)")
    parser.add_argument("--keep", action="store_true", help="keep the seeded rows")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        sys.stderr.write("Set DATABASE_URL to a PostgreSQL database.\n")
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.django.local")

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    result = bench_health(args.count, keep=args.keep, runs=args.runs)
    for key, value in result.items():
        sys.stdout.write(f"{key}: {value}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
