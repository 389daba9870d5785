"""Benchmark: the admin's analytics page at 100k deployments, beside hand-written SQL.

    .venv/bin/python tests/benchmarks/bench_analytics.py --count 100000 --repeat 3

Creates its own PostgreSQL database (portal_bench_analytics, dropped afterwards unless
--keep-db), migrates it, seeds the demo catalog (plus EUR prices: two currencies) and then grows
the data in three steps, each set-based (INSERT..SELECT over generate_series, no per-row ORM
save): a tiny dataset (--tiny deployments), --small (1k) and --count (100k). Per deployment: its
customer, an order (USD or EUR, an add-on on every third), a provisioning request and run
(succeeded, failed, needing attention or still running, finished over the last 90 days; every
tenth succeeded server also has an earlier failed run), its step attempts (forward, and
compensations for the failed runs), a paid new-order invoice, one or two renewal invoices (paid on
time, late, unpaid, cancelled, refunded), their payments, and four notification deliveries
(server ready and invoice created, by e-mail and WhatsApp, mixed statuses).

At each size, for the 30 d and 365 d periods: the page rendered through Django's test client as
a staff user with a verified second factor (--repeat times after one warm-up request), its query
count (CaptureQueriesContext) and time, beside the baseline: the same aggregates as raw SQL
statements on a cursor, timed the same way, with the ratio page / baseline. The query count
must be the same at every size ("constant: yes/no"), and the selectors' figures must equal the
baseline's ("figures match"). At the largest size the page's slowest queries are printed with
their EXPLAIN (ANALYZE) so a missing index shows.
"""

import argparse
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.bench_notifications import out, recreate_database  # noqa: E402

URL = "/admin/analytics/"
PERIODS = (30, 365)
# Every deployment's number n is panel_server_id - PANEL_OFFSET: the seed's later statements find
# their deployment through that unique index instead of a name.
PANEL_OFFSET = 3_000_000


# ---------------------------------------------------------------------- seeding


def insert_select(model: Any, values: dict[str, str], source: str) -> int:
    """INSERT INTO model's table (the given columns, plus every other NOT NULL column at its
    model default) SELECT ... `source` (FROM ... WHERE ...). Returns the rows written."""
    from django.db import connection

    columns, expressions, params = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key and field.column not in values:
            continue
        columns.append(field.column)
        if field.column in values:
            expressions.append(values[field.column])
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            expressions.append("now()")
        elif field.null:
            expressions.append("NULL")
        elif field.get_default() is not None:  # its default, or "" for a text field
            expressions.append("%s")
            params.append(field.get_db_prep_save(field.get_default(), connection))
        else:
            raise ValueError(f"{model.__name__}.{field.name} needs a value")
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
        f"SELECT {', '.join(expressions)} {source}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def seed_currencies() -> None:
    """The demo catalog sells in USD only: EUR prices for every plan (monthly, annual) so the
    page shows two currencies. The add-on has no EUR price: MRR falls back to its sold amount."""
    from billing.models import PlanPrice

    insert_select(
        PlanPrice,
        {
            "plan_id": "p.plan_id",
            "billing_cycle": "p.billing_cycle",
            "currency": "'EUR'",
            "amount": "round(p.amount * 0.92, 2)",
        },
        "FROM billing_planprice p WHERE p.currency = 'USD' "
        "AND p.billing_cycle IN ('monthly', 'annual')",
    )


