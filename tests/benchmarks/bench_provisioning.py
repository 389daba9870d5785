"""Benchmark: drain a backlog of paid orders through the saga against the panel simulator.

    .venv/bin/python tests/benchmarks/bench_provisioning.py --count 60 --latency-ms 40

Creates its own PostgreSQL database (portal_bench_prov, dropped afterwards unless --keep-db),
serves the panel simulator on 127.0.0.1 with the given latency and the panel's rate limit,
starts real Celery worker processes on Redis (the "provisioning" queue, the portal's shared
Redis rate limiter in front of the panel), places N orders for N customers, confirms them all at
once (the backlog), and runs the sweeper every second as beat would (PROVISIONING_QUEUE_SIZE
runs at a time; the rest wait their turn).

Printed: orders/minute, panel calls per server, 429 count, p50/p95/max time from confirmation
to active, and how many runs succeeded.
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.bench_notifications import out, recreate_database, suite_redis_url  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60, help="orders in the backlog")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--latency-ms", type=float, default=40.0, help="panel latency per call")
    parser.add_argument("--panel-rate", type=int, default=240, help="panel limit, requests/min")
    parser.add_argument("--client-rate", type=int, default=200, help="our budget, requests/min")
    parser.add_argument("--queue-size", type=int, default=10, help="PROVISIONING_QUEUE_SIZE")
    parser.add_argument("--db-name", default="portal_bench_prov")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--broker", default=None, help="Redis URL (default: TEST_REDIS_URL)")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    args.broker = args.broker or suite_redis_url()

    from provisioning.simulator import PanelSimulator
    from provisioning.simulator.wsgi import build_server

    sim = PanelSimulator(
        install_delay=1.0, latency=args.latency_ms / 1000, rate_limit_per_minute=args.panel_rate
    )
    node = sim.panel.nodes[sim.seed.eu_node_id]
    node.memory = node.disk = 10_000_000
    sim.panel.add_allocations(node.id, "203.0.113.10", range(30000, 30000 + args.count + 10))
    server = build_server(sim, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    panel_url = f"http://127.0.0.1:{server.server_address[1]}"

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.django.test",
        "TEST_DATABASE_URL": f"{args.pg.replace('postgresql://', 'postgres://')}/{args.db_name}",
        "TEST_CELERY_BROKER_URL": args.broker,
        "TEST_PTERODACTYL_URL": panel_url,
        "TEST_PTERODACTYL_ADMIN_API_KEY": sim.seed.admin_api_key,
        "PTERODACTYL_RATE_LIMIT_PER_MINUTE": str(args.client_rate),
        "PTERODACTYL_RATE_LIMIT_REDIS_URL": args.broker,
        "PROVISIONING_QUEUE_SIZE": str(args.queue_size),
        "PROVISIONING_POLL_INTERVAL": "1",
        "PROVISIONING_RETRY_BACKOFF": "1",
        "PROVISIONING_TIMEOUT": "1800",
        "PROVISIONING_RETRY_ATTEMPTS": "5",
    }
    os.environ.update(env)

    import redis

    redis.Redis.from_url(args.broker).flushdb()
    recreate_database(args.db_name, args.pg)

    import django

    django.setup()
    from django.core.management import call_command

    from billing.models import Order
    from billing.services.orders import order_place
    from billing.services.payments import payment_record_manual
    from common.actors import Actor
    from provisioning.models import ProvisioningRun, RunStatus
    from provisioning.services import provisioning_sweep
    from tests.factories import StaffFactory, UserFactory

    call_command("migrate", verbosity=0)
    call_command("seed_catalog", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    staff = StaffFactory(username="bench-staff@example.com")
    orders = []
    for n in range(args.count):
        customer = UserFactory(username=f"bench{n}@example.com")
        orders.append(
            order_place(
                customer=customer,
                plan_slug="bronze",
                billing_cycle="monthly",
                location_code="eu",
                actor=Actor.customer(customer),
            )
        )

    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-P",
                "solo",
                "-Q",
                "provisioning",
                "-l",
                "warning",
                "-n",
                f"bench{i}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(args.workers)
    ]
    try:
        time.sleep(3)  # workers connect
        calls_before = len(sim.calls)
        started = time.monotonic()
        for order in orders:
            payment_record_manual(
                invoice_id=order.invoices.get().pk,
                reference=f"BENCH-{order.pk}",
                actor=Actor.staff(staff),
            )
        deadline = started + args.timeout
        while time.monotonic() < deadline:
            provisioning_sweep()  # beat's job: start queued requests, resume lost ones
            done = ProvisioningRun.objects.exclude(
                status__in=[RunStatus.RUNNING, RunStatus.COMPENSATING]
            ).count()
            if done == args.count:
                break
            time.sleep(1)
        elapsed = time.monotonic() - started
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)

    runs = list(ProvisioningRun.objects.select_related("deployment"))
    ok = [r for r in runs if r.status == RunStatus.SUCCEEDED]
    latencies = []
    for order in Order.objects.filter(pk__in=[o.pk for o in orders]).select_related("deployment"):
        if order.deployment.activated_at:
            latencies.append((order.deployment.activated_at - order.confirmed_at).total_seconds())
    calls = list(sim.calls)[calls_before:]
    throttled = sum(1 for call in calls if call[2] == 429)
    servers = len(sim.panel.servers)
    out(
        f"orders: {args.count}, workers: {args.workers}, panel latency {args.latency_ms:g} ms, "
        f"panel limit {args.panel_rate}/min, our budget {args.client_rate}/min, queue size "
        f"{args.queue_size}"
    )
    out(f"succeeded: {len(ok)}/{len(runs)} runs; servers on the panel: {servers}")
    out(f"drained in {elapsed:.1f} s: {len(ok) / elapsed * 60:.1f} orders/minute")
    out(
        f"panel calls: {len(calls)} ({len(calls) / max(servers, 1):.1f} per server), "
        f"429 responses: {throttled}"
    )
    if latencies:
        out(
            f"confirmation -> active: p50 {statistics.median(latencies):.1f} s, "
            f"p95 {percentile(latencies, 0.95):.1f} s, max {max(latencies):.1f} s"
        )
    server.shutdown()
    if not args.keep_db:
        from django.db import connections

        connections.close_all()
        recreate_database(args.db_name, args.pg, drop_only=True)
    return 0 if len(ok) == args.count else 1


if __name__ == "__main__":
    sys.exit(main())
