"""Issue 9, item 5: capacity is checked before the customer pays.

Checkout takes a capacity hold on a node (servers.capacity) inside the order's transaction;
later checkouts see the room as taken and are refused as sold out before any invoice is paid.
Paying keeps the hold until the server exists, placement consumes it, a cancelled order or a
failed run gives it back, an unpaid hold lapses after CAPACITY_HOLD_MINUTES.

The panel is the simulator behind `responses` (the `saga` fixture); races are real threads on
PostgreSQL connections.
"""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from billing.models import Order, OrderStatus
from billing.services.maintenance import orders_cancel_stale_unpaid
from billing.services.orders import order_cancel
from common.actors import Actor
from provisioning.models import RunStatus
from servers.capacity import SoldOutError, capacity_holds_active
from servers.models import CapacityHold, DeploymentStatus, Node
from tests import factories
from tests.support import race
from tests.test_saga import panel_leftovers, pay
from tests.test_saga_concurrency import _assert_no_port_twice, _payer

BRONZE_MB = 1024


def _room_for_bronze(saga, count: int, *, panel_id: int = 1) -> None:
    """The eu node (mirror and simulated panel alike) has room for exactly `count` Bronze."""
    Node.objects.filter(panel_id=panel_id).update(
        memory_mb=count * BRONZE_MB,
        memory_overallocate_percent=0,
        allocated_memory_mb=0,
        allocated_disk_mb=0,
        synced_at=timezone.now(),
    )
    node = saga.panel.nodes[panel_id]
    node.memory, node.memory_overallocate = count * BRONZE_MB, 0


def _customer(n: int):
    return factories.UserFactory(username=f"buyer{n}@example.com")


def _checkout(place_order, n: int):
    customer = _customer(n)
    return lambda: place_order(customer=customer, actor=Actor.customer(customer))


@pytest.mark.postgres
def test_fifty_concurrent_checkouts_for_ten_slots_ten_servers_forty_refused_before_paying(
    saga, place_order, staff
):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks")
    _room_for_bronze(saga, 10)

    results = race([_checkout(place_order, n) for n in range(50)])

    orders = [r for r in results if isinstance(r, Order)]
    refused = [r for r in results if isinstance(r, SoldOutError)]
    assert len(orders) == 10, [r for r in results if not isinstance(r, Order | SoldOutError)]
    assert len(refused) == 40
    assert refused[0].code == "sold_out"
    assert refused[0].extra["fields"]["location"][0].startswith("Sold out")
    # Nothing of a refused checkout is left: no order, invoice or deployment to pay.
    assert Order.objects.count() == 10
    assert capacity_holds_active().count() == 10

    paid = race([_payer(order, staff) for order in orders])

    assert not [r for r in paid if isinstance(r, Exception)], paid
    statuses = [Order.objects.get(pk=o.pk).status for o in orders]
    assert statuses == [OrderStatus.COMPLETED] * 10
    assert len(saga.panel.servers) == 10
    _assert_no_port_twice(saga)
    # Each hold gave way to its run's reservation at placement: nothing is counted twice.
    assert capacity_holds_active().count() == 0
    assert all(h.release_reason.startswith("placed on ") for h in CapacityHold.objects.all())


def test_sold_out_location_is_shown_on_the_plan_list_and_the_api(
    saga, place_order, client, api_client
):
    _room_for_bronze(saga, 1)
    place_order()  # the last Bronze slot in eu is held

    page = client.get("/").content.decode()
    plans = {plan["slug"]: plan for plan in api_client.get("/api/v1/plans/").json()["results"]}

    bronze = {a["location"]: a for a in plans["bronze"]["availability"]}
    assert bronze["eu"] == {"location": "eu", "available": False, "sold_out": True}
    assert bronze["us"]["available"] is True
    assert "(sold out)" in page
    # A plan sold out in every location has no order button.
    Node.objects.update(maintenance_mode=True)
    page = client.get("/").content.decode()
    assert "Sold out everywhere right now" in page
    assert 'href="/plans/bronze/order/"' not in page


