"""Upgrades and downgrades of a live server: proration, invoice or credit, the panel work (the
simulator through `responses`, the drain run eagerly), refusals, races, views and the API."""

import datetime as dt
import threading
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from billing.errors import BillingErrorCode
from billing.models import (
    Cancellation,
    CreditEntry,
    CreditEntryKind,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    Order,
    OrderStatus,
    Plan,
    PlanChange,
    PlanChangeStatus,
)
from billing.services.credit import credit_add
from billing.services.payments import payment_record_manual
from billing.services.plan_changes import (
    PlanChangeNotAllowed,
    PlanChangePending,
    PlanDoesNotFitNode,
    order_plan_change,
    plan_change_cancel,
    plan_change_options,
    plan_change_request,
    plan_change_retry,
    plan_changes_apply_due,
)
from billing.services.renewals import renewals_run
from common.actors import Actor
from common.dates import add_months, billing_today, billing_tz
from common.errors import ConflictError
from notifications.models import Delivery
from provisioning import operations
from provisioning.models import PanelOperation
from servers.capacity import (
    UPGRADE_HOLD_AFTER_APPLY,
    SoldOutError,
    capacity_holds_release_expired,
)
from servers.models import CapacityHold, Deployment, DeploymentEvent, Node
from tests import factories
from tests.conftest import saga  # noqa: F401  (the panel simulator world, as tests/ use it)

pytestmark = pytest.mark.django_db(transaction=True)

TODAY = billing_today()
# The server's paid period in these tests: one month that began 14 days ago.
PERIOD_START = TODAY - dt.timedelta(days=14)
PERIOD_END = add_months(PERIOD_START, 1)
LEFT, DAYS = (PERIOD_END - TODAY).days, (PERIOD_END - PERIOD_START).days


