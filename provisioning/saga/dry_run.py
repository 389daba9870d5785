"""A dry run of the saga: the exact server-create payload and the placement decision, from
GET requests only. Nothing is created, reserved or claimed.

The environment, payload and candidate nodes come from `provisioning.saga.server_spec`, the
functions the resources and placement steps use, so the dry run cannot promise what the saga
would refuse.
"""

from typing import Any

from django.conf import settings

from provisioning.models import AllocationClaim, PanelAccount
from provisioning.pterodactyl import PterodactylClient
from provisioning.saga.placement import node_load, rank_nodes
from provisioning.saga.server_spec import (
    NoUsableNode,
    environment_for,
    environment_problems,
    placement_nodes,
    server_payload_for,
)
from servers.egg_rules import variable_rules_from
from servers.models import Deployment
from servers.selectors import egg_variable_rules


def provisioning_plan(
    *, deployment_id: int, client: PterodactylClient | None = None
) -> dict[str, Any]:
    client = client or PterodactylClient.from_settings()
    deployment = Deployment.objects.select_related("location", "customer").get(pk=deployment_id)
    spec = deployment.spec
    rules = egg_variable_rules(egg_panel_id=spec["egg_id"])
    if rules is None:  # not mirrored: what the panel says (the step would mirror it first)
        rules = variable_rules_from(client.get_egg(spec["nest_id"], spec["egg_id"]).variables or ())
    environment, errors = environment_for(deployment, rules)
    server = server_payload_for(deployment, environment)
    limits = server["limits"]
    refusal = environment_problems(errors) if errors else None
    viable: list = []
    try:
        nodes = placement_nodes(deployment)
    except NoUsableNode as exc:
        reason = exc.message
    else:
        # As placement would see it: other orders' holds count, this deployment's own does not.
        loads = [node_load(n, exclude_deployment_id=deployment.pk) for n in nodes]
        viable, reason = rank_nodes(loads, memory=limits["memory"], disk=limits["disk"])
    wanted = max(1, int(server["feature_limits"].get("allocations") or 0))
    allocations: list[str] = []
    if viable:
        claimed = set(AllocationClaim.objects.values_list("panel_allocation_id", flat=True))
        free = [
            a for a in client.list_free_allocations(viable[0].node.panel_id) if a.id not in claimed
        ]
        allocations = [f"{a.ip}:{a.port} (#{a.id})" for a in sorted(free, key=lambda a: a.port)]
        allocations = allocations[:wanted]
    account = PanelAccount.objects.filter(user_id=deployment.customer_id).first()
    payload = {
        "name": deployment.name,
        "user": account.panel_user_id
        if account and account.panel_user_id
        else "<panel user to be found or created>",
        "egg": server["egg_id"],
        "docker_image": server["docker_image"],
        "startup": server["startup"],
        "environment": environment,
        "limits": limits,
        "feature_limits": server["feature_limits"],
        "external_id": deployment.external_id,
        "start_on_completion": settings.AUTO_START_SERVERS,
        "allocation": {
            "default": allocations[0] if allocations else "<created from BASE_PORT>",
            "additional": allocations[1:],
        },
    }
    return {
        "payload": payload,
        "server_payload": server,
        "variable_errors": errors,
        # The saga's own words when it would fail at the resources step.
        "refusal": refusal,
        "placement": reason,
        "node": viable[0].node.name if viable else None,
    }
