"""What server a deployment asks for and where it may go: one source for the saga's resources
and placement steps, its dry run (`order_detail --plan`) and nothing else re-deriving them.

- `environment_for`: the egg's variables from the plan's values and the customer's, checked
  against the egg's rules (the customer's values win over the plan's);
- `server_payload_for`: the run's stored server payload (egg, image, startup, environment,
  limits, feature limits), from which ServerStep builds the create request;
- `placement_nodes`: the candidate nodes of the deployment's location (public, not in
  maintenance), or the refusal when there are none (never a fallback to another node).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings

from servers.egg_rules import VariableRule, build_environment
from servers.models import Deployment, Node


class NoUsableNode(Exception):
    """The deployment's location has no node a server may go on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def environment_for(
    deployment: Deployment, rules: Iterable[VariableRule]
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(environment, errors by variable) for the deployment's egg variables."""
    plan_values = {
        key: value
        for key, value in (deployment.spec.get("environment") or {}).items()
        if key not in deployment.variables
    }
    return build_environment(
        list(rules), plan_values=plan_values, customer_values=deployment.variables
    )


def environment_problems(errors: dict[str, list[str]]) -> str:
    """The saga's failure text for rule violations (the dry run reports the same)."""
    problems = "; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in errors.items())
    return f"The server settings do not satisfy the egg's rules: {problems}"


def server_payload_for(deployment: Deployment, environment: dict[str, str]) -> dict[str, Any]:
    spec = deployment.spec
    return {
        "egg_id": spec["egg_id"],
        "nest_id": spec["nest_id"],
        "docker_image": spec["docker_image"],
        "startup": spec["startup"],
        "environment": environment,
        "limits": {**spec["limits"], "oom_disabled": spec.get("oom_disabled", True)},
        "feature_limits": spec["feature_limits"],
    }


def placement_nodes(deployment: Deployment) -> list[Node]:
    """The nodes placement chooses among. Raises NoUsableNode with the reason."""
    if deployment.location_id:
        nodes = list(
            Node.objects.filter(
                location_id=deployment.location_id, is_public=True, maintenance_mode=False
            )
        )
        where = f"location '{deployment.location.short_code}'"
    else:  # an order placed before locations were synced: the configured default node
        nodes = list(Node.objects.filter(panel_id=settings.DEFAULT_NODE_ID))
        where = f"DEFAULT_NODE_ID {settings.DEFAULT_NODE_ID}"
    if not nodes:
        raise NoUsableNode(
            f"No usable node in {where} (run `manage.py sync_panel`, or add a node there)."
        )
    return nodes
