"""The admin's analytics page: exact figures on a small hand-built dataset, the period form, who
may see it, and a query count that does not grow with the data."""

import datetime as dt
import itertools
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.analytics import billing_analytics
from billing.models import (
    AddonPrice,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    Order,
    OrderAddon,
    OrderStatus,
    Payment,
    PaymentStatus,
    PlanPrice,
)
from common.analytics import Period, interpolated_percentile
from common.dates import billing_today, billing_tz
from common.money import Money
from notifications.analytics import delivery_analytics
from notifications.models import Audience, Channel, Delivery, DeliveryStatus, NotificationEvent
from provisioning.analytics import provisioning_analytics
from provisioning.models import ProvisioningRequest, ProvisioningRun, RunStatus
from servers.analytics import deployment_churn, node_utilisation
from servers.models import Deployment, DeploymentStatus
from tests import factories

URL = "/admin/analytics/"
_numbers = itertools.count(1)


def _ago(**delta: float) -> dt.datetime:
    return timezone.now() - dt.timedelta(**delta)


def _today() -> dt.date:
    return billing_today()


def _days_ago(days: int) -> dt.date:
    return _today() - dt.timedelta(days=days)


@pytest.fixture
def plan(db):
    plan = factories.PlanFactory(slug="analytics", monthly_price=Decimal("4.00"))
    PlanPrice.objects.create(plan=plan, billing_cycle="annual", currency="USD", amount="36.00")
    PlanPrice.objects.create(plan=plan, billing_cycle="monthly", currency="EUR", amount="5.00")
    return plan


@pytest.fixture
def addon(db):
    addon = factories.AddonFactory(slug="analytics-addon")
    AddonPrice.objects.filter(addon=addon).delete()
    AddonPrice.objects.create(addon=addon, billing_cycle="monthly", currency="USD", amount="1.00")
    return addon


@pytest.fixture
def location(db):
    return factories.LocationFactory(short_code="an")


def deployment(location, plan, *, status=DeploymentStatus.ACTIVE, cycle="monthly", **fields):
    number = next(_numbers)
    live = status in (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED)
    return Deployment.objects.create(
        customer=factories.UserFactory(),
        name=f"server-{number}",
        plan_slug=plan.slug,
        plan_name=plan.name,
        billing_cycle=cycle,
        location=location,
        status=status,
        panel_server_id=500_000 + number if live or status == DeploymentStatus.TERMINATED else None,
        **fields,
    )


def order_for(server, plan, *, currency="USD", addon=None, addon_amount="2.50"):
    order = Order.objects.create(
        customer=server.customer,
        plan=plan,
        billing_cycle=server.billing_cycle,
        location=server.location,
        currency=currency,
        server_name=server.name,
        deployment=server,
        status=OrderStatus.COMPLETED,
        confirmed_at=server.activated_at or timezone.now(),
        completed_at=server.activated_at or timezone.now(),
    )
    if addon is not None:
        OrderAddon.objects.create(order=order, addon=addon, name=addon.name, amount=addon_amount)
    return order


def invoice(customer, *, kind=InvoiceKind.NEW_ORDER, due=None, status=InvoiceStatus.UNPAID, **f):
    total = f.pop("total", Decimal("4.00"))
    return Invoice.objects.create(
        number=f"AN-{next(_numbers)}",
        customer=customer,
        kind=kind,
        currency=f.pop("currency", "USD"),
        subtotal=total,
        total=total,
        status=status,
        issued_at=timezone.now(),
        due_date=due or _today(),
        **f,
    )


def payment(customer, *, amount, currency, at, status=PaymentStatus.SUCCEEDED):
    paid = invoice(customer, currency=currency, total=amount, status=InvoiceStatus.PAID, paid_at=at)
    row = Payment.objects.create(
        invoice=paid,
        provider="manual",
        amount=amount,
        currency=currency,
        actor_label="test",
        status=status,
    )
    Payment.objects.filter(pk=row.pk).update(created_at=at)
    return row


