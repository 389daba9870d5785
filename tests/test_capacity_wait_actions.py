"""Issue 9, item 5: a paid order that finds no room waits visibly, starts by itself when room
appears, the customer is told the truth, and staff may move it or refund it.

The panel is the simulator behind `responses` (the `saga` fixture); Stripe's refund endpoint is
faked with `responses` on its real URL.
"""

import datetime as dt
import json
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from billing.models import InvoiceStatus, OrderStatus, PaymentStatus
from billing.services.payments import invoice_mark_paid
from billing.services.waiting_orders import order_move_location, order_refund
from billing.stripe_client import StripeUnavailable
from common.actors import Actor
from common.errors import ApplicationError, ConflictError
from notifications.models import Delivery
from provisioning.models import PanelAccount, ProvisioningRequestStatus, RunStatus
from provisioning.services import provisioning_sweep
from provisioning.tasks import run_step
from servers.capacity import SoldOutError
from servers.models import CapacityHold, DeploymentStatus, Location, Node
from tests.test_capacity_holds import BRONZE_MB, _customer, _room_for_bronze
from tests.test_saga import pay

pytestmark = pytest.mark.postgres

STRIPE_REFUNDS = "https://api.stripe.com/v1/refunds"


def _waiting_order(saga, place_order, staff, *, pay_with=None):
    """Two Bronze orders held room for two; the panel then shrank to room for one (a change
    on the panel after checkout): the first paid is served, the second waits for capacity."""
    _room_for_bronze(saga, 2)
    first = place_order(customer=_customer(1))
    second = place_order()
    _room_for_bronze(saga, 1)
    pay(first, staff)
    second = (pay_with or (lambda order: pay(order, staff)))(second)
    run = second.deployment.provisioning_request.runs.get()
    assert run.waiting_for_capacity_since is not None, run.last_error
    return second, run


def _run_of(order):
    return order.deployment.provisioning_request.runs.order_by("-pk").first()


def test_the_customer_is_told_the_truth_and_staff_get_the_order_list(
    saga, place_order, staff, customer
):
    order, run = _waiting_order(saga, place_order, staff)

    told = Delivery.objects.filter(user=customer, event="provisioning_waiting_capacity")
    assert told.count() >= 1
    body = told.first().body
    assert f"#{order.pk}" in body
    assert "eu" in body
    assert "by hand" not in body
    # The old "delayed, completed by hand within 24 hours" message is not sent for a wait.
    assert not Delivery.objects.filter(user=customer, event="provisioning_failed").exists()
    alert = Delivery.objects.get(
        event="fleet_alert_staff", event_key=f"waiting_capacity_staff:run-{run.pk}"
    )
    assert "waiting_for_capacity=yes" in json.dumps(alert.context)


def test_a_waiting_order_starts_by_itself_when_room_appears(saga, place_order, staff, settings):
    order, _run = _waiting_order(saga, place_order, staff)
    run_step.delay(_run.pk)  # early (a duplicate message): not due, still waiting
    assert _run_of(order).status == RunStatus.RUNNING

    # Staff add memory on the panel; the next retry (not before its interval) reads it.
    saga.panel.nodes[1].memory = 2 * BRONZE_MB
    Node.objects.filter(panel_id=1).update(memory_mb=2 * BRONZE_MB, synced_at=None)
    later = timezone.now() + dt.timedelta(seconds=settings.PROVISIONING_CAPACITY_RETRY_INTERVAL + 1)
    with time_machine.travel(later, tick=True):
        run_step.delay(_run.pk)  # the retry the engine queued with that countdown

    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    request = order.deployment.provisioning_request
    assert request.status == ProvisioningRequestStatus.SUCCEEDED
    assert request.events.filter(reason__startswith="Room found after waiting").exists()
    assert len(saga.panel.servers) == 2


