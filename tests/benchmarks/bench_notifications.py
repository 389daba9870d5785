"""Benchmark: time from "server active" to "message sent" with a real Celery worker.

    .venv/bin/python tests/benchmarks/bench_notifications.py --count 200

Creates its own PostgreSQL database (portal_bench on 127.0.0.1, dropped afterwards unless
--keep-db), migrates it, starts a fake WhatsApp Cloud API (a tiny HTTP server on 127.0.0.1) and a
real Celery worker process on Redis (consuming the "notifications" queue), then calls
notification_send(server_ready) for N customers, each in its own transaction as the saga will,
and waits for every delivery. Each customer has WhatsApp (consent) and email, so every
deployment produces two deliveries. Email uses the locmem backend (config.django.test).

Printed: per delivery, Delivery.created_at -> sent_at; per deployment, "server active" (just
before notification_send) -> first message sent and -> all messages sent; p50/p95/max.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class FakeGraphAPI(BaseHTTPRequestHandler):
    """POST /<version>/<phone id>/messages -> 200 with a message id (after --wa-latency-ms)."""

    latency = 0.0
    counter = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        if self.latency:
            time.sleep(self.latency)
        with FakeGraphAPI.lock:
            FakeGraphAPI.counter += 1
            number = FakeGraphAPI.counter
        body = json.dumps(
            {"messaging_product": "whatsapp", "messages": [{"id": f"wamid.b{number}"}]}
        )
        payload = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        return


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<38} (none)"
    return (
        f"{name:<38} n={len(values):<4} p50={percentile(values, 0.50):7.3f}s "
        f"p95={percentile(values, 0.95):7.3f}s max={max(values):7.3f}s "
        f"mean={statistics.fmean(values):7.3f}s"
    )


def suite_redis_url() -> str:
    """The suite's Redis (TEST_REDIS_URL of the test settings), never a pinned database."""
    import importlib

    test_settings = importlib.import_module("config.django.test")
    # Read before the benchmark sets TEST_DATABASE_URL: let Django import the settings anew.
    sys.modules.pop("config.django.test", None)
    return test_settings.TEST_REDIS_URL


