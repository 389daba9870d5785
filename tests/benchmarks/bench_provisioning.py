"""Benchmark: drain a backlog of paid orders through the saga against the panel simulator.

    .venv/bin/python tests/benchmarks/bench_provisioning.py --count 100 --latency-ms 40
    .venv/bin/python tests/benchmarks/bench_provisioning.py --faults     # 40 orders
    .venv/bin/python tests/benchmarks/bench_provisioning.py --kill       # 20 orders, 7 kills

Creates its own PostgreSQL database (portal_bench_prov, dropped afterwards unless --keep-db),
serves the panel simulator on 127.0.0.1 with the given latency and the panel's rate limit,
starts real Celery worker processes on Redis (the "provisioning" queue, the portal's shared
Redis rate limiter in front of the panel), places N orders for N customers, confirms them all at
once (the backlog), and runs the sweeper every second as beat would (PROVISIONING_QUEUE_SIZE
runs at a time; the rest wait their turn); the node capacity readings job every 60 s.

Printed: orders/minute, panel calls per server and by route, the drain rate as a ratio of the
bound (panel limit / requests per server; goal >= 0.9), 429 count (goal 0), p50/p95/max time
from confirmation to active, and how many runs succeeded.

--faults: ~20% of panel requests answer 5xx (json 500, html 502/503), ~5% are read timeouts
(handled by the panel, reply after --stall s, past PTERODACTYL_TIMEOUT_READ(_GET)=--read-timeout)
and creates (users, servers, allocations) lose their reply with --p-lost; half the ports must be
created. Goal: all active within 5 minutes of confirmation, 0 duplicates, 0 orphans.

--kill: --kills whole-worker SIGKILLs spread over the run, each worker replaced at once. Goal:
all active within 120 s of the last kill, 0 duplicates, 0 orphans.

Exit status: 1 when a run did not finish (or failed), 2 when all finished but a correctness or
acceptance check failed (duplicates, orphans, a time goal), else 0. The drain ratio is reported.
"""

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.bench_notifications import out, recreate_database, suite_redis_url  # noqa: E402
from tests.benchmarks.bench_provisioning_faults import (  # noqa: E402
    RandomFaults,
    WorkerPool,
    audit,
    audit_lines,
    fault_lines,
    goal,
    kill_lines,
    report,
    route_table,
)