def seed(first: int, last: int) -> dict[str, int]:
    """Deployments numbered first..last (inclusive) with everything the page reads."""
    from django.contrib.auth import get_user_model

    from billing.models import Addon, Invoice, Order, OrderAddon, Payment, Plan
    from notifications.models import Delivery
    from provisioning.models import ProvisioningRequest, ProvisioningRun
    from provisioning.models.runs import ProvisioningStepAttempt
    from provisioning.saga.steps import STEP_NAMES
    from servers.models import Deployment, Node

    nodes = list(Node.objects.order_by("location_id", "pk").values_list("pk", "location_id"))
    plans = dict(
        Plan.objects.filter(slug__in=["bronze", "silver", "gold"]).values_list("slug", "pk")
    )
    addon_id = Addon.objects.order_by("pk").values_list("pk", flat=True).first()
    steps = "(ARRAY[" + ", ".join(f"'{name}'" for name in STEP_NAMES) + "])"
    counts: dict[str, int] = {}
    series = f"FROM generate_series({int(first)}, {int(last)}) AS n"
    # n of a deployment row d: its panel server id minus the offset.
    mine = f"d.panel_server_id BETWEEN {PANEL_OFFSET + first} AND {PANEL_OFFSET + last}"
    n = f"(d.panel_server_id - {PANEL_OFFSET})"

    counts["users"] = insert_select(
        get_user_model(),
        {
            "password": "'!'",  # unusable: these customers never log in
            "is_superuser": "false",
            "username": "'an-' || n || '@example.com'",
            "email": "'an-' || n || '@example.com'",
            "is_staff": "false",
            "is_active": "true",
            "date_joined": "now() - interval '120 days'",
            "first_name": "''",
            "last_name": "''",
        },
        series,
    )

    # Status by bucket: 78 % active, 6 % suspended, 10 % terminated, 3 % failed, 3 % provisioning.
    bucket = "mod(n * 7919, 100)"
    status = (
        f"CASE WHEN {bucket} < 78 THEN 'active' WHEN {bucket} < 84 THEN 'suspended' "
        f"WHEN {bucket} < 94 THEN 'terminated' WHEN {bucket} < 97 THEN 'failed' "
        "ELSE 'provisioning' END"
    )
    # The run finished over the last 90 days; the customer waited 30 s .. 15 min (every 50th: an
    # hour more) between payment and the run's end.
    finished = "(now() - make_interval(mins => mod(n * 31, 90 * 24 * 60)::int))"
    node = f"CASE WHEN mod(n, 2) = 0 THEN {nodes[0][0]} ELSE {nodes[-1][0]} END"
    location = f"CASE WHEN mod(n, 2) = 0 THEN {nodes[0][1]} ELSE {nodes[-1][1]} END"
    counts["deployments"] = insert_select(
        Deployment,
        {
            "created_at": f"{finished} - interval '1 hour'",
            "name": "'an-' || n",
            "plan_slug": "(ARRAY['bronze', 'silver', 'gold'])[1 + mod(n, 3)]",
            "plan_name": "(ARRAY['Bronze', 'Silver', 'Gold'])[1 + mod(n, 3)]",
            "billing_cycle": "CASE WHEN mod(n, 10) = 0 THEN 'annual' ELSE 'monthly' END",
            "status": "s.status",
            "next_due_date": "CASE WHEN s.status IN ('active', 'suspended') "
            "THEN current_date + mod(n, 30)::int END",
            "panel_server_id": f"{PANEL_OFFSET} + n",
            "panel_identifier": "lpad(to_hex(n), 8, '0')",
            "activated_at": f"CASE WHEN s.status IN ('active', 'suspended', 'terminated') "
            f"THEN {finished} END",
            "suspended_at": "CASE WHEN s.status = 'suspended' THEN now() END",
            # Terminated some time between going live and now.
            "terminated_at": f"CASE WHEN s.status = 'terminated' THEN {finished} "
            f"+ (now() - {finished}) * (mod(n * 37, 100) / 100.0) END",
            "customer_id": "u.id",
            "location_id": location,
            "node_id": node,
        },
        f"{series} JOIN auth_user u ON u.username = 'an-' || n || '@example.com' "
        f"CROSS JOIN LATERAL (SELECT {status} AS status) s",
    )

    counts["orders"] = insert_select(
        Order,
        {
            "created_at": "d.created_at",
            "billing_cycle": "d.billing_cycle",
            "currency": f"CASE WHEN mod({n}, 10) < 7 THEN 'USD' ELSE 'EUR' END",
            "server_name": "d.name",
            "status": "CASE WHEN d.status IN ('active', 'suspended', 'terminated') "
            "THEN 'completed' ELSE 'provisioning' END",
            "confirmed_at": "d.created_at",
            "completed_at": "CASE WHEN d.status IN ('active', 'suspended', 'terminated') "
            "THEN d.activated_at END",
            "customer_id": "d.customer_id",
            "deployment_id": "d.id",
            "location_id": "d.location_id",
            "plan_id": f"(ARRAY[{plans['bronze']}, {plans['silver']}, {plans['gold']}])"
            f"[1 + mod({n}, 3)]",
        },
        f"FROM servers_deployment d WHERE {mine}",
    )
    counts["order add-ons"] = insert_select(
        OrderAddon,
        {
            "name": "'Private Instance'",
            "amount": "CASE WHEN o.currency = 'USD' THEN 3.00 ELSE 2.80 END",
            "addon_id": str(addon_id),
            "order_id": "o.id",
        },
        f"FROM billing_order o JOIN servers_deployment d ON d.id = o.deployment_id "
        f"WHERE {mine} AND mod({n}, 3) = 0",
    )

    # Paid (the request) 30 s .. 15 min before the run's end; every 50th waited an hour more.
    waited = (
        f"make_interval(secs => 30 + mod({n} * 7, 870)"
        f" + CASE WHEN mod({n}, 50) = 0 THEN 3600 ELSE 0 END)"
    )
    run_end = f"(now() - make_interval(mins => mod({n} * 31, 90 * 24 * 60)::int))"
    counts["provisioning requests"] = insert_select(
        ProvisioningRequest,
        {
            "created_at": f"{run_end} - {waited}",
            "order_reference": "'ORD-AN-' || d.id",
            "status": "CASE d.status WHEN 'failed' THEN 'failed' WHEN 'provisioning' "
            "THEN 'in_progress' ELSE 'succeeded' END",
            "requested_by": "'bench'",
            "automatic": "true",
            "deployment_id": "d.id",
        },
        f"FROM servers_deployment d WHERE {mine}",
    )
    run_status = (
        "CASE WHEN d.status = 'provisioning' THEN 'running' "
        f"WHEN d.status = 'failed' THEN (CASE WHEN mod({n}, 2) = 0 THEN 'failed' "
        "ELSE 'needs_attention' END) ELSE 'succeeded' END"
    )
    run_source = (
        "FROM servers_deployment d JOIN provisioning_provisioningrequest q "
        f"ON q.deployment_id = d.id WHERE {mine}"
    )
    run_values = {
        "created_at": "q.created_at",
        "deadline_at": "q.created_at + interval '2 hours'",
        "started_at": "q.created_at + interval '2 seconds'",
        "triggered_by": "'bench'",
        "deployment_id": "d.id",
        "request_id": "q.id",
        "node_id": "d.node_id",
    }
    counts["provisioning runs"] = insert_select(
        ProvisioningRun,
        {
            **run_values,
            "status": run_status,
            "step_index": f"CASE WHEN d.status IN ('failed', 'provisioning') "
            f"THEN mod({n}, 7) ELSE 7 END",
            "finished_at": f"CASE WHEN d.status = 'provisioning' THEN NULL ELSE {run_end} END",
            "failed_step": f"CASE WHEN d.status = 'failed' THEN {steps}[1 + mod({n}, 7)] "
            "ELSE '' END",
            "panel_server_id": "CASE WHEN d.status IN ('active', 'suspended', 'terminated') "
            "THEN d.panel_server_id END",
        },
        run_source,
    )
    # Every tenth succeeded server failed once first (staff retried it 10 minutes later).
    counts["provisioning runs"] += insert_select(
        ProvisioningRun,
        {
            **run_values,
            "status": "'failed'",
            "step_index": "5",
            "finished_at": f"{run_end} - {waited} + interval '1 minute'",
            "failed_step": f"{steps}[6]",
        },
        f"{run_source} AND d.status IN ('active', 'suspended', 'terminated') AND mod({n}, 10) = 1",
    )
    # Step attempts: forward steps up to where the run got (the last one failed or running for
    # runs that did not succeed), then compensations of the steps before it, newest first.
    counts["step attempts"] = insert_select(
        ProvisioningStepAttempt,
        {
            "step": f"{steps}[k]",
            "direction": "'forward'",
            "attempt": "1",
            "fence": "1",
            "status": "CASE WHEN r.status = 'succeeded' OR k <= r.step_index THEN 'succeeded' "
            "WHEN r.status = 'running' THEN 'running' ELSE 'failed' END",
            "started_at": "r.started_at + make_interval(secs => k * 20)",
            "finished_at": "CASE WHEN r.status = 'running' AND k > r.step_index THEN NULL "
            "ELSE r.started_at + make_interval(secs => k * 20 + 5) END",
            "duration_ms": "CASE WHEN r.status = 'running' AND k > r.step_index THEN NULL "
            "ELSE 5000 END",
            "summary": "'{}'::jsonb",
            "error": "''",
            "run_id": "r.id",
        },
        f"FROM provisioning_provisioningrun r JOIN servers_deployment d ON d.id = r.deployment_id "
        f"CROSS JOIN LATERAL generate_series(1, CASE WHEN r.status = 'succeeded' "
        f"THEN {len(STEP_NAMES)} ELSE r.step_index + 1 END) AS k WHERE {mine}",
    )
    counts["step attempts"] += insert_select(
        ProvisioningStepAttempt,
        {
            "step": f"{steps}[k]",
            "direction": "'compensate'",
            "attempt": "1",
            "fence": "1",
            "status": "CASE WHEN r.status = 'needs_attention' AND k = 1 THEN 'failed' "
            "ELSE 'succeeded' END",
            "started_at": "r.finished_at - make_interval(secs => k * 3)",
            "finished_at": "r.finished_at - make_interval(secs => k * 3 - 2)",
            "duration_ms": "2000",
            "summary": "'{}'::jsonb",
            "error": "''",
            "run_id": "r.id",
        },
        f"FROM provisioning_provisioningrun r JOIN servers_deployment d ON d.id = r.deployment_id "
        f"CROSS JOIN LATERAL generate_series(1, r.step_index) AS k "
        f"WHERE {mine} AND r.status IN ('failed', 'needs_attention')",
    )

    price = (
        "JOIN billing_planprice pp ON pp.plan_id = o.plan_id "
        "AND pp.billing_cycle = o.billing_cycle AND pp.currency = o.currency"
    )
    invoice_values = {
        "kind": "'new_order'",
        "currency": "o.currency",
        "subtotal": "pp.amount",
        "discount_total": "0",
        "total": "pp.amount",
        "credit_applied": "0",
        "customer_id": "d.customer_id",
        "deployment_id": "d.id",
        "order_id": "o.id",
    }
    counts["invoices"] = insert_select(
        Invoice,
        {
            **invoice_values,
            "created_at": "q.created_at - interval '1 hour'",
            "number": "'AN-O-' || d.id",
            "status": "'paid'",
            "issued_at": "q.created_at - interval '1 hour'",
            "due_date": "(q.created_at - interval '1 hour')::date",
            "paid_at": "q.created_at",
        },
        "FROM servers_deployment d JOIN billing_order o ON o.deployment_id = d.id "
        f"JOIN provisioning_provisioningrequest q ON q.deployment_id = d.id {price} WHERE {mine}",
    )
    # Renewals: one per server that went live, a second for every other one, due over the last
    # 365 days: 65 % paid on time, 15 % late, 13 % unpaid, 4 % cancelled, 3 % refunded.
    due = f"(current_date - mod({n} * 11 + k * 173, 365)::int)"
    kind = f"mod({n} * 53 + k * 17, 100)"
    renewal_status = (
        f"CASE WHEN {kind} < 80 THEN 'paid' WHEN {kind} < 93 THEN 'unpaid' "
        f"WHEN {kind} < 97 THEN 'cancelled' ELSE 'refunded' END"
    )
    paid_at = (
        f"CASE WHEN {kind} < 65 OR {kind} >= 97 "
        f"THEN (({due} - mod({kind}, 5)::int)::timestamp + interval '10 hours') AT TIME ZONE 'UTC' "
        f"WHEN {kind} < 80 THEN LEAST(now(), (({due} + 1 + mod({kind}, 20)::int)::timestamp "
        "+ interval '10 hours') AT TIME ZONE 'UTC') END"
    )
    counts["invoices"] += insert_select(
        Invoice,
        {
            **invoice_values,
            "created_at": f"({due} - 7)::timestamp",
            "kind": "'renewal'",
            "number": "'AN-R-' || d.id || '-' || k",
            "status": renewal_status,
            "issued_at": f"({due} - 7)::timestamp",
            "due_date": due,
            "paid_at": paid_at,
            "period_start": due,
            "period_end": f"{due} + 30",
        },
        "FROM servers_deployment d JOIN billing_order o ON o.deployment_id = d.id "
        f"{price} CROSS JOIN generate_series(1, 2) AS k "
        f"WHERE {mine} AND d.activated_at IS NOT NULL AND (k = 1 OR mod({n}, 2) = 0)",
    )
    counts["payments"] = insert_select(
        Payment,
        {
            "created_at": "i.paid_at",
            "provider": f"CASE WHEN mod({n}, 4) = 0 THEN 'stripe' ELSE 'manual' END",
            "amount": "i.total",
            "currency": "i.currency",
            "reference": "''",
            "status": "CASE WHEN i.status = 'refunded' THEN 'refunded' ELSE 'succeeded' END",
            "actor_label": "'bench'",
            "note": "''",
            "invoice_id": "i.id",
        },
        "FROM billing_invoice i JOIN servers_deployment d ON d.id = i.deployment_id "
        f"WHERE {mine} AND i.paid_at IS NOT NULL",
    )

    # Deliveries: "server ready" when the run ended and "invoice created" over the last year,
    # each by e-mail and WhatsApp. E-mail: 85 % sent, 5 % queued, 10 % failed. WhatsApp: 50 %
    # delivered, 20 % read, 8 % read without a delivered receipt, 10 % sent only, 4 % queued,
    # 8 % failed.
    c = f"mod({n} * 61 + e * 29 + ch * 7, 100)"
    created = (
        f"CASE WHEN e = 1 THEN {run_end} "
        f"ELSE now() - make_interval(mins => mod({n} * 43, 365 * 24 * 60)::int) END"
    )
    delivery_status = (
        f"CASE WHEN ch = 1 THEN (CASE WHEN {c} < 85 THEN 'sent' WHEN {c} < 90 THEN 'queued' "
        f"ELSE 'failed' END) ELSE (CASE WHEN {c} < 50 THEN 'delivered' WHEN {c} < 78 THEN 'read' "
        f"WHEN {c} < 88 THEN 'sent' WHEN {c} < 92 THEN 'queued' ELSE 'failed' END) END"
    )
    after = f"make_interval(secs => 1 + mod({n} * 13 + e, 60))"
    counts["deliveries"] = insert_select(
        Delivery,
        {
            "created_at": "x.created",
            "event": "CASE WHEN e = 1 THEN 'server_ready' ELSE 'invoice_created' END",
            "event_key": "'an-' || d.id",
            "audience": "'customer'",
            "channel": "CASE WHEN ch = 1 THEN 'email' ELSE 'whatsapp' END",
            "recipient": "CASE WHEN ch = 1 THEN 'an-' || d.id || '@example.com' "
            "ELSE '+62812' || lpad(d.id::text, 7, '0') END",
            "status": "x.status",
            "attempts": "CASE WHEN x.status = 'queued' THEN 0 ELSE 1 END",
            "sent_at": f"CASE WHEN x.status IN ('sent', 'delivered', 'read') "
            f"THEN x.created + {after} END",
            "delivered_at": f"CASE WHEN x.status = 'delivered' OR (x.status = 'read' AND {c} < 70) "
            f"THEN x.created + {after} * 3 END",
            "read_at": f"CASE WHEN x.status = 'read' THEN x.created + {after} * 10 END",
            "failed_at": f"CASE WHEN x.status = 'failed' THEN x.created + {after} END",
            "first_attempt_at": f"CASE WHEN x.status <> 'queued' THEN x.created + {after} END",
            "user_id": "d.customer_id",
        },
        "FROM servers_deployment d CROSS JOIN generate_series(1, 2) AS e "
        "CROSS JOIN generate_series(1, 2) AS ch "
        f"CROSS JOIN LATERAL (SELECT {created} AS created, {delivery_status} AS status) x "
        f"WHERE {mine}",
    )
    return counts