def run(location, plan, *, status, finished_at=None, waited_s=0.0, failed_step=""):
    server = deployment(location, plan, status=DeploymentStatus.PROVISIONING)
    request = ProvisioningRequest.objects.create(
        deployment=server, order_reference=f"ORD-{server.pk}", requested_by="test"
    )
    if finished_at is not None:
        ProvisioningRequest.objects.filter(pk=request.pk).update(
            created_at=finished_at - dt.timedelta(seconds=waited_s)
        )
    return ProvisioningRun.objects.create(
        request=request,
        deployment=server,
        status=status,
        deadline_at=timezone.now() + dt.timedelta(hours=1),
        started_at=(finished_at or timezone.now()) - dt.timedelta(seconds=waited_s),
        finished_at=finished_at,
        triggered_by="test",
        failed_step=failed_step,
    )


def delivery(channel, status, *, created, **timestamps):
    row = Delivery.objects.create(
        event=NotificationEvent.SERVER_READY,
        event_key=f"an-{next(_numbers)}",
        audience=Audience.CUSTOMER,
        channel=channel,
        recipient="+6281234567890" if channel == Channel.WHATSAPP else "a@example.com",
        status=status,
        **{name: created + dt.timedelta(seconds=s) for name, s in timestamps.items()},
    )
    Delivery.objects.filter(pk=row.pk).update(created_at=created)