def _prorated(difference: str) -> Decimal:
    return (Decimal(difference) * LEFT / DAYS).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _server(place_order, staff, plan_slug="bronze"):
    order = place_order(plan_slug=plan_slug)
    payment_record_manual(
        invoice_id=order.invoices.get().pk, reference=f"R-{order.pk}", actor=Actor.staff(staff)
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    # A 28-day period around today: periods start on PERIOD_START's day (the anchor).
    confirmed = dt.datetime.combine(PERIOD_START, dt.time(12), tzinfo=billing_tz())
    Order.objects.filter(pk=order.pk).update(confirmed_at=confirmed, completed_at=confirmed)
    Deployment.objects.filter(pk=order.deployment_id).update(next_due_date=PERIOD_END)
    return Deployment.objects.get(pk=order.deployment_id)


@pytest.fixture
def active(saga, place_order, staff):  # noqa: F811
    return _server(place_order, staff)


@pytest.fixture
def gold(saga, place_order, staff):  # noqa: F811
    return _server(place_order, staff, plan_slug="gold")


def _pay(invoice: Invoice, staff) -> None:
    payment_record_manual(
        invoice_id=invoice.pk, reference=f"T-{invoice.pk}", actor=Actor.staff(staff)
    )


def _panel_memory(saga_world, deployment) -> int:
    return saga_world.panel.servers[deployment.panel_server_id].memory


# ---------------------------------------------------------------------- targets


def test_options_are_the_same_egg_family_only(active):
    options = plan_change_options(deployment=active)

    assert [(o.to_plan.slug, o.direction) for o in options] == [
        ("silver", "upgrade"),
        ("gold", "upgrade"),
        ("platinum", "upgrade"),
        ("diamond", "upgrade"),
    ]
    assert not {"starter", "pro", "business"} & {o.to_plan.slug for o in options}


def test_other_family_plan_is_refused_and_nothing_written(active, customer):
    with pytest.raises(PlanChangeNotAllowed) as caught:
        plan_change_request(
            deployment_id=active.pk, to_plan_slug="pro", actor=Actor.customer(customer)
        )
    assert caught.value.code == BillingErrorCode.PLAN_CHANGE_NOT_ALLOWED
    assert "plan" in caught.value.field_errors
    assert not PlanChange.objects.exists()
    assert not Invoice.objects.filter(kind=InvoiceKind.UPGRADE).exists()


def test_staff_change_plan_refuses_another_family(active, staff):
    order = Order.objects.get(deployment=active)
    with pytest.raises(PlanChangeNotAllowed):
        order_plan_change(order=order, plan=Plan.objects.get(slug="pro"), actor=Actor.staff(staff))
    active.refresh_from_db()
    assert active.plan_slug == "bronze"


def test_staff_change_plan_form_offers_only_the_family(active, admin_client):
    order = Order.objects.get(deployment=active)
    response = admin_client.post(
        reverse("admin:billing_order_changelist"),
        {"action": "change_plan", "_selected_action": [order.pk]},
    )
    assert response.status_code == 200
    offered = {p.slug for p in response.context["form"].fields["plan"].queryset}
    assert offered == {"bronze", "silver", "gold", "platinum", "diamond"}


# ---------------------------------------------------------------------- upgrade


def test_upgrade_issues_the_prorated_invoice_and_applies_when_paid(saga, active, customer, staff):  # noqa: F811
    change = plan_change_request(
        deployment_id=active.pk, to_plan_slug="silver", actor=Actor.customer(customer)
    )

    assert change.status == PlanChangeStatus.AWAITING_PAYMENT
    assert (change.days_left, change.days_in_period) == (LEFT, DAYS)
    assert (change.period_start, change.period_end) == (PERIOD_START, PERIOD_END)
    expected = _prorated("4.00")
    assert change.prorated_amount == expected
    invoice = change.invoice
    assert invoice.kind == InvoiceKind.UPGRADE
    assert invoice.total == expected
    assert [line.description for line in invoice.lines.all()] == [
        f"Upgrade Bronze → Silver ({LEFT} of {DAYS} days left)"
    ]
    assert Delivery.objects.filter(
        event="invoice_created", event_key=f"invoice_created:{invoice.number}"
    ).exists()
    assert _panel_memory(saga, active) == 1024  # nothing applied before payment

    _pay(invoice, staff)

    change.refresh_from_db()
    active.refresh_from_db()
    assert change.status == PlanChangeStatus.APPLIED
    assert change.applied_at is not None
    assert _panel_memory(saga, active) == 2048
    assert (active.plan_slug, active.spec["limits"]["memory"]) == ("silver", 2048)
    assert Delivery.objects.filter(event="plan_changed", event_key=f"plan_changed:{change.pk}")
    history = list(change.events.values_list("from_status", "to_status"))
    assert history[0] == ("", "awaiting_payment")
    assert history[-1] == ("awaiting_payment", "applied")


def test_upgrade_covered_by_credit_is_settled_and_applied_at_once(saga, active, customer):  # noqa: F811
    credit_add(
        customer_id=customer.pk,
        currency="USD",
        amount=Decimal("50.00"),
        kind=CreditEntryKind.STAFF_ADJUSTMENT,
        description="goodwill",
        actor=Actor.system("test"),
    )
    change = plan_change_request(
        deployment_id=active.pk, to_plan_slug="silver", actor=Actor.customer(customer)
    )

    change.refresh_from_db()
    invoice = change.invoice
    assert (invoice.status, invoice.total) == (InvoiceStatus.PAID, Decimal("0.00"))
    assert invoice.credit_applied == change.prorated_amount > 0
    assert change.status == PlanChangeStatus.APPLIED
    assert _panel_memory(saga, active) == 2048


def test_upgrade_that_does_not_fit_the_node_is_refused_before_any_invoice(active, customer):
    run_node = active.provisioning_runs.exclude(node=None).latest("id").node
    # The node has room for 512 MB more; Diamond needs 15 GB more.
    Node.objects.filter(pk=run_node.pk).update(
        memory_mb=8192, memory_overallocate_percent=0, allocated_memory_mb=7680
    )
    with pytest.raises(PlanDoesNotFitNode) as caught:
        plan_change_request(
            deployment_id=active.pk, to_plan_slug="diamond", actor=Actor.customer(customer)
        )
    assert caught.value.code == BillingErrorCode.PLAN_DOES_NOT_FIT_NODE
    assert "no room" in caught.value.message
    assert not PlanChange.objects.exists()
    assert not Invoice.objects.filter(kind=InvoiceKind.UPGRADE).exists()
    # Only the order's own invoice was ever announced.
    assert (
        Delivery.objects.filter(event="invoice_created").values("event_key").distinct().count() == 1
    )


def test_second_request_hits_the_constraint_and_is_refused(active, customer):
    actor = Actor.customer(customer)
    first = plan_change_request(deployment_id=active.pk, to_plan_slug="silver", actor=actor)

    with pytest.raises(PlanChangePending) as caught:
        plan_change_request(deployment_id=active.pk, to_plan_slug="gold", actor=actor)

    assert caught.value.code == BillingErrorCode.PLAN_CHANGE_PENDING
    assert caught.value.http_status == 409
    assert list(PlanChange.objects.values_list("pk", flat=True)) == [first.pk]
    assert Invoice.objects.filter(kind=InvoiceKind.UPGRADE).count() == 1


def test_two_requests_at_once_make_one_change(active, customer):
    actor = Actor.customer(customer)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def request(slug: str) -> None:
        try:
            barrier.wait(timeout=10)
            plan_change_request(deployment_id=active.pk, to_plan_slug=slug, actor=actor)
            outcomes.append("created")
        except PlanChangePending:
            outcomes.append("pending")
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(s,)) for s in ("silver", "gold")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert sorted(outcomes) == ["created", "pending"]
    assert PlanChange.objects.count() == 1
    assert Invoice.objects.filter(kind=InvoiceKind.UPGRADE).count() == 1