# ---------------------------------------------------------------------- the baseline

BASELINE = {
    "runs: totals": """
        SELECT count(*) FILTER (WHERE status = 'succeeded'),
               count(*) FILTER (WHERE status IN ('failed', 'needs_attention'))
        FROM provisioning_provisioningrun
        WHERE status IN ('succeeded', 'failed', 'needs_attention')
          AND finished_at >= %(start)s AND finished_at < %(end)s""",
    "runs: time to active p50/p95": """
        SELECT percentile_cont(0.5) WITHIN GROUP
                   (ORDER BY EXTRACT(EPOCH FROM r.finished_at - q.created_at)),
               percentile_cont(0.95) WITHIN GROUP
                   (ORDER BY EXTRACT(EPOCH FROM r.finished_at - q.created_at))
        FROM provisioning_provisioningrun r
        JOIN provisioning_provisioningrequest q ON q.id = r.request_id
        WHERE r.status = 'succeeded' AND r.finished_at >= %(start)s AND r.finished_at < %(end)s""",
    "runs: failures by step": """
        SELECT failed_step, count(*) FILTER (WHERE status = 'failed'),
               count(*) FILTER (WHERE status = 'needs_attention')
        FROM provisioning_provisioningrun
        WHERE status IN ('failed', 'needs_attention')
          AND finished_at >= %(start)s AND finished_at < %(end)s
        GROUP BY failed_step ORDER BY failed_step""",
    "runs: per day": """
        SELECT (finished_at AT TIME ZONE %(tz)s)::date,
               count(*) FILTER (WHERE status = 'succeeded'),
               count(*) FILTER (WHERE status IN ('failed', 'needs_attention'))
        FROM provisioning_provisioningrun
        WHERE status IN ('succeeded', 'failed', 'needs_attention')
          AND finished_at >= %(start)s AND finished_at < %(end)s
        GROUP BY 1 ORDER BY 1""",
    "deliveries: counts": """
        SELECT channel, count(*),
               count(*) FILTER (WHERE status IN ('delivered', 'read')
                                OR (channel = 'email' AND status = 'sent')),
               count(*) FILTER (WHERE status = 'failed')
        FROM notifications_delivery
        WHERE created_at >= %(start)s AND created_at < %(end)s
        GROUP BY channel ORDER BY channel""",
    "deliveries: latency p50/p95": """
        SELECT channel,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM
                   COALESCE(delivered_at, read_at, sent_at) - created_at)),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM
                   COALESCE(delivered_at, read_at, sent_at) - created_at))
        FROM notifications_delivery
        WHERE created_at >= %(start)s AND created_at < %(end)s
          AND (status IN ('delivered', 'read') OR (channel = 'email' AND status = 'sent'))
        GROUP BY channel ORDER BY channel""",
    "nodes": """
        SELECT n.id, n.name, l.short_code, n.memory_mb, n.allocated_memory_mb, n.disk_mb,
               n.allocated_disk_mb,
               count(d.id) FILTER (WHERE d.status IN ('active', 'suspended'))
        FROM servers_node n JOIN servers_location l ON l.id = n.location_id
        LEFT JOIN servers_deployment d ON d.node_id = n.id
        GROUP BY n.id, l.short_code ORDER BY l.short_code, n.name, n.id""",
    "churn": """
        SELECT count(*) FILTER (WHERE activated_at < %(start)s
                                AND (terminated_at IS NULL OR terminated_at >= %(start)s)),
               count(*) FILTER (WHERE activated_at < %(start)s
                                AND terminated_at >= %(start)s AND terminated_at < %(end)s)
        FROM servers_deployment""",
    "revenue per currency and day": """
        SELECT currency, (created_at AT TIME ZONE %(tz)s)::date, sum(amount), count(*)
        FROM billing_payment
        WHERE status = 'succeeded' AND created_at >= %(start)s AND created_at < %(end)s
        GROUP BY 1, 2 ORDER BY 1, 2""",
    "MRR": """
        SELECT o.currency, o.billing_cycle,
               sum(COALESCE(pp.amount, 0) + COALESCE(a.total, 0)), count(*)
        FROM billing_order o
        JOIN servers_deployment d ON d.id = o.deployment_id
        LEFT JOIN billing_plan pl ON pl.slug = d.plan_slug
        LEFT JOIN billing_planprice pp ON pp.plan_id = pl.id
            AND pp.billing_cycle = o.billing_cycle AND pp.currency = o.currency
        LEFT JOIN (SELECT oa.order_id, sum(COALESCE(ap.amount, oa.amount)) AS total
                   FROM billing_orderaddon oa
                   JOIN billing_order o2 ON o2.id = oa.order_id
                   LEFT JOIN billing_addonprice ap ON ap.addon_id = oa.addon_id
                       AND ap.billing_cycle = o2.billing_cycle AND ap.currency = o2.currency
                   GROUP BY oa.order_id) a ON a.order_id = o.id
        WHERE d.status = 'active'
        GROUP BY 1, 2 ORDER BY 1, 2""",
    "renewals on time": """
        SELECT count(*),
               count(*) FILTER (WHERE paid_at IS NOT NULL AND status IN ('paid', 'refunded')
                                AND (paid_at AT TIME ZONE %(tz)s)::date <= due_date),
               count(*) FILTER (WHERE paid_at IS NOT NULL AND status IN ('paid', 'refunded')
                                AND (paid_at AT TIME ZONE %(tz)s)::date > due_date)
        FROM billing_invoice
        WHERE kind = 'renewal' AND due_date >= %(first)s AND due_date <= %(last)s
          AND status <> 'cancelled'""",
}