@pytest.fixture
def dataset(location, plan, addon):
    """The hand-built figures every test below checks (see each block's comment)."""
    recent = _ago(days=2)
    # Provisioning, finished in the last 30 days: 3 succeeded (paid -> active 60, 120, 600 s),
    # 3 failed (2 at create_server, one of them needing attention; 1 at create_user). Outside:
    # one succeeded 60 days ago; one still running.
    for waited in (60, 120, 600):
        run(location, plan, status=RunStatus.SUCCEEDED, finished_at=recent, waited_s=waited)
    run(location, plan, status=RunStatus.FAILED, finished_at=recent, failed_step="create_server")
    run(
        location,
        plan,
        status=RunStatus.NEEDS_ATTENTION,
        finished_at=recent,
        failed_step="create_server",
    )
    run(
        location, plan, status=RunStatus.FAILED, finished_at=_ago(days=3), failed_step="create_user"
    )
    run(location, plan, status=RunStatus.SUCCEEDED, finished_at=_ago(days=60), waited_s=30)
    run(location, plan, status=RunStatus.RUNNING)

    # Deliveries created in the period. E-mail: 3 sent after 10, 20, 30 s, 1 failed.
    # WhatsApp: delivered after 5 s, read after 15 s (no delivered receipt), 1 sent only, 1 queued.
    for seconds in (10, 20, 30):
        delivery(Channel.EMAIL, DeliveryStatus.SENT, created=recent, sent_at=seconds)
    delivery(Channel.EMAIL, DeliveryStatus.FAILED, created=recent, failed_at=3)
    delivery(Channel.WHATSAPP, DeliveryStatus.DELIVERED, created=recent, sent_at=1, delivered_at=5)
    delivery(Channel.WHATSAPP, DeliveryStatus.READ, created=recent, sent_at=1, read_at=15)
    delivery(Channel.WHATSAPP, DeliveryStatus.SENT, created=recent, sent_at=2)
    delivery(Channel.WHATSAPP, DeliveryStatus.QUEUED, created=recent)
    delivery(Channel.EMAIL, DeliveryStatus.SENT, created=_ago(days=60), sent_at=1)

    # Servers. Live since 100 days: USD monthly 4.00 + add-on at its catalog price 1.00; USD
    # annual 36.00 (3.00 a month); EUR monthly 5.00 + add-on with no EUR price, sold at 2.50;
    # a suspended one (no MRR). Active for 3 days: USD monthly 4.00. Terminated 5 and 50 days ago.
    long_ago = _ago(days=100)
    d1 = deployment(location, plan, activated_at=long_ago)
    order_for(d1, plan, addon=addon)
    d2 = deployment(location, plan, cycle="annual", activated_at=long_ago)
    order_for(d2, plan)
    d3 = deployment(location, plan, activated_at=long_ago)
    order_for(d3, plan, currency="EUR", addon=addon)
    d4 = deployment(location, plan, status=DeploymentStatus.SUSPENDED, activated_at=long_ago)
    order_for(d4, plan)
    d7 = deployment(location, plan, activated_at=_ago(days=3))
    order_for(d7, plan)
    for days in (5, 50):
        gone = deployment(
            location,
            plan,
            status=DeploymentStatus.TERMINATED,
            activated_at=long_ago,
            terminated_at=_ago(days=days),
        )
        order_for(gone, plan)

    # Revenue: USD 4.00 + 36.00, EUR 7.50 in the period; a refunded USD payment and one from
    # 60 days ago do not count.
    customer = d1.customer
    payment(customer, amount=Decimal("4.00"), currency="USD", at=recent)
    payment(customer, amount=Decimal("36.00"), currency="USD", at=_ago(days=1))
    payment(customer, amount=Decimal("7.50"), currency="EUR", at=recent)
    payment(
        customer,
        amount=Decimal("10.00"),
        currency="USD",
        at=recent,
        status=PaymentStatus.REFUNDED,
    )
    payment(customer, amount=Decimal("99.00"), currency="USD", at=_ago(days=60))

    # Renewals due in the period: paid 2 days early; paid on the due day at 23:00 (billing time
    # zone: on time); paid 3 days late; unpaid. Not counted: a cancelled one, one due 40 days ago
    # and a new-order invoice.
    renewal = {"kind": InvoiceKind.RENEWAL, "deployment": d1}
    late_evening = dt.datetime.combine(_days_ago(10), dt.time(23, 0), tzinfo=billing_tz())
    invoice(
        customer, due=_days_ago(10), status=InvoiceStatus.PAID, paid_at=_ago(days=12), **renewal
    )
    invoice(customer, due=_days_ago(10), status=InvoiceStatus.PAID, paid_at=late_evening, **renewal)
    invoice(customer, due=_days_ago(5), status=InvoiceStatus.PAID, paid_at=_ago(days=2), **renewal)
    invoice(customer, due=_days_ago(3), **renewal)
    invoice(customer, due=_days_ago(4), status=InvoiceStatus.CANCELLED, **renewal)
    invoice(customer, due=_days_ago(40), **renewal)
    invoice(customer, due=_days_ago(4))

    # Nodes: 50 % memory, disk 50 % of capacity doubled by overallocation; and one whose
    # overallocate of -1 means 99 % (as the panel reads it): 990 of 990 MiB = 100 %.
    factories.NodeFactory(
        name="node-a",
        location=location,
        allocated_memory_mb=32768,
        disk_overallocate_percent=100,
        allocated_disk_mb=1048576,
        free_allocations=7,
    )
    factories.NodeFactory(
        name="node-b",
        location=location,
        memory_mb=1000,
        memory_overallocate_percent=-1,
        allocated_memory_mb=990,
        disk_mb=0,
        free_allocations=0,
    )


def last(days: int) -> Period:
    return Period.last_days(days, today=_today())


# ---------------------------------------------------------------------- exact figures