def test_checkout_into_a_sold_out_location_is_a_field_error_on_web_and_api(
    saga, place_order, customer_api
):
    _room_for_bronze(saga, 1)
    place_order()

    response = customer_api.post(
        "/api/v1/orders/",
        {"plan": "bronze", "billing_cycle": "monthly", "location": "eu"},
        format="json",
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "sold_out"
    assert body["extra"]["fields"]["location"][0].startswith("Sold out")
    assert Order.objects.count() == 1
    # Another location still sells.
    ok = customer_api.post(
        "/api/v1/orders/",
        {"plan": "bronze", "billing_cycle": "monthly", "location": "us"},
        format="json",
    )
    assert ok.status_code == 201, ok.json()


def test_a_location_with_no_usable_node_is_not_available_not_sold_out(saga, place_order):
    Node.objects.filter(panel_id=1).update(maintenance_mode=True)

    with pytest.raises(SoldOutError) as refused:
        place_order()

    assert refused.value.code == "not_available"
    assert Order.objects.count() == 0


def test_cancelling_an_unpaid_order_gives_its_room_back(saga, place_order, customer):
    _room_for_bronze(saga, 1)
    order = place_order()
    with pytest.raises(SoldOutError):
        place_order(customer=_customer(1))

    order_cancel(order_id=order.pk, actor=Actor.customer(customer), reason="changed my mind")

    hold = CapacityHold.objects.get(deployment=order.deployment)
    assert hold.released_at is not None
    assert "cancelled" in hold.release_reason
    assert place_order(customer=_customer(2)).status == OrderStatus.PENDING


def test_an_unpaid_hold_lapses_after_the_hold_time_and_is_marked_released(
    saga, place_order, settings
):
    settings.CAPACITY_HOLD_MINUTES = 30
    _room_for_bronze(saga, 1)
    first = place_order()
    later = timezone.now() + dt.timedelta(minutes=31)

    with time_machine.travel(later, tick=False):
        second = place_order(customer=_customer(1))  # the first hold stopped counting
        orders_cancel_stale_unpaid()  # the hourly billing job tidies the lapsed row

    assert second.status == OrderStatus.PENDING
    lapsed = CapacityHold.objects.get(deployment=first.deployment)
    assert lapsed.release_reason == "expired"
    assert lapsed.released_at == lapsed.expires_at
    assert capacity_holds_active(now=later).get().deployment_id == second.deployment_id


def test_paying_after_the_hold_lapsed_queues_behind_the_order_that_took_the_room(
    saga, place_order, staff, settings
):
    """The late payer is told it waits for capacity; the customer who held the room in the
    meantime is served first, though the late payer's hold row is older."""
    settings.CAPACITY_HOLD_MINUTES = 30
    _room_for_bronze(saga, 1)
    late = place_order()
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=31), tick=True):
        punctual = place_order(customer=_customer(1))

        late = pay(late, staff)
        punctual = pay(punctual, staff)

    assert punctual.status == OrderStatus.COMPLETED
    assert late.status == OrderStatus.PROVISIONING
    run = late.deployment.provisioning_request.runs.get()
    assert run.status == RunStatus.RUNNING
    assert run.waiting_for_capacity_since is not None
    assert late.deployment.events.filter(reason__contains="waits for capacity").exists()
    assert len(saga.panel.servers) == 1


def test_a_failed_run_before_placement_gives_the_room_back(saga, place_order, staff, settings):
    settings.PROVISIONING_RETRY_ATTEMPTS = 2
    _room_for_bronze(saga, 1)
    saga.fault("status", method="POST", path=r"/users$", status=500, times=100)

    order = pay(place_order(), staff)

    assert order.deployment.status == DeploymentStatus.FAILED
    hold = CapacityHold.objects.get(deployment=order.deployment)
    assert hold.release_reason == "provisioning failed"
    assert panel_leftovers(saga)["servers"] == 0
    # The room is free again for the next customer.
    assert place_order(customer=_customer(1)).status == OrderStatus.PENDING