def test_upgrade_paid_after_termination_goes_to_credit_and_staff_are_told(
    saga,  # noqa: F811
    active,
    customer,
    staff,
):
    change = plan_change_request(
        deployment_id=active.pk, to_plan_slug="silver", actor=Actor.customer(customer)
    )
    operations.deployment_terminate(
        deployment_id=active.pk, actor=Actor.staff(staff), reason="cancelled"
    )

    _pay(change.invoice, staff)

    change.refresh_from_db()
    assert change.status == PlanChangeStatus.CANCELLED
    refund = CreditEntry.objects.get(kind=CreditEntryKind.REFUND)
    assert (refund.amount, refund.invoice_id) == (change.prorated_amount, change.invoice_id)
    assert refund.balance_after == change.prorated_amount
    staff_message = Delivery.objects.get(event="plan_change_staff")
    assert change.invoice.number in staff_message.body
    assert not PanelOperation.objects.filter(params__source="plan_change").exists()


def test_upgrade_paid_with_a_cancellation_scheduled_is_not_applied(saga, active, customer, staff):  # noqa: F811
    change = plan_change_request(
        deployment_id=active.pk, to_plan_slug="silver", actor=Actor.customer(customer)
    )
    Cancellation.objects.create(
        deployment=active,
        order=Order.objects.get(deployment=active),
        mode="end_of_term",
        effective_on=PERIOD_END,
        currency="USD",
    )

    _pay(change.invoice, staff)

    change.refresh_from_db()
    assert change.status == PlanChangeStatus.CANCELLED
    assert CreditEntry.objects.get(kind=CreditEntryKind.REFUND).amount == change.prorated_amount
    assert _panel_memory(saga, active) == 1024
    assert Delivery.objects.filter(event="plan_change_staff").count() == 1


def test_request_refused_while_a_cancellation_is_scheduled(active, customer):
    Cancellation.objects.create(
        deployment=active,
        order=Order.objects.get(deployment=active),
        mode="end_of_term",
        effective_on=PERIOD_END,
        currency="USD",
    )
    with pytest.raises(PlanChangeNotAllowed, match="cancelled"):
        plan_change_request(
            deployment_id=active.pk, to_plan_slug="silver", actor=Actor.customer(customer)
        )
    assert not PlanChange.objects.exists()