def test_provisioning_figures(dataset):
    figures = provisioning_analytics(period=last(30))

    assert (figures.succeeded, figures.failed) == (3, 3)
    assert figures.success_rate == 0.5
    # percentile_cont over 60, 120, 600: the median, and 120 + 0.9 * (600 - 120).
    assert figures.time_to_active_p50_s == pytest.approx(120)
    assert figures.time_to_active_p95_s == pytest.approx(552)
    assert [(s.step, s.failed, s.needs_attention) for s in figures.failures_by_step] == [
        ("create_server", 1, 1),
        ("create_user", 1, 0),
    ]
    assert len(figures.per_day) == 30
    assert sum(d.succeeded for d in figures.per_day) == 3
    assert sum(d.failed for d in figures.per_day) == 3
    two_days_ago = (timezone.now() - dt.timedelta(days=2)).astimezone(billing_tz()).date()
    assert [d.day for d in figures.per_day if d.succeeded] == [two_days_ago]

    wider = provisioning_analytics(period=last(90))
    assert (wider.succeeded, wider.failed) == (4, 3)


def test_delivery_figures(dataset):
    whatsapp, email = delivery_analytics(period=last(30))

    assert (email.channel, email.total, email.delivered, email.failed, email.pending) == (
        "email",
        4,
        3,
        1,
        0,
    )
    assert email.delivery_rate == 0.75
    assert email.latency_p50_s == pytest.approx(20)
    assert email.latency_p95_s == pytest.approx(29)
    assert (whatsapp.total, whatsapp.delivered, whatsapp.failed, whatsapp.pending) == (4, 2, 0, 2)
    assert whatsapp.delivery_rate == 0.5
    assert whatsapp.latency_p50_s == pytest.approx(10)
    assert whatsapp.latency_p95_s == pytest.approx(14.5)


def test_money_figures(dataset):
    figures = billing_analytics(period=last(30))

    assert [(r.revenue, r.payments) for r in figures.revenue] == [
        (Money(Decimal("7.50"), "EUR"), 1),
        (Money(Decimal("40.00"), "USD"), 2),
    ]
    # MRR: USD 4.00 + 1.00 (add-on) + 36.00 / 12 + 4.00; EUR 5.00 + 2.50. Never added together.
    assert [(m.mrr, m.servers) for m in figures.mrr] == [
        (Money(Decimal("7.50"), "EUR"), 1),
        (Money(Decimal("12.00"), "USD"), 3),
    ]
    renewals = figures.renewals
    assert (renewals.due, renewals.paid_on_time, renewals.paid_late, renewals.unpaid) == (
        4,
        2,
        1,
        1,
    )
    assert renewals.on_time_rate == 0.5
    assert sum(d.amount for d in figures.revenue_per_day["USD"]) == Decimal("40.00")
    assert len(figures.revenue_per_day["EUR"]) == 30


def test_churn_and_nodes(dataset):
    churn = deployment_churn(period=last(30))
    assert (churn.live_at_start, churn.ended, churn.rate) == (5, 1, 0.2)
    wider = deployment_churn(period=last(90))
    assert (wider.live_at_start, wider.ended) == (6, 2)

    node_a, node_b = node_utilisation()
    assert (node_a.name, node_a.memory_share, node_a.disk_share, node_a.free_allocations) == (
        "node-a",
        0.5,
        0.5,
        7,
    )
    assert node_a.disk_capacity_mb == 2 * 1048576
    assert node_b.memory_capacity_mb == pytest.approx(990)
    assert node_b.memory_share == pytest.approx(1.0)
    assert node_b.disk_share is None  # no disk: nothing to divide by, shown as "-"


def test_empty_period_has_no_rates(db):
    figures = provisioning_analytics(period=last(7))
    assert figures.success_rate is None
    assert figures.time_to_active_p50_s is None
    assert all(row.delivery_rate is None for row in delivery_analytics(period=last(7)))
    money = billing_analytics(period=last(7))
    assert (money.revenue, money.mrr, money.renewals.on_time_rate) == ([], [], None)


def test_interpolated_percentile_matches_percentile_cont():
    # The SQLite fallback's definition, checked against percentile_cont's known values.
    assert interpolated_percentile([60, 120, 600], 0.95) == pytest.approx(552)
    assert interpolated_percentile([5], 0.95) == 5
    assert interpolated_percentile([], 0.5) is None


