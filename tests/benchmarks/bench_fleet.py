"""Benchmark: the fleet jobs at fleet size, each beside a baseline measured in the same run.

    .venv/bin/python tests/benchmarks/bench_fleet.py --count 100000 --repeat 3

Creates its own PostgreSQL database (portal_bench_fleet, dropped afterwards unless --keep-db)
and seeds --count active servers due for renewal (bulk inserts: customers, orders with an
add-on on every third, deployments). Then, --repeat times:
1. the baseline: ONE raw INSERT..SELECT of the same invoice headers and ONE of their lines
   (plan + add-on lines), timed, then removed;
2. the product's renewal job, `manage.py run_job renewals` in its own process (the command's
   own timing; its peak RSS read from the kernel), with invoice history rows and the customers'
   messages (Delivery rows + send tasks on Redis);
3. a re-run of the job (nothing left to do: must create 0 and take <= 0.5x the first run).
Then, once: SQL statements per batch (in process, counted by an execute wrapper: must not grow
with rows), peak RSS at a tenth of the fleet (must not grow with N), dunning over
--overdue servers (statements and Celery tasks published, first and second run: the second
publishes 0), and the health check of --health servers on the panel simulator (application-API
calls <= ceil(N/100)). Prints min/median of each figure and the ratios to the baselines.
"""

import argparse
import datetime as dt
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.bench_notifications import out, recreate_database, suite_redis_url  # noqa: E402

RESET_TABLES = (
    "notifications_deliveryevent",
    "notifications_deliverysecret",
    "notifications_delivery",
    "billing_invoiceevent",
    "billing_invoiceline",
    "billing_invoice",
    "billing_invoicesequence",
    "provisioning_paneloperation",
    "common_jobrun",
)

BASELINE_HEADERS = """
INSERT INTO billing_invoice (created_at, updated_at, number, customer_id, order_id, deployment_id,
    kind, currency, subtotal, discount_total, credit_applied, total, status, issued_at, due_date,
    period_start, period_end)
SELECT now(), now(), 'RAW-' || d.id, d.customer_id, o.id, d.id, 'renewal', o.currency,
    p.amount + COALESCE(a.amount, 0), 0, 0, p.amount + COALESCE(a.amount, 0), 'unpaid', now(),
    d.next_due_date, d.next_due_date, (d.next_due_date + interval '1 month')::date
FROM servers_deployment d
JOIN billing_order o ON o.deployment_id = d.id
JOIN billing_plan pl ON pl.slug = d.plan_slug
JOIN billing_planprice p ON p.plan_id = pl.id AND p.billing_cycle = o.billing_cycle
    AND p.currency = o.currency
LEFT JOIN (SELECT oa.order_id, SUM(COALESCE(ap.amount, oa.amount)) AS amount
           FROM billing_orderaddon oa
           JOIN billing_order o2 ON o2.id = oa.order_id
           LEFT JOIN billing_addonprice ap ON ap.addon_id = oa.addon_id
               AND ap.billing_cycle = o2.billing_cycle AND ap.currency = o2.currency
           GROUP BY oa.order_id) a ON a.order_id = o.id
WHERE d.status IN ('active', 'suspended') AND d.next_due_date <= %s
  AND NOT EXISTS (SELECT 1 FROM billing_invoice i WHERE i.deployment_id = d.id
                  AND i.kind = 'renewal' AND i.period_start = d.next_due_date)
"""
BASELINE_LINES = """
INSERT INTO billing_invoiceline (invoice_id, kind, description, quantity, unit_amount, amount,
    position)
SELECT i.id, 'plan', pl.name || ' renewal (Monthly)', 1, p.amount, p.amount, 0
FROM billing_invoice i
JOIN servers_deployment d ON d.id = i.deployment_id
JOIN billing_order o ON o.id = i.order_id
JOIN billing_plan pl ON pl.slug = d.plan_slug
JOIN billing_planprice p ON p.plan_id = pl.id AND p.billing_cycle = o.billing_cycle
    AND p.currency = o.currency
WHERE i.number LIKE 'RAW-%%'
UNION ALL
SELECT i.id, 'addon', oa.name || ' (Monthly)', 1, COALESCE(ap.amount, oa.amount),
    COALESCE(ap.amount, oa.amount), 1
FROM billing_invoice i
JOIN billing_order o ON o.id = i.order_id
JOIN billing_orderaddon oa ON oa.order_id = o.id
LEFT JOIN billing_addonprice ap ON ap.addon_id = oa.addon_id
    AND ap.billing_cycle = o.billing_cycle AND ap.currency = o.currency
WHERE i.number LIKE 'RAW-%%'
"""


def summary(values: list[float]) -> str:
    return f"min {min(values):.2f} s, median {statistics.median(values):.2f} s"


def ratio(values: list[float], baseline: list[float]) -> str:
    return (
        f"{min(values) / min(baseline):.1f}x (min/min), "
        f"{statistics.median(values) / statistics.median(baseline):.1f}x (median/median)"
    )


