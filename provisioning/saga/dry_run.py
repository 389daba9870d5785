"""A dry run of the saga: the exact server-create payload and the placement decision, from
GET requests only. Nothing is created, reserved or claimed."""

from typing import Any

from django.conf import settings

from provisioning.models import AllocationClaim, PanelAccount
from provisioning.pterodactyl import PterodactylClient
from provisioning.saga.placement import node_load, rank_nodes
from servers.egg_rules import VariableRule, build_environment
from servers.models import Deployment, Node


def provisioning_plan(
    *, deployment_id: int, client: PterodactylClient | None = None
) -> dict[str, Any]:
    client = client or PterodactylClient.from_settings()
    deployment = Deployment.objects.select_related("location", "customer").get(pk=deployment_id)
    spec = deployment.spec
    egg = client.get_egg(spec["nest_id"], spec["egg_id"])
    rules = [
        VariableRule(
            v.env_variable, v.name, v.rules, v.default_value, v.user_editable, v.user_viewable
        )
        for v in egg.variables or ()
    ]
    plan_values = {
        k: v for k, v in spec.get("environment", {}).items() if k not in deployment.variables
    }
    environment, errors = build_environment(
        rules, plan_values=plan_values, customer_values=deployment.variables
    )
    limits = spec["limits"]
    nodes = list(
        Node.objects.filter(location=deployment.location, is_public=True, maintenance_mode=False)
    ) or list(Node.objects.filter(panel_id=settings.DEFAULT_NODE_ID))
    # As placement would see it: other orders' holds count, this deployment's own does not.
    loads = [node_load(n, exclude_deployment_id=deployment.pk) for n in nodes]
    viable, reason = rank_nodes(loads, memory=limits["memory"], disk=limits["disk"])
    wanted = max(1, int(spec["feature_limits"].get("allocations") or 0))
    allocations: list[str] = []
    if viable:
        claimed = set(AllocationClaim.objects.values_list("panel_allocation_id", flat=True))
        free = [
            a
            for a in client.list_allocations(viable[0].node.panel_id, assigned=False)
            if a.id not in claimed
        ]
        allocations = [f"{a.ip}:{a.port} (#{a.id})" for a in sorted(free, key=lambda a: a.port)]
        allocations = allocations[:wanted]
    account = PanelAccount.objects.filter(user_id=deployment.customer_id).first()
    payload = {
        "name": deployment.name,
        "user": account.panel_user_id
        if account and account.panel_user_id
        else "<panel user to be found or created>",
        "egg": egg.id,
        "docker_image": spec["docker_image"],
        "startup": spec["startup"],
        "environment": environment,
        "limits": {**limits, "oom_disabled": spec.get("oom_disabled", True)},
        "feature_limits": spec["feature_limits"],
        "external_id": deployment.external_id,
        "start_on_completion": settings.AUTO_START_SERVERS,
        "allocation": {
            "default": allocations[0] if allocations else "<created from BASE_PORT>",
            "additional": allocations[1:],
        },
    }
    return {
        "payload": payload,
        "variable_errors": errors,
        "placement": reason,
        "node": viable[0].node.name if viable else None,
    }