def baseline(period: Any) -> tuple[float, dict[str, list[tuple]]]:
    """The page's aggregates as raw SQL on one cursor: (seconds, rows per statement)."""
    from django.conf import settings
    from django.db import connection

    params = {
        "start": period.start,
        "end": period.end,
        "first": period.first_day,
        "last": period.last_day,
        "tz": settings.BILLING_TIME_ZONE,
    }
    results = {}
    clock = time.monotonic()
    with connection.cursor() as cursor:
        for name, sql in BASELINE.items():
            cursor.execute(sql, params)
            results[name] = cursor.fetchall()
    return time.monotonic() - clock, results


def figures_match(period: Any, rows: dict[str, list[tuple]]) -> list[str]:
    """Where the selectors' figures differ from the baseline's (empty: they match)."""
    from billing.analytics import billing_analytics
    from notifications.analytics import delivery_analytics
    from provisioning.analytics import provisioning_analytics
    from servers.analytics import deployment_churn

    problems = []

    def check(what: str, page: Any, raw: Any) -> None:
        if page != raw:
            problems.append(f"{what}: page {page!r} != baseline {raw!r}")

    def close(a: float | None, b: float | None) -> bool:
        return (a is None and b is None) or (
            a is not None and b is not None and abs(a - b) <= 1e-6 * max(1.0, abs(b))
        )

    runs = provisioning_analytics(period=period)
    check("runs", (runs.succeeded, runs.failed), rows["runs: totals"][0])
    raw_p = rows["runs: time to active p50/p95"][0]
    if not (
        close(runs.time_to_active_p50_s, raw_p[0]) and close(runs.time_to_active_p95_s, raw_p[1])
    ):
        check("time to active", (runs.time_to_active_p50_s, runs.time_to_active_p95_s), raw_p)
    check(
        "failures by step",
        sorted((s.step, s.failed, s.needs_attention) for s in runs.failures_by_step),
        sorted(rows["runs: failures by step"]),
    )
    check(
        "runs per day",
        [(d.day, d.succeeded, d.failed) for d in runs.per_day if d.total],
        rows["runs: per day"],
    )
    channels = {row.channel: row for row in delivery_analytics(period=period)}
    check(
        "deliveries",
        sorted((c, r.total, r.delivered, r.failed) for c, r in channels.items() if r.total),
        sorted(rows["deliveries: counts"]),
    )
    for channel, p50, p95 in rows["deliveries: latency p50/p95"]:
        row = channels[channel]
        if not (close(row.latency_p50_s, p50) and close(row.latency_p95_s, p95)):
            check(f"{channel} latency", (row.latency_p50_s, row.latency_p95_s), (p50, p95))
    churn = deployment_churn(period=period)
    check("churn", (churn.live_at_start, churn.ended), rows["churn"][0])
    money = billing_analytics(period=period)
    raw_revenue: dict[str, Decimal] = {}
    for currency, _day, amount, _n in rows["revenue per currency and day"]:
        raw_revenue[currency] = raw_revenue.get(currency, Decimal(0)) + amount
    check(
        "revenue",
        {r.revenue.currency: r.revenue.amount for r in money.revenue},
        raw_revenue,
    )
    from billing.models import BillingCycle

    raw_mrr: dict[str, Decimal] = {}
    for currency, cycle, total, _n in rows["MRR"]:
        raw_mrr[currency] = raw_mrr.get(currency, Decimal(0)) + total / BillingCycle(cycle).months
    check(
        "MRR",
        {m.mrr.currency: round(m.mrr.amount, 2) for m in money.mrr},
        {c: round(a, 2) for c, a in raw_mrr.items()},
    )
    check(
        "renewals",
        (money.renewals.due, money.renewals.paid_on_time, money.renewals.paid_late),
        rows["renewals on time"][0],
    )
    return problems


