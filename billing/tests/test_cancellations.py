"""Cancelling a live server: at the end of the term or at once, terminated by the fleet job
through the panel operations drain (panel simulator), revocable until then; the refund rule;
one scheduled cancellation per server; the API, the pages and the admin."""

# ruff: noqa: F811 (the saga fixtures are imported from tests.conftest and requested by name)

import datetime as dt
from contextlib import contextmanager
from decimal import Decimal

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from billing.models import (
    Cancellation,
    CancellationEvent,
    CreditEntry,
    CreditEntryKind,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
)
from billing.services.cancellations import (
    CancellationNotRevocable,
    CancellationPending,
    cancellation_request,
    cancellation_revoke,
    cancellations_run,
)
from billing.services.renewals import renewal_invoices_issue
from common.actors import Actor
from common.dates import billing_today
from config.celery import app as celery_app
from notifications.models import Delivery
from provisioning import operations
from provisioning.fleet.drain import panel_operations_drain
from provisioning.models import PanelOperation, PanelOperationKind, PanelOperationStatus
from servers.models import Deployment, DeploymentStatus
from tests.conftest import saga  # noqa: F401 (fixture)
from tests.fleet import fleet_seed
from tests.support import race, redis_clear_own_keys
from tests.test_saga import pay

DAY = dt.timedelta(days=1)


def _at(date: dt.date, hour: int = 12):
    return time_machine.travel(
        dt.datetime(date.year, date.month, date.day, hour, tzinfo=dt.UTC), tick=False
    )


@pytest.fixture
def server_on(saga, place_order, staff):
    """A live Bronze server (monthly, no add-ons) ordered and paid on the given day."""

    def _make(day: dt.date, **overrides) -> Deployment:
        with _at(day):
            order = pay(place_order(addon_slugs=[], **overrides), staff)
        deployment = Deployment.objects.get(pk=order.deployment_id)
        assert deployment.status == DeploymentStatus.ACTIVE
        return deployment

    return _make


JAN_10 = dt.date(2026, 1, 10)


@contextmanager
def _drain_by_hand():
    """Queued tasks (the drain) are not run eagerly: the test drives the drain itself."""
    celery_app.conf.task_always_eager = False
    try:
        yield
    finally:
        celery_app.conf.task_always_eager = True
        redis_clear_own_keys()


def _cancel(deployment, mode="end_of_term", reason=""):
    return cancellation_request(
        deployment_id=deployment.pk,
        mode=mode,
        reason=reason,
        actor=Actor.customer(deployment.customer),
        customer=deployment.customer,
    )


# --- end of term -----------------------------------------------------------------------------


def test_end_of_term_is_scheduled_for_the_paid_through_date_and_not_invoiced_again(server_on):
    server = server_on(JAN_10)
    assert server.next_due_date == dt.date(2026, 2, 10)

    with _at(dt.date(2026, 1, 15)):
        cancellation = _cancel(server, reason="Moving to another game")

    assert (cancellation.status, cancellation.mode) == ("scheduled", "end_of_term")
    assert cancellation.effective_on == dt.date(2026, 2, 10)
    assert cancellation.currency == "USD"
    event = CancellationEvent.objects.get(cancellation=cancellation)
    assert (event.from_status, event.to_status) == ("", "scheduled")
    assert event.actor_label == f"customer:{server.customer.username}"
    assert "Moving to another game" in event.reason
    customer_message = Delivery.objects.get(event="cancellation_scheduled")
    assert customer_message.event_key == f"cancellation_scheduled:cancellation-{cancellation.pk}"
    assert "2026-02-10" in customer_message.body
    assert Delivery.objects.filter(event="cancellation_staff").exists()

    # The renewal job would invoice the next period a week before: not for this server.
    with _at(dt.date(2026, 2, 3)):
        assert renewal_invoices_issue() == 0
    assert not Invoice.objects.filter(kind=InvoiceKind.RENEWAL).exists()
    server.refresh_from_db()
    assert server.status == DeploymentStatus.ACTIVE  # runs until its day