def run_job_process(name: str, env: dict) -> tuple[float, int, str]:
    """`manage.py run_job NAME` in its own process: (its own seconds, peak RSS in MiB, output)."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_job", name],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"run_job {name} failed:\n{output}")
    seconds = float(re.search(r"succeeded in ([0-9.]+) s", output).group(1))
    return seconds, usage.ru_maxrss // 1024, output


class StatementCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable, sql: str, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def admin_lists(paths: list[str], *, repeat: int = 3) -> None:
    """Median time of each admin list page, and its ratio to a list of a handful of rows."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    admin = get_user_model().objects.create_superuser("bench-admin", "bench@example.com", "x")
    client = Client(HTTP_HOST="localhost")
    client.force_login(admin)
    # The admin requires a session verified by a second factor (common.admin_site): give the
    # benchmark's superuser a confirmed TOTP device and verify the session with it, as
    # django_otp.login does after a right code.
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.create(user=admin, name="bench device", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()

    def timed(path: str) -> float:
        times = []
        for _ in range(repeat):
            clock = time.monotonic()
            response = client.get(path)
            times.append(time.monotonic() - clock)
            assert response.status_code == 200, (path, response.status_code)
        return statistics.median(times)

    baseline = timed("/admin/common/workerheartbeat/")
    out(f"admin list baseline (worker heartbeats): {baseline * 1000:.0f} ms")
    for path in paths:
        seconds = timed(path)
        out(f"  {path}: {seconds * 1000:.0f} ms ({seconds / baseline:.1f}x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="servers due for renewal")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--overdue", type=int, default=10_000, help="servers for dunning")
    parser.add_argument("--health", type=int, default=10_000, help="servers for the health check")
    parser.add_argument("--batch-size", type=int, default=1000, help="FLEET_BATCH_SIZE")
    parser.add_argument("--db-name", default="portal_bench_fleet")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--broker", default=None, help="Redis URL (default: TEST_REDIS_URL)")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    args.broker = args.broker or suite_redis_url()

    import redis

    broker = redis.Redis.from_url(args.broker)
    broker.flushdb()
    recreate_database(args.db_name, args.pg)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.django.test",
        "TEST_DATABASE_URL": f"{args.pg.replace('postgresql://', 'postgres://')}/{args.db_name}",
        "TEST_CELERY_BROKER_URL": args.broker,
        "FLEET_BATCH_SIZE": str(args.batch_size),
    }
    os.environ.update(env)

    import django

    django.setup()
    from celery.signals import before_task_publish
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from billing.models import Invoice, InvoiceKind
    from billing.services.dunning import dunning_run
    from billing.services.renewal_credit import renewals_run_with_credit
    from billing.services.renewals import renewals_run
    from common.dates import billing_today
    from tests.fleet import fleet_seed

    call_command("migrate", verbosity=0)
    call_command("seed_catalog", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    today = billing_today()
    due = today + dt.timedelta(days=3)
    started = time.monotonic()
    fleet_seed(count=args.count, next_due_date=due)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    out(f"seeded {args.count} active servers due {due} in {time.monotonic() - started:.1f} s")

    def reset() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(RESET_TABLES)} RESTART IDENTITY CASCADE")
        broker.flushdb()

    baseline_headers, baseline_total, job, rerun, rss, part = [], [], [], [], [], []
    for repetition in range(1, args.repeat + 1):
        reset()
        clock = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(BASELINE_HEADERS, [today + dt.timedelta(days=7)])
            headers = cursor.rowcount
            header_seconds = time.monotonic() - clock
            cursor.execute(BASELINE_LINES)
            lines = cursor.rowcount
        baseline_headers.append(header_seconds)
        baseline_total.append(time.monotonic() - clock)
        reset()
        seconds, peak_mib, output = run_job_process("renewals", env)
        invoices = Invoice.objects.filter(kind=InvoiceKind.RENEWAL).count()
        # The test settings prefix every broker key (suite isolation): count under the prefix.
        tasks = broker.llen(f"{settings.TEST_REDIS_KEY_PREFIX}notifications")
        job.append(seconds)
        part.append(int(re.search(r"ms_invoices_and_lines: (\d+)", output).group(1)) / 1000)
        rss.append(peak_mib)
        again, _peak, again_output = run_job_process("renewals", env)
        rerun.append(again)
        created_again = int(re.search(r"invoices: (\d+)", again_output).group(1))
        out(
            f"run {repetition}: raw INSERT..SELECT {headers} headers {header_seconds:.2f} s + "
            f"{lines} lines {baseline_total[-1]:.2f} s | run_job renewals {invoices} invoices "
            f"{seconds:.2f} s (headers+lines {part[-1]:.2f} s), {tasks} send tasks, peak RSS "
            f"{peak_mib} MiB | re-run "
            f"{again:.2f} s, {created_again} created"
        )
        assert invoices == args.count, output
        assert created_again == 0, again_output

    out()
    out(f"baseline, headers only:       {summary(baseline_headers)}")
    out(f"baseline, headers + lines:    {summary(baseline_total)}")
    out(f"job, headers + lines part:    {summary(part)}")
    out(f"  ratio to raw headers+lines: {ratio(part, baseline_total)}  (goal <= 3x)")
    out(f"run_job renewals (whole job): {summary(job)}")
    out(f"  ratio to raw headers+lines: {ratio(job, baseline_total)}  (goal <= 10x, < 60 s)")
    out(f"re-run (nothing to do):       {summary(rerun)}")
    out(f"  ratio to the first run:     {min(rerun) / min(job):.2f}x  (goal <= 0.5x)")
    out(f"peak RSS of the job process:  {min(rss)}-{max(rss)} MiB")

    # Statements per batch, in process, counted by an execute wrapper.
    reset()
    counter = StatementCounter()
    with connection.execute_wrapper(counter):
        counts = renewals_run_with_credit()  # what `run_job renewals` runs (credit included)
    out(
        f"statements: {counter.count} for {counts['invoices']} invoices in {counts['batches']} "
        f"batches of {args.batch_size} = {counter.count / max(1, counts['batches']):.1f} per "
        "batch (the same for every batch: tests/test_fleet_jobs.py checks it)"
    )

    # Two `run_job renewals` at the same moment (two beats): each invoice exactly once.
    reset()
    processes = [
        subprocess.Popen(
            [sys.executable, "manage.py", "run_job", "renewals"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate()[0] for process in processes]
    headlines = [
        next((line for line in output.splitlines() if line.startswith("renewals")), "-")
        for output in outputs
    ]
    invoices = Invoice.objects.filter(kind=InvoiceKind.RENEWAL)
    year = today.year
    numbers = set(invoices.values_list("number", flat=True))
    gap_free = numbers == {f"INV-{year}-{n:06d}" for n in range(1, len(numbers) + 1)}
    out(
        f"two concurrent run_job renewals: {' | '.join(headlines)}; {invoices.count()} invoices "
        f"for {invoices.values('deployment_id').distinct().count()} servers (of {args.count}), "
        f"numbers gap-free: {gap_free}"
    )

    # Peak RSS with a tenth of the fleet due: bounded by the batch, not by N.
    reset()
    small = max(args.batch_size, args.count // 10)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE servers_deployment SET next_due_date = next_due_date + 60 WHERE id > "
            "(SELECT MIN(id) + %s FROM servers_deployment)",
            [small - 1],
        )
    _seconds, small_rss, _output = run_job_process("renewals", env)
    out(f"peak RSS: {small_rss} MiB with {small} due vs {min(rss)} MiB with {args.count} due")

    # Dunning over --overdue servers: overdue past the grace period.
    reset()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE servers_deployment SET next_due_date = %s", [due])
    renewals_run()
    grace = dt.timedelta(days=settings.SUSPENSION_GRACE_DAYS)
    overdue_ids = list(Invoice.objects.order_by("pk").values_list("pk", flat=True)[: args.overdue])
    Invoice.objects.filter(pk__in=overdue_ids).update(due_date=today - grace)
    published: list[str] = []
    before_task_publish.connect(lambda sender=None, **_: published.append(sender), weak=False)
    for label in ("first", "second"):
        counter = StatementCounter()
        published.clear()
        clock = time.monotonic()
        with connection.execute_wrapper(counter):
            counts = dunning_run()
        out(
            f"dunning {label} run: {counts} in {time.monotonic() - clock:.2f} s, "
            f"{counter.count} statements, {len(published)} tasks published "
            f"({', '.join(sorted(set(published))) or '-'})"
        )

    # Admin lists at fleet size, beside the admin's smallest list (worker heartbeats).
    admin_lists(
        [
            "/admin/servers/deployment/",
            "/admin/servers/deployment/?status__exact=active",
            "/admin/billing/invoice/",
            "/admin/billing/invoice/?status__exact=unpaid",
            "/admin/billing/order/",
            "/admin/provisioning/paneloperation/",
            "/admin/provisioning/paneloperation/?status__exact=pending",
            "/admin/notifications/delivery/",
            "/admin/common/jobrun/",
            "/admin/servers/serverhealth/",
            "/admin/provisioning/driftitem/",
        ]
    )

    # Health: helper module, the panel simulator, application-API calls.
    try:
        from tests.benchmarks.bench_fleet_health import bench_health
    except ImportError as exc:  # pragma: no cover
        out(f"health: not measured ({exc})")
    else:
        # A fleet of its own: the renewal fleet is not on the simulator's panel.
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE servers_deployment RESTART IDENTITY CASCADE")
        result = bench_health(args.health)
        out(f"health check: {result}")

    if not args.keep_db:
        connection.close()
        recreate_database(args.db_name, args.pg, drop_only=True)
    broker.flushdb()
    return 0


if __name__ == "__main__":
    sys.exit(main())