MODE_DEFAULTS = {"happy": (100, 900.0), "faults": (40, 600.0), "kill": (20, 600.0)}
SWEEP_EVERY = 1.0  # seconds; the product's beat sends provisioning.sweep every 30 s


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--faults", action="store_true", help="random 5xx, timeouts, lost replies")
    mode.add_argument("--kill", action="store_true", help="SIGKILL whole workers during the run")
    parser.add_argument("--count", type=int, default=None, help="orders (100/40/20 by mode)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--pool", default="solo", choices=["solo", "prefork", "threads"])
    parser.add_argument("--concurrency", type=int, default=2, help="per worker (not solo)")
    parser.add_argument("--latency-ms", type=float, default=40.0, help="panel latency per call")
    parser.add_argument("--panel-rate", type=int, default=240, help="panel limit, requests/min")
    parser.add_argument(
        "--client-rate",
        type=int,
        default=None,
        help="our budget, requests/min (default: "
        "PTERODACTYL_RATE_LIMIT_PER_MINUTE of the settings)",
    )
    parser.add_argument("--queue-size", type=int, default=10, help="PROVISIONING_QUEUE_SIZE")
    parser.add_argument("--retry-attempts", type=int, default=None, help="default: settings")
    parser.add_argument(
        "--seed-ports",
        type=int,
        default=None,
        help="free ports on the node (default: "
        "count + 10; --faults: count / 2, the rest are created by the saga)",
    )
    parser.add_argument("--node-readings-every", type=float, default=60.0, help="0 = never")
    parser.add_argument("--p-5xx", type=float, default=0.20)
    parser.add_argument("--p-timeout", type=float, default=0.05)
    parser.add_argument("--p-lost", type=float, default=0.20, help="lost replies of creates")
    parser.add_argument("--read-timeout", type=float, default=3.0, help="client, seconds")
    parser.add_argument("--stall", type=float, default=4.0, help="late reply, seconds")
    parser.add_argument("--kills", type=int, default=7)
    parser.add_argument("--first-kill", type=float, default=5.0, help="s after confirmation")
    parser.add_argument("--kill-every", type=float, default=8.0, help="seconds between kills")
    parser.add_argument("--seed", type=int, default=1, help="fault and kill randomness")
    parser.add_argument("--db-name", default="portal_bench_prov")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--broker", default=None, help="Redis URL (default: TEST_REDIS_URL)")
    parser.add_argument("--timeout", type=float, default=None, help="900/600/600 s by mode")
    parser.add_argument("--panel-log", action="store_true", help="print the access log")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    args.mode = "faults" if args.faults else "kill" if args.kill else "happy"
    count, timeout = MODE_DEFAULTS[args.mode]
    args.count = args.count or count
    args.timeout = args.timeout or timeout
    if args.seed_ports is None:
        args.seed_ports = max(1, args.count // 2) if args.faults else args.count + 10
    args.broker = args.broker or suite_redis_url()
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally: stop workers

    from panel_simulator import PanelSimulator
    from panel_simulator.wsgi import build_server

    sim = PanelSimulator(
        install_delay=1.0, latency=args.latency_ms / 1000, rate_limit_per_minute=args.panel_rate
    )
    sim.calls = deque()  # every call of the run (the simulator keeps the last 5000)
    faults = None
    if args.faults:
        faults = RandomFaults(
            p_5xx=args.p_5xx,
            p_timeout=args.p_timeout,
            p_lost=args.p_lost,
            stall=args.stall,
            seed=args.seed,
        )
        sim.faults = faults
    node = sim.panel.nodes[sim.seed.eu_node_id]
    node.memory = node.disk = 10_000_000
    for allocation in list(sim.panel.allocations.values()):
        if allocation.node_id == node.id and allocation.server_id is None:
            sim.panel.delete_allocation(allocation)  # exactly --seed-ports free ports
    sim.panel.add_allocations(node.id, "203.0.113.10", range(30000, 30000 + args.seed_ports))
    seeded_allocations = set(sim.panel.allocations)
    server = build_server(sim, "127.0.0.1", 0)
    if not args.panel_log:
        server.RequestHandlerClass = type(
            "SilentHandler", (server.RequestHandlerClass,), {"log_message": lambda *a: None}
        )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    panel_url = f"http://127.0.0.1:{server.server_address[1]}"

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.django.test",
        "TEST_DATABASE_URL": f"{args.pg.replace('postgresql://', 'postgres://')}/{args.db_name}",
        "TEST_CELERY_BROKER_URL": args.broker,
        "TEST_PTERODACTYL_URL": panel_url,
        "TEST_PTERODACTYL_ADMIN_API_KEY": sim.seed.admin_api_key,
        "PTERODACTYL_RATE_LIMIT_REDIS_URL": args.broker,
        "PROVISIONING_QUEUE_SIZE": str(args.queue_size),
        "PROVISIONING_POLL_INTERVAL": "1",
        "PROVISIONING_RETRY_BACKOFF": "1",
        "PROVISIONING_TIMEOUT": "1800",
    }
    if args.client_rate:
        env["PTERODACTYL_RATE_LIMIT_PER_MINUTE"] = str(args.client_rate)
    if args.retry_attempts:
        env["PROVISIONING_RETRY_ATTEMPTS"] = str(args.retry_attempts)
    if args.faults:
        env["PTERODACTYL_TIMEOUT_READ"] = env["PTERODACTYL_TIMEOUT_READ_GET"] = str(
            args.read_timeout
        )
    os.environ.update(env)

    import redis

    redis.Redis.from_url(args.broker).flushdb()
    recreate_database(args.db_name, args.pg)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from billing.models import Order
    from billing.services.orders import order_place
    from billing.services.payments import payment_record_manual
    from common.actors import Actor
    from provisioning import tasks
    from provisioning.models import (
        ProvisioningRequest,
        ProvisioningRequestStatus,
        ProvisioningRun,
        ProvisioningStepAttempt,
        RunStatus,
    )
    from provisioning.services import provisioning_sweep
    from tests.factories import StaffFactory, UserFactory

    call_command("migrate", verbosity=0)
    call_command("seed_catalog", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    from servers.models import Node

    # The mirror as `sync_panel` would leave it: the simulated node is large (checkout's
    # capacity hold must find room for every order; the benchmark is about the panel).
    Node.objects.filter(panel_id=sim.seed.eu_node_id).update(
        memory_mb=node.memory, disk_mb=node.disk, free_allocations=args.seed_ports
    )
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

    readings = getattr(tasks, "refresh_node_readings", None)
    log_dir = Path(tempfile.mkdtemp(prefix="bench_prov_"))
    pool = WorkerPool(
        root=ROOT, env=env, pool=args.pool, concurrency=args.concurrency, log_dir=log_dir
    )
    rng = random.Random(args.seed)
    kills: list[tuple[float, int, bool]] = []  # (time.time(), pid, runs still unfinished)
    sweep_errors: Counter[str] = Counter()
    finished = {
        ProvisioningRequestStatus.SUCCEEDED,
        ProvisioningRequestStatus.FAILED,
        ProvisioningRequestStatus.CANCELLED,
    }
    done = False
    try:
        for _ in range(args.workers):
            pool.start()
        time.sleep(3)  # workers connect
        if readings is not None and args.node_readings_every > 0:
            readings.delay()
        last_readings = time.monotonic()
        calls_before = len(sim.calls)
        if faults is not None:
            faults.enabled = True
        started = time.monotonic()
        for order in orders:
            payment_record_manual(
                invoice_id=order.invoices.get().pk,
                reference=f"BENCH-{order.pk}",
                actor=Actor.staff(staff),
            )
        deadline = started + args.timeout
        next_kill = started + args.first_kill
        while time.monotonic() < deadline:
            try:
                provisioning_sweep()  # beat's job: start queued requests, resume lost ones
            except Exception as exc:
                sweep_errors[f"{type(exc).__name__}: {exc}"[:160]] += 1
            statuses = list(ProvisioningRequest.objects.values_list("status", flat=True))
            running = ProvisioningRun.objects.filter(
                status__in=[RunStatus.RUNNING, RunStatus.COMPENSATING]
            ).exists()
            done = (
                len(statuses) == args.count
                and all(status in finished for status in statuses)
                and not running
            )
            if args.kill and len(kills) < args.kills and time.monotonic() >= next_kill:
                kills.append((time.time(), pool.kill_one(rng), not done))
                pool.start()  # the replacement
                next_kill += args.kill_every
            if done and (not args.kill or len(kills) >= args.kills):
                break
            due = time.monotonic() - last_readings >= args.node_readings_every > 0
            if readings is not None and due:
                readings.delay()
                last_readings = time.monotonic()
            time.sleep(SWEEP_EVERY)
        elapsed = time.monotonic() - started
    finally:
        pool.stop()
    if faults is not None:
        faults.enabled = False

    runs = list(ProvisioningRun.objects.select_related("deployment"))
    ok = [r for r in runs if r.status == RunStatus.SUCCEEDED]
    latencies, activations, confirmations = [], [], []
    orders_now = Order.objects.filter(pk__in=[o.pk for o in orders]).select_related("deployment")
    for order in orders_now:
        confirmations.append(order.confirmed_at)
        if order.deployment.activated_at and order.deployment.status == "active":
            activations.append(order.deployment.activated_at)
            latencies.append((order.deployment.activated_at - order.confirmed_at).total_seconds())
    calls = list(sim.calls)[calls_before:]
    throttled = sum(1 for call in calls if call[2] == 429)
    servers = len(sim.panel.servers)
    budget = settings.PTERODACTYL_RATE_LIMIT_PER_MINUTE
    read_get = getattr(settings, "PTERODACTYL_TIMEOUT_READ_GET", 0) or 0
    out(
        f"orders: {args.count}, workers: {args.workers}, panel latency {args.latency_ms:g} ms, "
        f"panel limit {args.panel_rate}/min, our budget {budget}/min, queue size "
        f"{args.queue_size}"
    )
    out(
        f"mode: {args.mode}; pool {args.pool}"
        + (f" x{args.concurrency}" if args.pool != "solo" else "")
        + f"; sweeper every {SWEEP_EVERY:g} s (production beat: 30 s); node readings every "
        f"{args.node_readings_every:g} s; step lease {settings.PROVISIONING_STEP_LEASE} s, "
        f"sweep grace {settings.PROVISIONING_SWEEP_GRACE} s, retry attempts "
        f"{settings.PROVISIONING_RETRY_ATTEMPTS}, read timeout "
        f"{settings.PTERODACTYL_TIMEOUT_READ:g}/{read_get:g} s (write/GET), seeded free "
        f"ports {args.seed_ports}"
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
    all_active = len(latencies) == args.count
    out(f"requests per server by route ({servers} servers, {len(calls)} calls):")
    for line in route_table(calls, servers):
        out(line)
    per_server = len(calls) / max(servers, 1)
    checks: list[tuple[str, bool]] = [("all active", all_active)]
    drain = ""
    if activations:
        window = (max(activations) - min(confirmations)).total_seconds()
        achieved = len(activations) / window * 60 if window > 0 else 0.0
        bound = args.panel_rate / per_server
        out(
            f"drain: bound {bound:.1f} orders/min (panel limit {args.panel_rate}/min / "
            f"{per_server:.2f} requests per server; our budget allows "
            f"{budget / per_server:.1f}), achieved {achieved:.1f} orders/min (first "
            f"confirmation -> last activation, {window:.1f} s): ratio {achieved / bound:.2f} "
            f"({goal(achieved / bound >= 0.9)}: >= 0.9)"
        )
        drain = f"; drain ratio {achieved / bound:.2f} ({goal(achieved / bound >= 0.9)})"
        if len(calls) < args.panel_rate:
            out("  (fewer calls than one minute of the panel limit: a burst, not a steady drain)")
    out(f"429 responses: {throttled} ({goal(throttled == 0)}: 0)")
    checks.append(("0 429s", throttled == 0))
    if faults is not None:
        checks += report(out, fault_lines(faults, latencies, all_active))
    if args.kill:
        checks += report(out, kill_lines(kills, confirmations, activations, all_active))
    checks += report(out, audit_lines(audit(sim, seeded_allocation_ids=seeded_allocations)))
    retries = Counter(
        ProvisioningStepAttempt.objects.exclude(
            status__in=["succeeded", "waiting", "running"]
        ).values_list("step", "status")
    )
    if retries:
        out(
            "step attempts not succeeded: "
            + ", ".join(f"{s}/{t} {n}" for (s, t), n in sorted(retries.items()))
        )
    for run in runs:
        if run.status != RunStatus.SUCCEEDED:
            out(
                f"run #{run.pk} (deployment #{run.deployment_id}): {run.status} at "
                f"{run.failed_step or run.step_index}: {run.last_error[:300]}"
            )
    for error, number in sweep_errors.items():
        out(f"sweep error x{number}: {error}")
    finished_ok = done and len(ok) == args.count and all_active
    failed = [name for name, passed in checks if not passed]
    out(
        f"RESULT ({args.mode}): "
        + ("finished" if finished_ok else f"NOT finished within {args.timeout:g} s")
        + (f"; checks failed: {', '.join(failed)}" if failed else "; all checks passed")
        + drain
        + f"; worker logs: {log_dir}"
    )
    server.shutdown()
    if not args.keep_db:
        from django.db import connections

        connections.close_all()
        recreate_database(args.db_name, args.pg, drop_only=True)
    if not finished_ok:
        return 1
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