def test_renewal_issued_before_the_request_is_voided_and_dunning_leaves_it(server_on, settings):
    from billing.services.dunning import dunning_run

    server = server_on(JAN_10)
    with _at(dt.date(2026, 2, 3)):
        assert renewal_invoices_issue() == 1
        _cancel(server)
    renewal = Invoice.objects.get(kind=InvoiceKind.RENEWAL)
    assert renewal.status == InvoiceStatus.CANCELLED
    assert renewal.period_start == dt.date(2026, 2, 10)
    staff_message = Delivery.objects.filter(event="cancellation_staff").first()
    assert renewal.number in staff_message.body

    with _at(dt.date(2026, 2, 3) + dt.timedelta(days=1)):
        assert renewal_invoices_issue() == 0  # the voided period is not billed again
        counts = dunning_run()
    assert counts["reminders"] == 0
    assert not Delivery.objects.filter(event="invoice_reminder").exists()


# --- the fleet job ---------------------------------------------------------------------------


def test_fleet_job_terminates_exactly_the_due_cancellations(saga, server_on):
    first = server_on(JAN_10)  # paid through Feb 10
    second = server_on(dt.date(2026, 1, 20))  # paid through Feb 20
    kept = server_on(JAN_10)  # not cancelled
    with _at(dt.date(2026, 1, 25)):
        due_first, due_second = _cancel(first), _cancel(second)

    with _at(dt.date(2026, 2, 9)):
        assert cancellations_run() == {"due": 0, "terminate": 0}
    with _at(dt.date(2026, 2, 10)):
        assert cancellations_run(dry_run=True) == {"due": 1, "terminate": 0}
        assert not PanelOperation.objects.exists()  # a dry run requests nothing
        assert cancellations_run() == {"due": 1, "terminate": 1}  # the drain runs it (eager)
        assert cancellations_run() == {"due": 0, "terminate": 0}  # a re-run: nothing

    for server in (first, second, kept):
        server.refresh_from_db()
    assert first.status == DeploymentStatus.TERMINATED
    assert first.panel_server_id not in saga.panel.servers
    assert (second.status, kept.status) == (DeploymentStatus.ACTIVE, DeploymentStatus.ACTIVE)
    assert second.panel_server_id in saga.panel.servers
    assert kept.panel_server_id in saga.panel.servers
    operation = PanelOperation.objects.get()
    assert (operation.deployment_id, operation.kind, operation.status) == (
        first.pk,
        PanelOperationKind.TERMINATE,
        PanelOperationStatus.SUCCEEDED,
    )
    assert operation.params == {"source": "cancellation", "cancellation_id": due_first.pk}
    due_first.refresh_from_db()
    assert due_first.status == "completed"
    assert due_first.completed_at is not None
    assert due_first.credit_amount is None  # the term was used up: nothing to give back
    assert not CreditEntry.objects.exists()
    assert Delivery.objects.filter(event="server_terminated").count() == 1
    due_second.refresh_from_db()
    assert due_second.status == "scheduled"

    with _at(dt.date(2026, 2, 20)):
        assert cancellations_run() == {"due": 1, "terminate": 1}
    second.refresh_from_db()
    assert second.status == DeploymentStatus.TERMINATED


def test_fleet_job_works_in_batches(catalog, settings):
    settings.FLEET_BATCH_SIZE = 3
    today = billing_today()
    fleet = fleet_seed(count=7, next_due_date=today)
    later = fleet_seed(count=2, next_due_date=today + 5 * DAY)
    for deployment in Deployment.objects.filter(pk__in=fleet.deployment_ids + later.deployment_ids):
        _cancel(deployment)

    assert cancellations_run() == {"due": 7, "terminate": 7}
    assert cancellations_run() == {"due": 0, "terminate": 0}
    assert set(
        PanelOperation.objects.filter(kind=PanelOperationKind.TERMINATE).values_list(
            "deployment_id", flat=True
        )
    ) == set(fleet.deployment_ids)


def test_a_revoked_cancellation_queued_for_termination_is_skipped_at_its_turn(saga, server_on):
    server = server_on(JAN_10)
    with _at(dt.date(2026, 2, 10)), _drain_by_hand():
        cancellation = _cancel(server)
        assert cancellations_run()["terminate"] == 1
        # The race the drain's check is for: the job selected the cancellation, the revoke
        # committed (no operation to drop yet), then the job's insert landed.
        Cancellation.objects.filter(pk=cancellation.pk).update(status="revoked")
        assert panel_operations_drain() == {"skipped": 1}
    server.refresh_from_db()
    assert server.status == DeploymentStatus.ACTIVE
    assert server.panel_server_id in saga.panel.servers
    assert PanelOperation.objects.get().outcome == "cancellation revoked"