# ---------------------------------------------------------------------- the page


@pytest.fixture
def staff_client(client, staff):
    """The suite's client: a staff login through it also passes the second factor."""
    client.force_login(staff)
    return client


def test_page_renders_for_staff_with_figures_and_charts(staff_client, dataset):
    response = staff_client.get(URL)

    assert response.status_code == 200
    assert response.context["period"] == last(30)
    html = response.content.decode()
    assert '<td id="prov-rate">50.0 %</td>' in html
    assert '<td id="prov-p50">2.0 min</td>' in html
    assert '<td id="renewals-rate">50.0 %</td>' in html
    assert '<td id="churn-rate">20.0 %</td>' in html
    assert "7.50 EUR" in html
    assert "12.00 USD" in html
    assert html.count("<svg") >= 5  # runs/day, steps, deliveries, nodes, revenue per currency
    # The CSP allows neither inline styles nor inline scripts.
    assert " style=" not in html
    assert "<script>" not in html
    assert "css/admin_analytics.css" in html


def test_period_selection(staff_client, dataset):
    response = staff_client.get(URL, {"period": "90"})
    assert response.status_code == 200
    assert response.context["provisioning"].succeeded == 4
    assert response.context["churn"].live_at_start == 6

    # Only the day 60 days ago: its one run, its payment and its e-mail.
    day = _days_ago(60).isoformat()
    custom = staff_client.get(URL, {"period": "custom", "date_from": day, "date_to": day})
    assert custom.status_code == 200
    assert custom.context["period"] == Period(first_day=_days_ago(60), last_day=_days_ago(60))
    assert custom.context["provisioning"].succeeded == 1
    assert [r.revenue for r in custom.context["money"].revenue] == [Money(Decimal("99.00"), "USD")]
    totals = {item["row"].channel: item["row"].total for item in custom.context["deliveries"]}
    assert totals == {"email": 1, "whatsapp": 0}


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"period": "12"}, "period", "Select a valid choice"),
        (
            {"period": "custom", "date_from": "2026-13-01", "date_to": "2026-01-02"},
            "date_from",
            "Enter a valid date",
        ),
        ({"period": "custom", "date_to": "2026-01-02"}, "date_from", "Give the first day"),
        ({"period": "custom", "date_from": "2026-01-02"}, "date_to", "Give the last day"),
        (
            {"period": "custom", "date_from": "2026-01-05", "date_to": "2026-01-02"},
            "date_to",
            "cannot be before",
        ),
        (
            {"period": "custom", "date_from": "2020-01-01", "date_to": "2024-01-01"},
            "date_from",
            "at most 731 days",
        ),
        (
            {"period": "custom", "date_from": "0001-01-01", "date_to": "0001-01-02"},
            "date_from",
            "cannot be before 2000-01-01",
        ),
    ],
)
def test_bad_period_is_a_form_error(staff_client, query, field, message):
    response = staff_client.get(URL, query)

    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert "period" not in response.context
    assert message in response.content.decode()


def test_future_last_day_is_a_form_error(staff_client):
    tomorrow = (_today() + dt.timedelta(days=1)).isoformat()
    response = staff_client.get(
        URL, {"period": "custom", "date_from": _today().isoformat(), "date_to": tomorrow}
    )
    assert response.status_code == 400
    assert "cannot be in the future" in " ".join(response.context["form"].errors["date_to"])


def test_linked_from_the_admin_index(staff_client):
    response = staff_client.get("/admin/")
    assert response.status_code == 200
    assert f'href="{URL}"' in response.content.decode()


def test_refused_for_anonymous_customers_and_staff_without_second_factor(client, customer, staff):
    anonymous = Client().get(URL)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/admin/login/")

    client.force_login(customer)
    refused = client.get(URL)
    assert refused.status_code == 302
    assert refused["Location"].startswith("/admin/login/")

    unverified = Client()  # password step only: no second factor yet
    unverified.force_login(staff)
    assert unverified.get(URL).status_code == 302