def test_staff_move_a_waiting_order_to_a_location_with_room(saga, place_order, staff):
    order, _run = _waiting_order(saga, place_order, staff)
    us = Location.objects.get(short_code="us")

    order_move_location(
        order_id=order.pk, location_id=us.pk, actor=Actor.staff(staff), reason="eu is full"
    )

    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert order.location == us
    assert order.deployment.location == us
    assert order.deployment.node.location == us
    assert order.events.filter(reason__contains="Moved from eu").exists()
    assert order.deployment.events.filter(reason__contains="Moved from eu").exists()
    servers = [
        s for s in saga.panel.servers.values() if s.external_id == order.deployment.external_id
    ]
    assert len(servers) == 1
    assert servers[0].node_id == saga.panel.nodes[2].id


def test_moving_to_a_full_location_is_refused_and_changes_nothing(saga, place_order, staff):
    order, _run = _waiting_order(saga, place_order, staff)
    Node.objects.filter(panel_id=2).update(
        memory_mb=0, memory_overallocate_percent=0, synced_at=timezone.now()
    )
    us = Location.objects.get(short_code="us")

    with pytest.raises(SoldOutError):
        order_move_location(
            order_id=order.pk, location_id=us.pk, actor=Actor.staff(staff), reason="try us"
        )

    order.refresh_from_db()
    assert order.location.short_code == "eu"
    assert order.deployment.location.short_code == "eu"
    assert CapacityHold.objects.get(deployment=order.deployment).released_at is None
    assert _run_of(order).waiting_for_capacity_since is not None


def test_refund_of_a_waiting_bank_transfer_order(saga, place_order, staff, customer):
    order, _run = _waiting_order(saga, place_order, staff)
    servers_before = len(saga.panel.servers)

    refunds = order_refund(
        order_id=order.pk, actor=Actor.staff(staff), reason="No room in eu this month"
    )

    assert [(r.provider, r.amount, r.reference) for r in refunds] == [
        ("manual", "5.50", f"REF-{order.pk}")
    ]
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    invoice = order.invoices.get()
    assert invoice.status == InvoiceStatus.REFUNDED
    payment = invoice.payments.get()
    assert payment.status == PaymentStatus.REFUNDED
    assert "bank transfer" in payment.note
    assert order.deployment.status == DeploymentStatus.CANCELLED
    run = _run_of(order)
    assert run.status == RunStatus.FAILED
    assert "while waiting for capacity" in run.last_error
    assert order.deployment.provisioning_request.status == ProvisioningRequestStatus.CANCELLED
    assert CapacityHold.objects.get(deployment=order.deployment).released_at is not None
    assert len(saga.panel.servers) == servers_before  # nothing was created for it
    # The panel user is the customer's panel account, kept for their next order.
    account = PanelAccount.objects.get(user=customer)
    assert account.panel_user_id in saga.panel.users
    message = Delivery.objects.get(user=customer, event="order_refunded")
    assert "5.50" in message.body
    assert "No room in eu this month" in message.body
    assert "bank transfer" in message.body
    # A refunded order cannot be refunded again, and the sweeper leaves the run alone.
    with pytest.raises(ConflictError):
        order_refund(order_id=order.pk, actor=Actor.staff(staff), reason="again")
    provisioning_sweep(now=timezone.now() + dt.timedelta(hours=1))
    assert len(saga.panel.servers) == servers_before


def _pay_by_card(order):
    invoice = order.invoices.get()
    invoice_mark_paid(
        invoice_id=invoice.pk,
        provider="stripe",
        amount=invoice.total,
        currency=invoice.currency,
        reference="pi_test_waiting",
        actor=Actor.provider("stripe", "evt_test"),
    )
    order.refresh_from_db()
    return order