# --- revoke ----------------------------------------------------------------------------------


def test_revoke_before_the_date_keeps_the_server_and_renewals_resume(saga, server_on):
    server = server_on(JAN_10)
    with _at(dt.date(2026, 2, 3)):
        renewal_invoices_issue()
        cancellation = _cancel(server)
        voided = Invoice.objects.get(kind=InvoiceKind.RENEWAL)
        assert voided.status == InvoiceStatus.CANCELLED

        revoked = cancellation_revoke(
            cancellation_id=cancellation.pk,
            actor=Actor.customer(server.customer),
            customer=server.customer,
        )
        assert revoked.status == "revoked"
        assert revoked.revoked_at is not None
        assert Delivery.objects.filter(event="cancellation_revoked").count() == 1

        # The period is invoiced again, under a new number.
        assert renewal_invoices_issue() == 1
    fresh = Invoice.objects.get(kind=InvoiceKind.RENEWAL, status=InvoiceStatus.UNPAID)
    assert fresh.period_start == dt.date(2026, 2, 10)
    assert fresh.number != voided.number
    with _at(dt.date(2026, 2, 10)):
        assert cancellations_run() == {"due": 0, "terminate": 0}
    server.refresh_from_db()
    assert server.status == DeploymentStatus.ACTIVE
    assert [e.to_status for e in revoked.events.order_by("id")] == ["scheduled", "revoked"]


def test_revoke_is_refused_while_the_termination_runs(saga, server_on):
    server = server_on(JAN_10)
    with _at(dt.date(2026, 2, 10)), _drain_by_hand():
        cancellation = _cancel(server)
        cancellations_run()
    # The drain claimed the operation and is calling the panel.
    PanelOperation.objects.update(status=PanelOperationStatus.RUNNING, attempts=1)

    with pytest.raises(CancellationNotRevocable):
        cancellation_revoke(cancellation_id=cancellation.pk, actor=Actor.customer(server.customer))

    cancellation.refresh_from_db()
    assert cancellation.status == "scheduled"
    assert PanelOperation.objects.get().status == PanelOperationStatus.RUNNING
    assert not Delivery.objects.filter(event="cancellation_revoked").exists()


def test_revoke_drops_a_queued_termination(saga, server_on):
    server = server_on(JAN_10)
    with _at(dt.date(2026, 2, 10)), _drain_by_hand():
        cancellation = _cancel(server)
        cancellations_run()
        cancellation_revoke(cancellation_id=cancellation.pk, actor=Actor.customer(server.customer))
        assert panel_operations_drain() == {}  # nothing left to run
    operation = PanelOperation.objects.get()
    assert operation.status == PanelOperationStatus.SKIPPED
    assert "revoked" in operation.outcome
    server.refresh_from_db()
    assert server.status == DeploymentStatus.ACTIVE


def test_revoke_is_refused_once_terminated(saga, server_on, staff):
    server = server_on(JAN_10)
    with _at(dt.date(2026, 1, 15)):
        cancellation = _cancel(server)
        # Staff terminate it first: the scheduled cancellation is completed with it.
        operations.deployment_terminate(
            deployment_id=server.pk, actor=Actor.staff(staff), reason="abuse"
        )
    cancellation.refresh_from_db()
    assert cancellation.status == "completed"
    assert cancellation.credit_amount is None  # end of term: no refund rule

    with pytest.raises(CancellationNotRevocable):
        cancellation_revoke(cancellation_id=cancellation.pk, actor=Actor.customer(server.customer))
    cancellation.refresh_from_db()
    assert cancellation.status == "completed"


# --- immediate and the refund rule -----------------------------------------------------------