def test_suspended_server_cannot_change_plan(active, customer, staff):
    operations.deployment_suspend(deployment_id=active.pk, actor=Actor.staff(staff), reason="x")
    with pytest.raises(PlanChangeNotAllowed, match="suspended"):
        plan_change_request(
            deployment_id=active.pk, to_plan_slug="silver", actor=Actor.customer(customer)
        )


def test_panel_failure_fails_the_change_tells_staff_and_retry_applies_it(
    saga,  # noqa: F811
    active,
    customer,
    staff,
    settings,
    admin_client,
):
    settings.PANEL_OPERATIONS_MAX_ATTEMPTS = 2
    saga.fault("status", method="PATCH", path=r"/build$", status=500, times=None)
    change = plan_change_request(
        deployment_id=active.pk, to_plan_slug="silver", actor=Actor.customer(customer)
    )

    _pay(change.invoice, staff)

    change.refresh_from_db()
    assert change.status == PlanChangeStatus.FAILED
    assert change.attempts == 2
    assert "refused to change the server's limits" in change.last_error
    assert Delivery.objects.filter(event="plan_change_staff").count() == 1
    assert not Delivery.objects.filter(event="plan_changed").exists()
    active.refresh_from_db()
    assert active.plan_slug == "bronze"

    saga.sim.faults.clear()
    # Staff retry it from the admin list.
    response = admin_client.post(
        reverse("admin:billing_planchange_changelist"),
        {"action": "retry_failed", "_selected_action": [change.pk]},
    )
    assert response.status_code == 302

    change.refresh_from_db()
    assert change.status == PlanChangeStatus.APPLIED
    assert _panel_memory(saga, active) == 2048
    assert ("failed", "applied") in list(change.events.values_list("from_status", "to_status"))
    with pytest.raises(ConflictError):  # applied: nothing to retry
        plan_change_retry(change_id=change.pk, actor=Actor.staff(staff))


def test_cancel_an_unpaid_upgrade_cancels_its_invoice_and_returns_credit(active, customer):
    credit_add(
        customer_id=customer.pk,
        currency="USD",
        amount=Decimal("0.50"),
        kind=CreditEntryKind.STAFF_ADJUSTMENT,
        description="goodwill",
        actor=Actor.system("test"),
    )
    change = plan_change_request(
        deployment_id=active.pk, to_plan_slug="silver", actor=Actor.customer(customer)
    )
    assert change.invoice.credit_applied == Decimal("0.50")

    plan_change_cancel(change_id=change.pk, actor=Actor.customer(customer), customer=customer)

    change.refresh_from_db()
    change.invoice.refresh_from_db()
    assert change.status == PlanChangeStatus.CANCELLED
    assert change.invoice.status == InvoiceStatus.CANCELLED
    assert CreditEntry.objects.order_by("-id").first().balance_after == Decimal("0.50")


def _room_for_one_bronze(node: Node) -> None:
    """The node has room for exactly 1 GB memory and 5 GB disk more (a Bronze server, or a
    Bronze -> Silver upgrade), as the last panel reading says."""
    Node.objects.filter(pk=node.pk).update(
        memory_mb=8192,
        memory_overallocate_percent=0,
        allocated_memory_mb=8192 - 1024,
        disk_mb=102400,
        disk_overallocate_percent=0,
        allocated_disk_mb=102400 - 5120,
        synced_at=timezone.now(),
    )


def test_an_unpaid_upgrade_keeps_its_room_from_new_orders_until_cancelled(
    active, customer, place_order
):
    node = active.provisioning_runs.exclude(node=None).latest("id").node
    _room_for_one_bronze(node)
    change = plan_change_request(
        deployment_id=active.pk, to_plan_slug="silver", actor=Actor.customer(customer)
    )
    hold = CapacityHold.objects.get(deployment=active)
    assert (hold.node_id, hold.memory_mb, hold.disk_mb) == (node.pk, 1024, 5120)
    assert hold.is_active(timezone.now())
    assert hold.expires_at is not None
    assert DeploymentEvent.objects.filter(
        deployment=active, reason__contains=f"held on {node.name} for plan change #{change.pk}"
    ).exists()

    # The last room on the node is the upgrade's: a new order there is refused.
    with pytest.raises(SoldOutError):
        place_order(location_code=active.location.short_code)

    plan_change_cancel(change_id=change.pk, actor=Actor.customer(customer), customer=customer)

    hold.refresh_from_db()
    assert hold.released_at is not None
    assert f"plan change #{change.pk} cancelled" in hold.release_reason
    place_order(location_code=active.location.short_code)  # the room is free again