def test_refund_of_a_card_payment_refunds_its_payment_intent_once(
    saga, place_order, staff, settings
):
    settings.STRIPE_SECRET_KEY = "sk_test_refunds"
    order, _run = _waiting_order(saga, place_order, staff, pay_with=_pay_by_card)
    saga.rsps.post(
        STRIPE_REFUNDS,
        json={
            "id": "re_test_1",
            "object": "refund",
            "status": "succeeded",
            "amount": 550,
            "currency": "usd",
        },
    )

    refunds = order_refund(order_id=order.pk, actor=Actor.staff(staff), reason="Sold out")

    assert [(r.provider, r.reference) for r in refunds] == [("stripe", "re_test_1")]
    calls = [c for c in saga.rsps.calls if c.request.url == STRIPE_REFUNDS]
    assert len(calls) == 1
    sent = calls[0].request
    assert "payment_intent=pi_test_waiting" in sent.body
    assert "amount=550" in sent.body
    payment = order.invoices.get().payments.get()
    assert sent.headers["Idempotency-Key"] == f"refund:payment-{payment.pk}"
    assert payment.status == PaymentStatus.REFUNDED
    assert "re_test_1" in payment.note
    told = Delivery.objects.get(event="order_refunded").body
    assert "re_test_1" in told
    assert "to the card you paid with" in told


def test_a_stripe_outage_during_refund_changes_nothing(saga, place_order, staff, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_refunds"
    order, _run = _waiting_order(saga, place_order, staff, pay_with=_pay_by_card)
    saga.rsps.post(STRIPE_REFUNDS, status=503, json={"error": {"message": "down"}})

    with pytest.raises(StripeUnavailable, match="try again"):
        order_refund(order_id=order.pk, actor=Actor.staff(staff), reason="Sold out")

    order.refresh_from_db()
    assert order.status == OrderStatus.PROVISIONING
    assert order.invoices.get().status == InvoiceStatus.PAID
    assert _run_of(order).waiting_for_capacity_since is not None
    assert not Delivery.objects.filter(event="order_refunded").exists()


def test_refund_is_refused_for_an_order_with_a_server_or_a_running_setup(saga, place_order, staff):
    _room_for_bronze(saga, 2)
    done = pay(place_order(customer=_customer(1)), staff)
    assert done.status == OrderStatus.COMPLETED
    with pytest.raises(ConflictError, match="only a paid order without a server"):
        order_refund(order_id=done.pk, actor=Actor.staff(staff), reason="no")

    unpaid = place_order()
    with pytest.raises(ConflictError):
        order_refund(order_id=unpaid.pk, actor=Actor.staff(staff), reason="no")
    with pytest.raises(ApplicationError, match="Say why"):
        order_refund(order_id=unpaid.pk, actor=Actor.staff(staff), reason="  ")


def test_the_order_admin_lists_waiting_orders_and_refunds_them(saga, place_order, staff, client):
    order, _run = _waiting_order(saga, place_order, staff)
    other = place_order(customer=_customer(2), location_code="us")
    client.force_login(staff)
    changelist = reverse("admin:billing_order_changelist")

    listed = client.get(changelist, {"waiting_for_capacity": "yes"})
    assert listed.status_code == 200
    assert listed.context["cl"].result_list[0].pk == order.pk
    assert len(listed.context["cl"].result_list) == 1

    form = client.post(
        changelist, {"action": "refund_unprovisioned", "_selected_action": [order.pk]}
    )
    assert form.status_code == 200
    assert b"reason" in form.content
    missing_reason = client.post(
        changelist,
        {"action": "refund_unprovisioned", "_selected_action": [order.pk], "apply": "1"},
    )
    assert missing_reason.status_code == 200  # the form again, with its error
    order.refresh_from_db()
    assert order.status == OrderStatus.PROVISIONING

    done = client.post(
        changelist,
        {
            "action": "refund_unprovisioned",
            "_selected_action": [order.pk, other.pk],
            "apply": "1",
            "reason": "Sold out",
        },
        follow=True,
    )
    shown = [str(m) for m in done.context["messages"]]
    assert any("cancelled, refunded 5.50 USD" in m for m in shown), shown
    assert any("bank transfer" in m for m in shown), shown
    assert any(f"Order #{other.pk}" in m and "awaiting payment" in m for m in shown), shown
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert Decimal(order.invoices.get().total) == Decimal("5.50")
