"""The customers' power actions as the health job reads them, and the audit rows of the
automatic restarts it requests."""

from collections.abc import Iterable, Sequence

from django.db.models import OuterRef, Subquery

from common.actors import Actor
from servers.health.batches import batches
from servers.models import DEPLOYMENT_STATES, Deployment, DeploymentEvent, PowerAction


def deployments_last_power_action(*, deployment_ids: Iterable[int]) -> dict[int, str]:
    """The latest customer power signal ("start", "stop", "restart", "kill") per deployment,
    from PowerAction rows; deployments without one are left out. One query per batch."""
    actions: dict[int, str] = {}
    latest = (
        PowerAction.objects.filter(deployment=OuterRef("pk"))
        .order_by("-created_at", "-pk")
        .values("signal")[:1]
    )
    for batch in batches(deployment_ids):
        rows = (
            Deployment.objects.filter(pk__in=batch)
            .order_by()
            .annotate(last_power=Subquery(latest))
            .filter(last_power__isnull=False)
            .values_list("pk", "last_power")
        )
        actions.update(dict(rows))
    return actions


def deployments_record_bulk(*, deployment_ids: Sequence[int], actor: Actor, reason: str) -> int:
    """deployment_record for many deployments at once (a history row each, status unchanged):
    two statements per batch instead of two per deployment."""
    recorded = 0
    for batch in batches(deployment_ids):
        # Only the key and the status: the history row needs nothing else of the deployment.
        deployments = Deployment.objects.filter(pk__in=batch).order_by().only("pk", "status")
        events = [
            DEPLOYMENT_STATES.unsaved_note(deployment, actor=actor, reason=reason)
            for deployment in deployments
        ]
        DeploymentEvent.objects.bulk_create(events)
        recorded += len(events)
    return recorded