def test_immediate_with_the_credit_rule_gives_the_unused_days_back(saga, server_on, settings):
    settings.BILLING_CANCEL_IMMEDIATE_REFUND = "credit"
    server = server_on(JAN_10)  # Bronze 4.00 + setup fee 1.50, paid through Feb 10
    first_invoice = Invoice.objects.get(deployment=server, kind=InvoiceKind.NEW_ORDER)
    assert first_invoice.total == Decimal("5.50")

    with _at(dt.date(2026, 1, 20)):
        cancellation = _cancel(server, mode="immediate")  # the drain terminates it (eager)

    server.refresh_from_db()
    assert server.status == DeploymentStatus.TERMINATED
    assert server.panel_server_id not in saga.panel.servers
    cancellation.refresh_from_db()
    assert cancellation.effective_on == dt.date(2026, 1, 20)
    assert cancellation.status == "completed"
    # 21 of the 31 days of Jan 10 -> Feb 10 are unused: 4.00 x 21 / 31 = 2.709.. (setup fee
    # not given back).
    assert cancellation.credit_amount == Decimal("2.71")
    entry = CreditEntry.objects.get()
    assert (entry.kind, entry.amount, entry.balance_after, entry.currency) == (
        CreditEntryKind.CANCELLATION,
        Decimal("2.71"),
        Decimal("2.71"),
        "USD",
    )
    assert entry.customer_id == server.customer_id
    assert "21 of 31 days" in entry.description


def test_immediate_with_the_none_rule_gives_nothing(saga, server_on, settings):
    settings.BILLING_CANCEL_IMMEDIATE_REFUND = "none"
    server = server_on(JAN_10)
    with _at(dt.date(2026, 1, 20)):
        cancellation = _cancel(server, mode="immediate")

    server.refresh_from_db()
    assert server.status == DeploymentStatus.TERMINATED
    cancellation.refresh_from_db()
    assert (cancellation.status, cancellation.credit_amount) == ("completed", Decimal("0.00"))
    assert not CreditEntry.objects.exists()


def test_dunning_termination_without_a_cancellation_changes_nothing_here(saga, server_on, staff):
    server = server_on(JAN_10)
    operations.deployment_terminate(deployment_id=server.pk, actor=Actor.staff(staff), reason="x")
    assert not Cancellation.objects.exists()
    assert not CreditEntry.objects.exists()


# --- one scheduled per server ----------------------------------------------------------------


def test_a_second_request_is_refused(catalog):
    deployment = Deployment.objects.get(
        pk=fleet_seed(count=1, next_due_date=billing_today()).deployment_ids[0]
    )
    _cancel(deployment)
    with pytest.raises(CancellationPending) as refused:
        _cancel(deployment, mode="immediate")
    assert refused.value.code == "cancellation_pending"
    assert Cancellation.objects.count() == 1
    assert not PanelOperation.objects.exists()  # the refused immediate one requested nothing
    # The database constraint is the last word, whatever a caller checks first.
    first = Cancellation.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Cancellation.objects.create(
            deployment=deployment,
            order=first.order,
            mode="end_of_term",
            effective_on=first.effective_on,
            currency="USD",
        )


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_two_requests_at_once_make_one_cancellation(catalog):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks")
    deployment = Deployment.objects.get(
        pk=fleet_seed(count=1, next_due_date=billing_today()).deployment_ids[0]
    )

    results = race([lambda: _cancel(deployment), lambda: _cancel(deployment)])

    assert sum(isinstance(r, Cancellation) for r in results) == 1
    assert sum(isinstance(r, CancellationPending) for r in results) == 1
    assert Cancellation.objects.count() == 1
    assert Delivery.objects.filter(event="cancellation_scheduled").count() == 1


# --- API -------------------------------------------------------------------------------------


@pytest.fixture
def fleet_server(catalog):
    return Deployment.objects.select_related("customer").get(
        pk=fleet_seed(count=1, next_due_date=billing_today() + 10 * DAY).deployment_ids[0]
    )