def recreate_database(name: str, server_url: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="deployments (customers)")
    parser.add_argument("--concurrency", type=int, default=16, help="worker processes/threads")
    parser.add_argument(
        "--pool", default="threads", choices=["prefork", "threads", "solo"], help="worker pool"
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="deployments per second (0 = all at once)"
    )
    parser.add_argument("--wa-latency-ms", type=float, default=0.0, help="fake API latency")
    parser.add_argument("--db-name", default="portal_bench")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--broker", default=None, help="Redis URL (default: TEST_REDIS_URL)")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    args.broker = args.broker or suite_redis_url()

    FakeGraphAPI.latency = args.wa_latency_ms / 1000
    http = ThreadingHTTPServer(("127.0.0.1", 0), FakeGraphAPI)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    wa_base = f"http://127.0.0.1:{http.server_address[1]}/v21.0"

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.django.test",
        "TEST_DATABASE_URL": f"{args.pg.replace('postgresql://', 'postgres://')}/{args.db_name}",
        "TEST_CELERY_BROKER_URL": args.broker,
        "WHATSAPP_ENABLED": "true",
        "WHATSAPP_API_BASE_URL": wa_base,
        "WHATSAPP_PHONE_NUMBER_ID": "bench-phone-id",
        "WHATSAPP_ACCESS_TOKEN": "bench-access-token",
        "CREDENTIALS_DELIVERY": "link",
        "ADMIN_EMAILS": "ops@example.com",
        "PORTAL_BASE_URL": "https://portal.example.com",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))

    import redis

    redis.Redis.from_url(args.broker).flushdb()
    recreate_database(args.db_name, args.pg)

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from notifications.events import sample_context
    from notifications.models import CustomerProfile, Delivery
    from notifications.services import notification_send

    call_command("migrate", verbosity=0)
    user_model = get_user_model()

    def customers(prefix: str, count: int) -> list:
        users = user_model.objects.bulk_create(
            [
                user_model(username=f"{prefix}{i}@example.com", email=f"{prefix}{i}@example.com")
                for i in range(count)
            ]
        )
        CustomerProfile.objects.bulk_create(
            [
                CustomerProfile(
                    user=user,
                    whatsapp_number=f"+62812{i:08d}",
                    whatsapp_consent=True,
                    notify_by_whatsapp=True,
                    notify_by_email=True,
                )
                for i, user in enumerate(users)
            ]
        )
        return users

    def server_ready(user, key: str) -> None:
        context = sample_context("server_ready")
        context["server_name"] = f"bench-{user.pk}"
        with transaction.atomic():  # the saga's transaction
            notification_send(
                event="server_ready",
                user=user,
                context=context,
                event_key=key,
                secrets={"panel_username": f"u{user.pk}", "panel_password": "Bench-Pa55word"},
            )

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "notifications",
            "-P",
            args.pool,
            "-c",
            str(args.concurrency),
            "-l",
            "warning",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        # Warm-up: every worker process loads Django, templates and the encryption keys.
        warm = customers("warmup", args.concurrency * 2)
        for user in warm:
            server_ready(user, f"warmup:{user.pk}")
        deadline = time.monotonic() + 120
        while Delivery.objects.filter(status="queued").exists():
            if worker.poll() is not None or time.monotonic() > deadline:
                output = worker.stdout.read().decode() if worker.poll() is not None else ""
                out(f"worker did not start or warm up\n{output}")
                return 1
            time.sleep(0.2)

        users = customers("bench", args.count)
        started: dict[str, float] = {}
        began = time.monotonic()
        for index, user in enumerate(users):
            if args.rate:
                wait = began + index / args.rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            key = f"server_ready:deployment-{user.pk}"
            started[key] = timezone.now().timestamp()  # "server active"
            server_ready(user, key)
        enqueue_seconds = time.monotonic() - began

        rows = Delivery.objects.filter(event_key__in=list(started))
        deadline = time.monotonic() + args.timeout
        while rows.filter(status="queued").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        total_seconds = time.monotonic() - began
        connection.close()

        per_delivery, first, last = [], {}, {}
        statuses: dict[str, int] = {}
        for key, status, created, sent in rows.values_list(
            "event_key", "status", "created_at", "sent_at"
        ):
            statuses[status] = statuses.get(status, 0) + 1
            if sent is None:
                continue
            per_delivery.append((sent - created).total_seconds())
            since_active = sent.timestamp() - started[key]
            first[key] = min(first.get(key, since_active), since_active)
            last[key] = max(last.get(key, 0.0), since_active)

        expected = args.count * 2
        sent = statuses.get("sent", 0)
        out(
            f"notifications benchmark: {args.count} deployments x 2 channels "
            f"(WhatsApp via fake Cloud API, email via locmem), real Celery worker "
            f"(-P {args.pool} -c {args.concurrency}) on Redis, PostgreSQL '{args.db_name}'"
        )
        mode = f"{args.rate:g}/s" if args.rate else "all at once"
        out(
            f"arrival: {mode}; fake WhatsApp latency {args.wa_latency_ms:g} ms; "
            f"enqueue took {enqueue_seconds:.2f}s, all done after {total_seconds:.2f}s"
        )
        out(summary("delivery created -> sent", per_delivery))
        out(summary("server active -> first message sent", list(first.values())))
        out(summary("server active -> all messages sent", list(last.values())))
        out(
            f"sent {sent}/{expected} deliveries; statuses {dict(sorted(statuses.items()))}; "
            f"fake WhatsApp API received {FakeGraphAPI.counter - len(warm)} requests"
        )
        target = percentile(list(last.values()), 0.95) if last else float("inf")
        out(f"target p95 < 5 s: {'met' if target < 5 and sent == expected else 'NOT met'}")
        return 0 if sent == expected else 1
    finally:
        worker.terminate()
        try:
            worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        http.shutdown()
        if not args.keep_db:
            from django.db import connections

            connections.close_all()
            recreate_database(args.db_name, args.pg, drop_only=True)


if __name__ == "__main__":
    sys.exit(main())
