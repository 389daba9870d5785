"""Reads on locations, nodes, eggs and deployments."""

from django.contrib.auth.models import User
from django.db.models import QuerySet

from servers.egg_rules import VariableRule, variable_rules_from
from servers.models import Deployment, DeploymentStatus, Egg, EggVariable, Location


def location_list_active() -> QuerySet[Location]:
    return Location.objects.filter(is_active=True)


def location_get_by_code(*, short_code: str) -> Location | None:
    return Location.objects.filter(short_code=short_code, is_active=True).first()


def egg_variable_rules(*, egg_panel_id: int) -> list[VariableRule] | None:
    """The egg's variable rules as last synced from the panel; None if the egg is unknown here."""
    variables = list(EggVariable.objects.filter(egg__panel_id=egg_panel_id))
    if not variables and not Egg.objects.filter(panel_id=egg_panel_id).exists():
        return None
    return variable_rules_from(variables)


def deployment_list_for_customer(*, customer: User) -> QuerySet[Deployment]:
    return Deployment.objects.filter(customer=customer).select_related("location", "node")


_CUSTOMERS_OWN = (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED)


def deployment_customer_address(*, deployment: Deployment) -> str:
    """The IP:port to show the customer, only while the server is theirs (active or
    suspended): a terminated, failed or cancelled server's port may already be another
    customer's."""
    if deployment.status not in _CUSTOMERS_OWN:
        return ""
    return deployment.connection_address