def test_a_paid_upgrade_keeps_its_room_until_applied_then_until_the_next_reading(
    saga,  # noqa: F811
    active,
    customer,
    staff,
    place_order,
):
    node = active.provisioning_runs.exclude(node=None).latest("id").node
    _room_for_one_bronze(node)
    change = plan_change_request(
        deployment_id=active.pk, to_plan_slug="silver", actor=Actor.customer(customer)
    )
    # The unpaid hold lapsed (the customer paid late): payment takes it again.
    CapacityHold.objects.filter(deployment=active).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    capacity_holds_release_expired()

    _pay(change.invoice, staff)

    change.refresh_from_db()
    assert change.status == PlanChangeStatus.APPLIED
    hold = CapacityHold.objects.get(deployment=active)
    assert hold.released_at is None
    # Applied: it counts until the node's panel reading shows the bigger server.
    remaining = hold.expires_at - timezone.now()
    assert dt.timedelta(minutes=14) < remaining <= UPGRADE_HOLD_AFTER_APPLY
    with pytest.raises(SoldOutError):
        place_order(location_code=active.location.short_code)


# ---------------------------------------------------------------------- downgrade


def test_downgrade_credits_the_difference_and_applies_now(saga, gold, customer):  # noqa: F811
    change = plan_change_request(
        deployment_id=gold.pk, to_plan_slug="silver", actor=Actor.customer(customer)
    )

    change.refresh_from_db()
    expected = _prorated("7.00")
    assert change.invoice is None
    assert change.prorated_amount == expected
    credit = CreditEntry.objects.get(kind=CreditEntryKind.DOWNGRADE)
    assert (credit.amount, credit.balance_after) == (expected, expected)
    assert "Gold → Silver" in credit.description
    assert change.status == PlanChangeStatus.APPLIED
    assert _panel_memory(saga, gold) == 2048


def test_downgrade_at_period_end_waits_and_the_renewal_bills_the_new_plan(
    saga,  # noqa: F811
    gold,
    customer,
    settings,
):
    settings.BILLING_DOWNGRADE_AT_PERIOD_END = True
    change = plan_change_request(
        deployment_id=gold.pk, to_plan_slug="silver", actor=Actor.customer(customer)
    )

    assert change.status == PlanChangeStatus.SCHEDULED
    assert change.apply_on == PERIOD_END
    assert (change.days_left, change.prorated_amount) == (0, Decimal("0.00"))
    assert not CreditEntry.objects.exists()  # the bigger plan is kept for every paid day
    assert _panel_memory(saga, gold) == 4096
    # Not due yet: the job queues nothing.
    assert plan_changes_apply_due(today=PERIOD_END - dt.timedelta(days=1))["due"] == 0

    renewals_run(today=PERIOD_END - dt.timedelta(days=settings.BILLING_RENEWAL_INVOICE_DAYS))
    renewal = Invoice.objects.get(kind=InvoiceKind.RENEWAL, deployment=gold)
    assert [(line.description, line.amount) for line in renewal.lines.all()] == [
        ("Silver renewal (Monthly)", Decimal("8.00"))
    ]

    counts = plan_changes_apply_due(today=PERIOD_END)
    assert (counts["due"], counts["queued"]) == (1, 1)
    change.refresh_from_db()
    assert change.status == PlanChangeStatus.APPLIED
    assert _panel_memory(saga, gold) == 2048
    # A second run finds nothing.
    assert plan_changes_apply_due(today=PERIOD_END)["due"] == 0


