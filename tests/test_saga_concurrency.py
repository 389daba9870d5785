"""Saga races on PostgreSQL with real concurrent connections (threads), panel = simulator."""

from collections.abc import Callable

import pytest
from django.db import connection

from billing.models import OrderStatus
from billing.services.payments import payment_record_manual
from common.actors import Actor
from provisioning.models import AllocationClaim, ProvisioningRun, RunStatus
from provisioning.saga import engine
from provisioning.services import provisioning_start
from servers.models import Deployment, DeploymentStatus, Node
from tests import factories
from tests.support import race

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks")


def _drive(run_id: int) -> list[str]:
    results = []
    for _ in range(40):
        results.append(engine.run_step(run_id))
        if results[-1] in ("succeeded", "failed", "needs_attention"):
            break
    return results


def _orders(place_order, count: int) -> list:
    orders = []
    for n in range(count):
        customer = factories.UserFactory(username=f"racer{n}@example.com")
        orders.append(place_order(customer=customer, actor=Actor.customer(customer)))
    return orders


def _payer(order, staff) -> Callable[[], object]:
    invoice_id = order.invoices.get().pk

    def pay() -> object:
        return payment_record_manual(
            invoice_id=invoice_id, reference=f"R{order.pk}", actor=Actor.staff(staff)
        )

    return pay


def _assert_no_port_twice(saga) -> None:
    live = Deployment.objects.filter(status=DeploymentStatus.ACTIVE)
    addresses = [(d.ip_address, d.port) for d in live]
    assert len(addresses) == len(set(addresses))
    panel_primary = [s.allocation_id for s in saga.panel.servers.values()]
    assert len(panel_primary) == len(set(panel_primary))
    claims = list(AllocationClaim.objects.values_list("node_id", "ip", "port"))
    assert len(claims) == len(set(claims))


def test_twenty_paid_orders_for_five_slots_five_servers_fifteen_wait(saga, place_order, staff):
    orders = _orders(place_order, 20)  # checkout saw room for all of them
    # Then the node shrank on the panel: the next reading (the mirror is stale) shows room
    # for exactly five Bronze.
    node = saga.panel.nodes[1]
    node.memory, node.memory_overallocate = 5 * 1024, 0
    Node.objects.update(synced_at=None)

    results = race([_payer(order, staff) for order in orders])

    assert not [r for r in results if isinstance(r, Exception)], results
    statuses = [o.__class__.objects.get(pk=o.pk).status for o in orders]
    assert statuses.count(OrderStatus.COMPLETED) == 5
    assert statuses.count(OrderStatus.PROVISIONING) == 15  # paid, waiting for room, not failed
    runs = ProvisioningRun.objects.all()
    assert sorted(set(runs.values_list("status", flat=True))) == ["running", "succeeded"]
    waiting = runs.filter(status=RunStatus.RUNNING)
    assert waiting.filter(waiting_for_capacity_since__isnull=False).count() == 15
    assert set(waiting.values_list("request__status", flat=True)) == {"waiting_capacity"}
    assert len(saga.panel.servers) == 5
    assert sum(1 for a in saga.panel.allocations.values() if a.server_id) == 5
    _assert_no_port_twice(saga)


def test_ten_orders_racing_for_three_free_ports_get_distinct_ports(saga, place_order, staff):
    for allocation_id in [a.id for a in saga.panel.allocations.values() if a.port > 25567]:
        del saga.panel.allocations[allocation_id]
    orders = _orders(place_order, 10)

    results = race([_payer(order, staff) for order in orders])

    assert not [r for r in results if isinstance(r, Exception)], results
    assert all(o.__class__.objects.get(pk=o.pk).status == OrderStatus.COMPLETED for o in orders)
    assert len(saga.panel.servers) == 10
    _assert_no_port_twice(saga)
    # Seven ports were created from BASE_PORT upward on the node's IP.
    ports = sorted(d.port for d in Deployment.objects.all())
    assert ports[:3] == [25565, 25566, 25567]
    assert len(ports) == 10


def test_two_confirmations_and_two_workers_racing_make_one_server(
    saga, place_order, staff, settings, manual_steps
):
    settings.PROVISIONING_ENABLED = False  # the races below start and drive the run
    order = place_order()
    payment_record_manual(
        invoice_id=order.invoices.get().pk, reference="X", actor=Actor.staff(staff)
    )
    request_id = order.deployment.provisioning_request.pk

    starts = race(
        [
            lambda: provisioning_start(request_id=request_id, actor=Actor.staff(staff)),
            lambda: provisioning_start(request_id=request_id, actor=Actor.staff(staff)),
        ]
    )

    assert not [r for r in starts if isinstance(r, Exception)], starts
    assert len({run.pk for run in starts}) == 1
    run_id = starts[0].pk
    assert ProvisioningRun.objects.get(pk=run_id).step_index == 0  # queued, not run yet
    # Two workers got the same step (duplicate delivery) and race through the whole saga.
    outcomes = race([lambda: _drive(run_id), lambda: _drive(run_id)])
    assert not [r for r in outcomes if isinstance(r, Exception)], outcomes
    for _ in range(50):
        if ProvisioningRun.objects.get(pk=run_id).status != RunStatus.RUNNING:
            break
        engine.run_step(run_id)
    run = ProvisioningRun.objects.get(pk=run_id)
    assert run.status == RunStatus.SUCCEEDED
    assert ProvisioningRun.objects.count() == 1
    assert len(saga.panel.servers) == 1
    assert len(saga.calls("POST", "/api/application/servers")) == 1