# ---------------------------------------------------------------------- the page


def staff_client() -> Any:
    """A test client logged in as staff whose session passed the second factor (conftest's
    StaffVerifiedClient: a confirmed TOTP device and a session verified by it)."""
    from django.contrib.auth import get_user_model

    from conftest import StaffVerifiedClient

    staff = get_user_model().objects.create_user(
        "bench-staff@example.com", "bench-staff@example.com", "x", is_staff=True
    )
    client = StaffVerifiedClient(HTTP_HOST="localhost")
    client.force_login(staff)
    return client


def page(client: Any, days: int, repeat: int) -> tuple[list[float], list[int], Any]:
    """--repeat renders of the page for the last `days` days: (seconds, query counts, the
    queries of the last render)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(URL, {"period": str(days)})  # warm-up: the session's first write, caches
    times, counts = [], []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            clock = time.monotonic()
            response = client.get(URL, {"period": str(days)})
            times.append(time.monotonic() - clock)
        assert response.status_code == 200, response.status_code
        counts.append(len(queries))
    return times, counts, queries


def explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(f"      {row[0]}" for row in cursor.fetchall())


def measure(client: Any, label: str, repeat: int, *, slowest: int = 0) -> dict[int, int]:
    from common.analytics import Period
    from common.dates import billing_today

    query_counts = {}
    for days in PERIODS:
        period = Period.last_days(days, today=billing_today())
        times, counts, queries = page(client, days, repeat)
        raw_times, rows = [], {}
        for _ in range(repeat):
            seconds, rows = baseline(period)
            raw_times.append(seconds)
        problems = figures_match(period, rows)
        query_counts[days] = counts[0]
        shown_counts = (len(set(counts)) == 1 and counts[0]) or counts
        out(
            f"{label}, {days:>3} d: page {shown_counts} queries, "
            f"min {min(times) * 1000:.0f} ms / median {statistics.median(times) * 1000:.0f} ms | "
            f"baseline {len(BASELINE)} raw statements min {min(raw_times) * 1000:.0f} ms / "
            f"median {statistics.median(raw_times) * 1000:.0f} ms | page/baseline "
            f"{min(times) / min(raw_times):.1f}x (min), "
            f"{statistics.median(times) / statistics.median(raw_times):.1f}x (median) | "
            f"figures match: {'yes' if not problems else 'NO'}"
        )
        for problem in problems:
            out(f"    mismatch: {problem}")
        if slowest:
            ranked = sorted(queries.captured_queries, key=lambda q: -float(q["time"]))
            out(f"    slowest {slowest} of the page's queries ({days} d):")
            for query in ranked[:slowest]:
                out(f"    {float(query['time']) * 1000:.0f} ms: {query['sql'][:160]}...")
                out(explain(query["sql"]))
    return query_counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="deployments at the end")
    parser.add_argument("--small", type=int, default=1_000, help="deployments at the middle size")
    parser.add_argument("--tiny", type=int, default=10, help="deployments at the start")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--slowest", type=int, default=3, help="queries to EXPLAIN at --count")
    parser.add_argument("--db-name", default="portal_bench_analytics")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    if not args.tiny < args.small < args.count:
        parser.error("--tiny < --small < --count")

    recreate_database(args.db_name, args.pg)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.django.test",
            "TEST_DATABASE_URL": f"{args.pg.replace('postgresql://', 'postgres://')}/{args.db_name}",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    call_command("seed_catalog", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    seed_currencies()
    client = staff_client()

    sizes = [("tiny", args.tiny), ("small", args.small), ("large", args.count)]
    query_counts: dict[str, dict[int, int]] = {}
    seeded = 0
    for name, size in sizes:
        clock = time.monotonic()
        counts = seed(seeded + 1, size)
        seeded = size
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        out(
            f"seeded up to {size} deployments in {time.monotonic() - clock:.1f} s (this step: "
            + ", ".join(f"{v} {k}" for k, v in counts.items())
            + ")"
        )
        label = f"{size:>7} deployments"
        query_counts[name] = measure(
            client, label, args.repeat, slowest=args.slowest if name == "large" else 0
        )

    out()
    for days in PERIODS:
        figures = [query_counts[name][days] for name, _size in sizes]
        constant = len(set(figures)) == 1
        out(
            f"query count, {days} d: {figures[0]} at {args.tiny}, {figures[1]} at {args.small}, "
            f"{figures[2]} at {args.count} deployments: constant: {'yes' if constant else 'no'}"
        )

    if not args.keep_db:
        connection.close()
        recreate_database(args.db_name, args.pg, drop_only=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