def test_scheduled_downgrade_can_be_cancelled(gold, customer, settings):
    settings.BILLING_DOWNGRADE_AT_PERIOD_END = True
    change = plan_change_request(
        deployment_id=gold.pk, to_plan_slug="silver", actor=Actor.customer(customer)
    )
    plan_change_cancel(change_id=change.pk, actor=Actor.customer(customer), customer=customer)
    change.refresh_from_db()
    assert change.status == PlanChangeStatus.CANCELLED
    assert plan_changes_apply_due(today=PERIOD_END)["due"] == 0


def test_another_customer_cannot_request_or_cancel(active, customer, other_customer):
    with pytest.raises(Exception, match="No such server"):
        plan_change_request(
            deployment_id=active.pk,
            to_plan_slug="silver",
            actor=Actor.customer(other_customer),
            customer=other_customer,
        )
    change = plan_change_request(
        deployment_id=active.pk, to_plan_slug="silver", actor=Actor.customer(customer)
    )
    with pytest.raises(Exception, match="No such plan change"):
        plan_change_cancel(
            change_id=change.pk, actor=Actor.customer(other_customer), customer=other_customer
        )
    change.refresh_from_db()
    assert change.status == PlanChangeStatus.AWAITING_PAYMENT


# ---------------------------------------------------------------------- dashboard and API


