"""Issue 11, item 1: `order_detail --plan` and the saga agree by construction.

Both take the environment, the server payload and the candidate nodes from
provisioning.saga.server_spec; these cases run the dry run, then the real saga, on the same
deployment and compare what each decided.
"""

import pytest
from django.utils import timezone

from provisioning.models import RunStatus
from provisioning.saga.dry_run import provisioning_plan
from servers.models import Deployment, Node
from tests.test_saga import pay


def _run(order):
    return order.deployment.provisioning_request.runs.order_by("-pk").first()


def test_a_placeable_order_goes_where_the_dry_run_said_with_its_payload(saga, place_order, staff):
    order = place_order()
    plan = provisioning_plan(deployment_id=order.deployment_id)

    order = pay(order, staff)

    run = _run(order)
    assert run.status == RunStatus.SUCCEEDED, run.last_error
    assert plan["refusal"] is None
    assert plan["node"] == order.deployment.node.name
    assert plan["server_payload"] == run.server_payload


def test_a_location_without_usable_node_is_refused_by_both_in_the_same_words(
    saga, place_order, staff
):
    order = place_order()
    Node.objects.filter(location__short_code="eu").update(maintenance_mode=True)
    plan = provisioning_plan(deployment_id=order.deployment_id)

    order = pay(order, staff)

    run = _run(order)
    assert plan["node"] is None
    assert run.status == RunStatus.FAILED
    assert plan["placement"] in run.last_error
    assert "No usable node in location 'eu'" in plan["placement"]


def test_variables_the_egg_refuses_fail_both_with_the_same_message(saga, place_order, staff):
    order = place_order()
    # Changed after checkout (the form checks them): the saga must refuse, and so the dry run.
    Deployment.objects.filter(pk=order.deployment_id).update(
        variables={"SERVER_JARFILE": "not-a-jar.txt"}
    )
    plan = provisioning_plan(deployment_id=order.deployment_id)

    order = pay(order, staff)

    run = _run(order)
    assert plan["refusal"]
    assert "SERVER_JARFILE" in plan["refusal"]
    assert run.status == RunStatus.FAILED
    assert plan["refusal"] in run.last_error


@pytest.mark.postgres
def test_a_full_location_is_not_placed_by_either(saga, place_order, staff):
    order = place_order()
    # The panel shrank after checkout: no room for anyone.
    Node.objects.filter(location__short_code="eu").update(
        memory_mb=0, memory_overallocate_percent=0, synced_at=timezone.now()
    )
    for node in saga.panel.nodes.values():
        node.memory, node.memory_overallocate = 0, 0
    plan = provisioning_plan(deployment_id=order.deployment_id)

    order = pay(order, staff)

    run = _run(order)
    assert plan["node"] is None
    assert run.waiting_for_capacity_since is not None
    assert run.status == RunStatus.RUNNING