def _api(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_cancel_read_and_revoke(fleet_server):
    api = _api(fleet_server.customer)
    url = f"/api/v1/servers/{fleet_server.pk}/cancellation/"
    assert api.get(url).status_code == 404  # none yet

    created = api.post(url, {"reason": "too expensive"}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["mode"], body["status"], body["server_id"]) == (
        "end_of_term",
        "scheduled",
        fleet_server.pk,
    )
    assert body["effective_on"] == (billing_today() + 10 * DAY).isoformat()
    assert body["reason"] == "too expensive"
    assert api.get(url).json()["id"] == body["id"]

    again = api.post(url, {"mode": "end_of_term"}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "cancellation_pending"

    revoked = api.delete(url)
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert api.get(url).status_code == 404  # a revoked one is not current
    refused = api.post(f"{url}revoke/")
    assert refused.status_code == 404

    created = api.post(url, {"mode": "end_of_term"}, format="json")
    assert created.status_code == 201
    assert api.post(f"{url}revoke/").json()["status"] == "revoked"
    assert Cancellation.objects.filter(status="revoked").count() == 2


def test_api_bad_mode_is_a_field_error(fleet_server):
    response = _api(fleet_server.customer).post(
        f"/api/v1/servers/{fleet_server.pk}/cancellation/", {"mode": "yesterday"}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "mode" in body["extra"]["fields"]
    assert not Cancellation.objects.exists()


def test_api_other_customers_server_is_404(fleet_server, other_customer):
    api = _api(other_customer)
    url = f"/api/v1/servers/{fleet_server.pk}/cancellation/"
    assert api.post(url, {"mode": "immediate"}, format="json").status_code == 404
    assert api.get(url).status_code == 404
    _cancel(fleet_server)
    assert api.get(url).status_code == 404
    assert api.delete(url).status_code == 404
    assert api.post(f"{url}revoke/").status_code == 404
    assert Cancellation.objects.get().status == "scheduled"
    assert not PanelOperation.objects.exists()


def test_api_refuses_a_terminated_server(fleet_server):
    Deployment.objects.filter(pk=fleet_server.pk).update(status=DeploymentStatus.TERMINATED)
    response = _api(fleet_server.customer).post(
        f"/api/v1/servers/{fleet_server.pk}/cancellation/", {}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "cancellation_not_allowed"


def test_api_requires_login(api_client, fleet_server):
    response = api_client.post(f"/api/v1/servers/{fleet_server.pk}/cancellation/", {})
    assert response.status_code in (401, 403)
    assert not Cancellation.objects.exists()


# --- pages -----------------------------------------------------------------------------------


def test_cancel_page_confirm_then_keep(client, fleet_server, settings):
    settings.BILLING_CANCEL_IMMEDIATE_REFUND = "credit"
    client.force_login(fleet_server.customer)
    detail = client.get(reverse("deployment-detail", args=[fleet_server.pk]))
    assert b"Cancel server" in detail.content
    url = reverse("deployment-cancellation", args=[fleet_server.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b"all its files are deleted for good" in page.content
    assert b"given back as account credit" in page.content

    confirm = client.post(url, {"mode": "end_of_term", "reason": "bye"})
    assert confirm.status_code == 200
    assert b"Cancel on " in confirm.content
    assert not Cancellation.objects.exists()  # only the confirmation page so far

    done = client.post(url, {"mode": "end_of_term", "reason": "bye", "confirm": "1"})
    assert done.status_code == 302
    cancellation = Cancellation.objects.get()
    assert (cancellation.reason, cancellation.status) == ("bye", "scheduled")
    detail = client.get(reverse("deployment-detail", args=[fleet_server.pk]))
    assert cancellation.effective_on.isoformat().encode() in detail.content
    assert b"Keep my server" in detail.content
    twice = client.post(url, {"mode": "immediate", "confirm": "1"})
    assert twice.status_code == 422
    assert "already has a scheduled cancellation" in twice.content.decode()
    assert Cancellation.objects.count() == 1

    kept = client.post(reverse("deployment-cancellation-revoke", args=[fleet_server.pk]))
    assert kept.status_code == 302
    cancellation.refresh_from_db()
    assert cancellation.status == "revoked"


def test_cancel_page_bad_mode_and_other_customer(client, fleet_server, other_customer):
    client.force_login(fleet_server.customer)
    url = reverse("deployment-cancellation", args=[fleet_server.pk])
    response = client.post(url, {"mode": "tomorrow", "confirm": "1"})
    assert response.status_code == 400
    assert response.context["form"].errors["mode"]
    assert not Cancellation.objects.exists()

    client.force_login(other_customer)
    assert client.get(url).status_code == 404
    assert client.post(url, {"mode": "immediate", "confirm": "1"}).status_code == 404
    revoke = reverse("deployment-cancellation-revoke", args=[fleet_server.pk])
    assert client.post(revoke).status_code == 404
    assert not Cancellation.objects.exists()


def test_cancel_page_needs_csrf(fleet_server):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(fleet_server.customer)
    url = reverse("deployment-cancellation", args=[fleet_server.pk])
    assert client.post(url, {"mode": "immediate", "confirm": "1"}).status_code == 403
    assert not Cancellation.objects.exists()


# --- admin -----------------------------------------------------------------------------------


def test_admin_list_revoke_and_terminate_now(admin_client, catalog):
    ids = fleet_seed(count=2, next_due_date=billing_today() + 10 * DAY).deployment_ids
    first, second = (_cancel(d) for d in Deployment.objects.filter(pk__in=ids).order_by("pk"))
    changelist = reverse("admin:billing_cancellation_changelist")

    listing = admin_client.get(changelist + "?status=scheduled")
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 2
    assert (
        admin_client.get(reverse("admin:billing_cancellation_change", args=[first.pk])).status_code
        == 200
    )

    admin_client.post(changelist, {"action": "revoke", "_selected_action": [first.pk]})
    first.refresh_from_db()
    assert first.status == "revoked"

    confirm = admin_client.post(
        changelist, {"action": "terminate_now", "_selected_action": [second.pk]}
    )
    assert confirm.status_code == 200  # the confirmation page
    assert not PanelOperation.objects.exists()
    admin_client.post(
        changelist,
        {"action": "terminate_now", "_selected_action": [second.pk], "apply": "1", "confirm": "on"},
    )
    second.refresh_from_db()
    assert second.effective_on == billing_today()
    operation = PanelOperation.objects.get()
    assert (operation.deployment_id, operation.kind) == (second.deployment_id, "terminate")
    assert operation.params["cancellation_id"] == second.pk


# --- what is never owed ----------------------------------------------------------------------


def test_server_suspended_for_nonpayment_can_be_cancelled_and_ends_at_the_next_run(
    saga, server_on, settings
):
    from billing.tasks import dunning

    server = server_on(JAN_10)
    due = server.next_due_date
    suspension_day = due + dt.timedelta(days=settings.SUSPENSION_GRACE_DAYS)
    with _at(due - dt.timedelta(days=7)):
        renewal_invoices_issue()
    with _at(suspension_day):
        dunning.apply()
    server.refresh_from_db()
    assert (server.status, server.suspension_cause) == ("suspended", "nonpayment")

    with _at(suspension_day):
        cancellation = _cancel(server)
        # Its paid-through date has passed: it ends today, and the overdue renewal is void.
        assert cancellation.effective_on == suspension_day
        assert Invoice.objects.get(kind=InvoiceKind.RENEWAL).status == InvoiceStatus.CANCELLED
        assert renewal_invoices_issue() == 0  # not billed again
        assert cancellations_run()["terminate"] == 1
    server.refresh_from_db()
    assert server.status == DeploymentStatus.TERMINATED
    cancellation.refresh_from_db()
    assert cancellation.status == "completed"


def test_an_upgrade_waiting_for_payment_is_cancelled_with_its_invoice(fleet_server):
    from billing.models import Order, Plan, PlanChange
    from billing.services.invoices import PricedLine, invoice_create

    order = Order.objects.get(deployment=fleet_server)
    gold = Plan.objects.get(slug="gold")
    invoice = invoice_create(
        customer=fleet_server.customer,
        currency="USD",
        lines=[PricedLine("plan", "Upgrade to Gold", Decimal("3.00"))],
        kind=InvoiceKind.UPGRADE,
        actor=Actor.system("test"),
        order=order,
        deployment=fleet_server,
    )
    change = PlanChange.objects.create(
        deployment=fleet_server,
        order=order,
        from_plan=order.plan,
        to_plan=gold,
        direction="upgrade",
        status="awaiting_payment",
        billing_cycle="monthly",
        currency="USD",
        period_start=billing_today() - 20 * DAY,
        period_end=billing_today() + 10 * DAY,
        days_in_period=30,
        days_left=10,
        from_price=Decimal("4.00"),
        to_price=Decimal("15.00"),
        prorated_amount=Decimal("3.00"),
        invoice=invoice,
    )

    _cancel(fleet_server)

    change.refresh_from_db()
    invoice.refresh_from_db()
    assert change.status == "cancelled"
    assert change.events.get().to_status == "cancelled"
    assert invoice.status == InvoiceStatus.CANCELLED


def test_the_job_is_registered_for_run_job_and_beat(catalog):
    from io import StringIO

    from django.core.management import call_command

    from common.services import periodic_task_table

    deployment = Deployment.objects.get(
        pk=fleet_seed(count=1, next_due_date=billing_today()).deployment_ids[0]
    )
    _cancel(deployment)
    out = StringIO()
    call_command("run_job", "cancellations", "--dry-run", stdout=out)
    assert "due" in out.getvalue()
    assert not PanelOperation.objects.exists()
    task, seconds, queue, kwargs = periodic_task_table()["job: cancellations"]
    assert (task, seconds, queue, kwargs) == (
        "common.run_job",
        3600,
        "billing",
        {"name": "cancellations"},
    )


# --- review: plan changes in the period and the refund of unused days -------------------------


def test_immediate_cancel_after_a_downgrade_does_not_credit_the_old_plan_again(
    saga, server_on, settings
):
    """A downgrade credited at once (Gold -> Silver) then an immediate cancellation the same
    day: the unused days are the Silver plan's, else the Gold-Silver difference is given twice
    and the customer gets back more than they paid for those days."""
    from billing.services.plan_changes import plan_change_request

    settings.BILLING_CANCEL_IMMEDIATE_REFUND = "credit"
    server = server_on(JAN_10, plan_slug="gold")  # Gold 15.00 a month, paid through Feb 10
    with _at(dt.date(2026, 1, 20)):
        plan_change_request(
            deployment_id=server.pk,
            to_plan_slug="silver",
            actor=Actor.customer(server.customer),
            customer=server.customer,
        )
        _cancel(server, mode="immediate")
    downgrade = CreditEntry.objects.get(kind=CreditEntryKind.DOWNGRADE).amount
    cancellation = CreditEntry.objects.get(kind=CreditEntryKind.CANCELLATION).amount
    assert downgrade == Decimal("4.74")  # 7.00 x 21 / 31
    assert cancellation == Decimal("5.42")  # Silver 8.00 x 21 / 31, not Gold's 10.16
    # Never more than the 21 unused days of what was paid (15.00 x 21 / 31 = 10.16).
    assert downgrade + cancellation == Decimal("10.16")


def test_immediate_cancel_after_a_paid_upgrade_counts_the_upgrade(saga, server_on, settings, staff):
    from billing.services.plan_changes import plan_change_request

    settings.BILLING_CANCEL_IMMEDIATE_REFUND = "credit"
    server = server_on(JAN_10)  # Bronze 4.00
    with _at(dt.date(2026, 1, 20)):
        change = plan_change_request(
            deployment_id=server.pk,
            to_plan_slug="silver",
            actor=Actor.customer(server.customer),
            customer=server.customer,
        )
        assert change.invoice.total == Decimal("2.71")  # 4.00 x 21 / 31
        from billing.services.payments import payment_record_manual

        payment_record_manual(
            invoice_id=change.invoice_id, reference="UP-1", actor=Actor.staff(staff)
        )
        change.refresh_from_db()
        assert change.status == "applied"
        _cancel(server, mode="immediate")
    # The 21 unused days are Silver's (8.00 x 21 / 31): the 2.71 upgrade is not lost.
    assert CreditEntry.objects.get(kind=CreditEntryKind.CANCELLATION).amount == Decimal("5.42")


def test_a_cancellation_cancels_a_downgrade_scheduled_for_the_period_end(saga, server_on, settings):
    """A downgrade waiting for the due date and an end-of-term cancellation on the same day:
    the server ends, so the downgrade is cancelled (not applied on the panel the day it is
    terminated, nor holding the server's one panel operation in front of its termination)."""
    from billing.models import PlanChange, PlanChangeStatus
    from billing.services.plan_changes import plan_change_request, plan_changes_apply_due

    settings.BILLING_DOWNGRADE_AT_PERIOD_END = True
    server = server_on(JAN_10, plan_slug="gold")
    with _at(dt.date(2026, 1, 20)):
        change = plan_change_request(
            deployment_id=server.pk, to_plan_slug="silver", actor=Actor.customer(server.customer)
        )
        assert change.status == PlanChangeStatus.SCHEDULED
        _cancel(server)
    change.refresh_from_db()
    assert change.status == PlanChangeStatus.CANCELLED
    event = change.events.get(to_status=PlanChangeStatus.CANCELLED)
    assert event.actor_label.startswith("customer:")
    assert plan_changes_apply_due(today=dt.date(2026, 2, 10))["due"] == 0
    assert not PlanChange.objects.filter(status=PlanChangeStatus.SCHEDULED).exists()