# ---------------------------------------------------------------------- query count


def seed(count: int, location, plan) -> None:
    """`count` servers, each with an order, a provisioning request and run, two deliveries, a
    renewal invoice and a payment (bulk inserts: the size of the data, not the test's time)."""
    users = [
        factories.UserFactory.build(username=f"q{count}-{n}@example.com") for n in range(count)
    ]
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.bulk_create(users)
    now = timezone.now()
    offset = 900_000 + count * 1000
    servers = Deployment.objects.bulk_create(
        Deployment(
            customer=user,
            name=f"q-{n}",
            plan_slug=plan.slug,
            plan_name=plan.name,
            billing_cycle="monthly",
            location=location,
            status=DeploymentStatus.ACTIVE,
            panel_server_id=offset + n,
            activated_at=now - dt.timedelta(days=n % 60),
        )
        for n, user in enumerate(users)
    )
    Order.objects.bulk_create(
        Order(
            customer=s.customer,
            plan=plan,
            billing_cycle="monthly",
            location=location,
            currency=("USD", "EUR")[n % 2],
            server_name=s.name,
            deployment=s,
            status=OrderStatus.COMPLETED,
            confirmed_at=now,
            completed_at=now,
        )
        for n, s in enumerate(servers)
    )
    requests = ProvisioningRequest.objects.bulk_create(
        ProvisioningRequest(deployment=s, order_reference=f"Q-{s.pk}", requested_by="test")
        for s in servers
    )
    ProvisioningRun.objects.bulk_create(
        ProvisioningRun(
            request=r,
            deployment_id=r.deployment_id,
            status=(RunStatus.SUCCEEDED, RunStatus.FAILED)[n % 2],
            failed_step="" if n % 2 == 0 else f"step-{n % 5}",
            deadline_at=now,
            started_at=now - dt.timedelta(hours=1),
            finished_at=now - dt.timedelta(days=n % 20, minutes=n),
            triggered_by="test",
        )
        for n, r in enumerate(requests)
    )
    Delivery.objects.bulk_create(
        Delivery(
            event=NotificationEvent.SERVER_READY,
            event_key=f"q-{s.pk}",
            audience=Audience.CUSTOMER,
            channel=channel,
            recipient=f"{s.pk}@example.com",
            status=DeliveryStatus.SENT,
            sent_at=now,
        )
        for s in servers
        for channel in (Channel.EMAIL, Channel.WHATSAPP)
    )
    invoices = Invoice.objects.bulk_create(
        Invoice(
            number=f"Q{count}-{n}",
            customer=s.customer,
            deployment=s,
            kind=InvoiceKind.RENEWAL,
            currency="USD",
            subtotal=4,
            total=4,
            status=InvoiceStatus.PAID,
            issued_at=now,
            due_date=_days_ago(n % 25),
            paid_at=now - dt.timedelta(days=n % 27),
        )
        for n, s in enumerate(servers)
    )
    Payment.objects.bulk_create(
        Payment(invoice=i, provider="manual", amount=4, currency="USD", actor_label="test")
        for i in invoices
    )
    factories.NodeFactory(location=location, name=f"node-q{count}")


def page_queries(client) -> int:
    # The session's first request writes the session once (the same for any data size).
    client.get(URL, {"period": "30"})
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL, {"period": "30"})
    assert response.status_code == 200
    return len(queries)


def test_query_count_does_not_grow_with_the_data(staff_client, location, plan):
    seed(10, location, plan)
    small = page_queries(staff_client)
    seed(190, location, plan)  # 200 servers now, and twice the nodes
    large = page_queries(staff_client)

    assert Deployment.objects.count() == 200
    assert small == large
    assert staff_client.get(URL).context["provisioning"].finished == 200