def test_dashboard_page_lists_targets_and_requests_an_upgrade(active, client, customer):
    client.force_login(customer)
    page = client.get(reverse("deployment-plan-change", args=[active.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert 'value="silver"' in text
    assert 'value="diamond"' in text
    assert 'value="pro"' not in text  # a bot tier
    detail = client.get(reverse("deployment-detail", args=[active.pk]))
    assert reverse("deployment-plan-change", args=[active.pk]) in detail.content.decode()

    response = client.post(
        reverse("deployment-plan-change", args=[active.pk]), {"plan": "silver"}, follow=True
    )
    assert response.status_code == 200
    change = PlanChange.objects.get()
    assert change.invoice.number in response.content.decode()
    assert reverse("invoice-detail", args=[change.invoice_id]) in response.content.decode()

    again = client.post(
        reverse("deployment-plan-change", args=[active.pk]), {"plan": "gold"}, follow=True
    )
    assert "already has a plan change" in again.content.decode()
    assert PlanChange.objects.count() == 1

    client.post(reverse("plan-change-cancel", args=[change.pk]))
    change.refresh_from_db()
    assert change.status == PlanChangeStatus.CANCELLED


def test_dashboard_shows_a_field_error_for_an_unknown_plan(active, client, customer):
    client.force_login(customer)
    response = client.post(reverse("deployment-plan-change", args=[active.pk]), {"plan": "pro"})
    assert response.status_code == 400
    assert "is not a plan" in response.content.decode()
    assert not PlanChange.objects.exists()


def test_dashboard_page_of_another_customer_is_404(active, client, other_customer):
    client.force_login(other_customer)
    assert client.get(reverse("deployment-plan-change", args=[active.pk])).status_code == 404
    response = client.post(reverse("deployment-plan-change", args=[active.pk]), {"plan": "silver"})
    assert response.status_code == 404
    assert not PlanChange.objects.exists()


def test_api_options_request_list_and_cancel(active, customer_api):
    options = customer_api.get(f"/api/v1/servers/{active.pk}/plan-changes/options/")
    assert options.status_code == 200
    body = options.json()
    assert [o["plan"] for o in body["options"]] == ["silver", "gold", "platinum", "diamond"]
    silver = body["options"][0]
    assert (silver["direction"], silver["days_left"], silver["days_in_period"]) == (
        "upgrade",
        LEFT,
        DAYS,
    )
    assert (silver["amount"], silver["charge"]) == (str(_prorated("4.00")), True)

    created = customer_api.post(
        f"/api/v1/servers/{active.pk}/plan-changes/", {"plan": "silver"}, format="json"
    )
    assert created.status_code == 201
    data = created.json()
    change = PlanChange.objects.get()
    assert data["id"] == change.pk
    assert data["status"] == "awaiting_payment"
    assert data["invoice"] == {
        "id": change.invoice_id,
        "number": change.invoice.number,
        "total": str(change.invoice.total),
        "status": "unpaid",
    }
    assert data["amount"] == str(change.prorated_amount)

    pending = customer_api.post(
        f"/api/v1/servers/{active.pk}/plan-changes/", {"plan": "gold"}, format="json"
    )
    assert (pending.status_code, pending.json()["code"]) == (409, "plan_change_pending")

    listed = customer_api.get(f"/api/v1/servers/{active.pk}/plan-changes/")
    assert [c["id"] for c in listed.json()["results"]] == [change.pk]

    cancelled = customer_api.post(f"/api/v1/servers/{active.pk}/plan-changes/{change.pk}/cancel/")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"


def test_api_refusals_have_codes(active, customer_api):
    bad = customer_api.post(f"/api/v1/servers/{active.pk}/plan-changes/", {}, format="json")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid")
    other = customer_api.post(
        f"/api/v1/servers/{active.pk}/plan-changes/", {"plan": "pro"}, format="json"
    )
    assert (other.status_code, other.json()["code"]) == (422, "plan_change_not_allowed")
    assert "plan" in other.json()["extra"]["fields"]
    assert not PlanChange.objects.exists()


def test_api_of_another_customer_is_404(active, other_customer):
    api = APIClient()
    api.force_authenticate(other_customer)
    assert api.get(f"/api/v1/servers/{active.pk}/plan-changes/options/").status_code == 404
    response = api.post(
        f"/api/v1/servers/{active.pk}/plan-changes/", {"plan": "silver"}, format="json"
    )
    assert response.status_code == 404
    assert api.get(f"/api/v1/servers/{active.pk}/plan-changes/").status_code == 404
    assert not PlanChange.objects.exists()


def test_admin_list_and_detail(active, customer, admin_client):
    change = plan_change_request(
        deployment_id=active.pk, to_plan_slug="silver", actor=Actor.customer(customer)
    )
    listing = admin_client.get(
        reverse("admin:billing_planchange_changelist") + "?status__exact=awaiting_payment"
    )
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1
    detail = admin_client.get(reverse("admin:billing_planchange_change", args=[change.pk]))
    assert detail.status_code == 200
    assert "Bronze → Silver" in detail.content.decode()


def test_upgrade_worth_nothing_on_the_last_day_is_applied_without_an_invoice(
    saga,  # noqa: F811
    active,
    customer,
):
    # 4.00 -> 4.10 a month, one day left: 0.10 / DAYS rounds to 0.00.
    factories.PlanFactory(
        slug="bronze-plus", name="Bronze Plus", memory_mb=1536, monthly_price=Decimal("4.10")
    )
    last_day = PERIOD_END - dt.timedelta(days=1)
    change = plan_change_request(
        deployment_id=active.pk,
        to_plan_slug="bronze-plus",
        actor=Actor.customer(customer),
        today=last_day,
    )

    change.refresh_from_db()
    assert (change.days_left, change.prorated_amount) == (1, Decimal("0.00"))
    assert change.invoice is None
    assert not Invoice.objects.filter(kind=InvoiceKind.UPGRADE).exists()
    assert change.status == PlanChangeStatus.APPLIED
    assert _panel_memory(saga, active) == 1536


def test_job_queues_due_downgrades_in_batches(saga, place_order, staff, customer, settings):  # noqa: F811
    settings.BILLING_DOWNGRADE_AT_PERIOD_END = True
    servers = [_server(place_order, staff, plan_slug="gold") for _ in range(2)]
    for server in servers:
        plan_change_request(
            deployment_id=server.pk, to_plan_slug="silver", actor=Actor.customer(customer)
        )

    dry = plan_changes_apply_due(today=PERIOD_END, dry_run=True, batch_size=1)
    assert (dry["due"], dry["queued"], dry["batches"]) == (2, 0, 2)
    assert PlanChange.objects.filter(status=PlanChangeStatus.SCHEDULED).count() == 2

    counts = plan_changes_apply_due(today=PERIOD_END, batch_size=1)

    assert (counts["due"], counts["queued"], counts["batches"]) == (2, 2, 2)
    assert set(PlanChange.objects.values_list("status", flat=True)) == {PlanChangeStatus.APPLIED}
    assert [_panel_memory(saga, s) for s in servers] == [2048, 2048]


# ---------------------------------------------------------------------- review


def test_cancelling_a_scheduled_downgrade_voids_the_renewal_issued_at_the_new_price(
    gold, customer, settings
):
    """The renewal of the next period was issued at Silver's price for a downgrade due then;
    the customer cancels the downgrade and keeps Gold: that invoice is voided and the next run
    issues the period again at Gold's price (else Gold is run a month for Silver's price)."""
    settings.BILLING_DOWNGRADE_AT_PERIOD_END = True
    change = plan_change_request(
        deployment_id=gold.pk, to_plan_slug="silver", actor=Actor.customer(customer)
    )
    issue_day = PERIOD_END - dt.timedelta(days=settings.BILLING_RENEWAL_INVOICE_DAYS)
    renewals_run(today=issue_day)
    cheap = Invoice.objects.get(kind=InvoiceKind.RENEWAL, deployment=gold)
    assert cheap.total == Decimal("8.00")

    plan_change_cancel(change_id=change.pk, actor=Actor.customer(customer), customer=customer)

    cheap.refresh_from_db()
    assert cheap.status == InvoiceStatus.CANCELLED
    renewals_run(today=issue_day)
    renewal = Invoice.objects.get(
        kind=InvoiceKind.RENEWAL, deployment=gold, status=InvoiceStatus.UNPAID
    )
    assert renewal.total == Decimal("15.00")
    assert renewal.period_start == PERIOD_END


def test_cancelling_a_scheduled_downgrade_whose_renewal_is_paid_is_refused(
    gold, customer, staff, settings
):
    settings.BILLING_DOWNGRADE_AT_PERIOD_END = True
    change = plan_change_request(
        deployment_id=gold.pk, to_plan_slug="silver", actor=Actor.customer(customer)
    )
    renewals_run(today=PERIOD_END - dt.timedelta(days=settings.BILLING_RENEWAL_INVOICE_DAYS))
    _pay(Invoice.objects.get(kind=InvoiceKind.RENEWAL, deployment=gold), staff)

    with pytest.raises(ConflictError, match="already paid"):
        plan_change_cancel(change_id=change.pk, actor=Actor.customer(customer), customer=customer)
    change.refresh_from_db()
    assert change.status == PlanChangeStatus.SCHEDULED


def test_upgrade_refused_for_a_renewal_issued_ahead_says_when_it_can_be_done(
    active, customer, settings
):
    """A renewal invoice for the next period is already issued (at the current price): the
    customer is told the plan can be changed from the day that period starts (paying the
    renewal first does not make an upgrade possible before then)."""
    renewals_run(today=PERIOD_END - dt.timedelta(days=settings.BILLING_RENEWAL_INVOICE_DAYS))
    with pytest.raises(PlanChangeNotAllowed) as caught:
        plan_change_request(
            deployment_id=active.pk, to_plan_slug="silver", actor=Actor.customer(customer)
        )
    message = caught.value.message
    assert PERIOD_END.isoformat() in message
    assert "already issued" in message
    assert not PlanChange.objects.exists()


def test_refund_to_credit_of_an_upgrade_already_refunded_to_credit_is_refused(
    active, customer, staff
):
    """An upgrade paid after termination went to credit (plan_change_paid); staff then choose
    "refund to credit" on that invoice: refused with a message, not a 500 and not twice."""
    from billing.services.credit_refunds import invoice_refund_to_credit

    change = plan_change_request(
        deployment_id=active.pk, to_plan_slug="silver", actor=Actor.customer(customer)
    )
    operations.deployment_terminate(
        deployment_id=active.pk, actor=Actor.staff(staff), reason="cancelled"
    )
    _pay(change.invoice, staff)
    assert CreditEntry.objects.filter(kind=CreditEntryKind.REFUND).count() == 1

    with pytest.raises(ConflictError, match="already"):
        invoice_refund_to_credit(invoice_id=change.invoice_id, actor=Actor.staff(staff))
    assert CreditEntry.objects.filter(kind=CreditEntryKind.REFUND).count() == 1
