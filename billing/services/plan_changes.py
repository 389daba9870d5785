"""Staff moving a live server to another plan: the plan's limits, with the order's add-ons."""

from billing.catalog import plan_panel_spec
from billing.models import Order, Plan
from common.actors import Actor
from provisioning.operations import deployment_change_build
from servers.models import Deployment


def order_plan_change(*, order: Order, plan: Plan, actor: Actor) -> Deployment:
    """Apply `plan` (and the add-ons the order was sold with) to the order's server on the
    panel; raises ApplicationError when the server is not live or the panel refuses."""
    addons = [item.addon for item in order.order_addons.select_related("addon")]
    return deployment_change_build(
        deployment_id=order.deployment_id,
        spec=plan_panel_spec(plan, addons),
        plan_slug=plan.slug,
        plan_name=plan.name,
        actor=actor,
    )
