"""Celery tasks of provisioning. Thin: they take ids and call the engine or a service."""

import logging

from celery import shared_task
from django.conf import settings

from provisioning.saga import engine
from provisioning.services import provisioning_start_queued, provisioning_sweep

logger = logging.getLogger(__name__)


@shared_task(name="provisioning.run_step", acks_late=True)
def run_step(run_id: int) -> str:
    """One saga step. acks_late is safe: the engine's fence makes a re-delivery harmless."""
    result = engine.run_step(run_id)
    if result in engine.FINISHED_RESULTS:
        provisioning_start_queued()  # a slot is free: the next queued order need not wait
    return str(result)  # the plain string, as the result backend always stored it


@shared_task(name="provisioning.sweep")
def sweep() -> dict[str, int]:
    """Resume runs whose worker died (lease expired) or whose message was lost; start queued
    requests when there is room. Safe to run twice or concurrently."""
    return provisioning_sweep()


@shared_task(name="provisioning.refresh_node_readings", soft_time_limit=60, time_limit=90)
def refresh_node_readings() -> int:
    """Every node's capacity into the mirror in one list request (a page per 100 nodes), so
    placement and checkout read capacity without a request of their own. Safe to run twice."""
    from django.core.exceptions import ImproperlyConfigured

    from provisioning.panel_sync import node_readings_refresh
    from provisioning.pterodactyl import PanelError, PterodactylClient

    try:
        return node_readings_refresh(client=PterodactylClient.for_workers())
    except (ImproperlyConfigured, PanelError) as exc:
        # Placement reads a stale node itself; the next run of this job tries again.
        logger.warning("node readings not refreshed: %s", exc)
        return 0


def _dispatch(run_id: int, delay: float) -> None:
    run_step.apply_async((run_id,), countdown=delay if delay > 0 else None)


engine.set_dispatcher(_dispatch)


# Room for the drain's own deadline plus one operation's worst case (3 calls of up to ~125 s
# with the client's retries): the soft limit is a retry, never a lost operation.
@shared_task(
    name="provisioning.drain_panel_operations",
    soft_time_limit=settings.PANEL_OPERATIONS_DRAIN_SECONDS + 420,
    time_limit=settings.PANEL_OPERATIONS_DRAIN_SECONDS + 480,
)
def drain_panel_operations() -> dict[str, int]:
    """Work off due panel operations (suspend, unsuspend, terminate, restart, repairs) inside
    their share of the panel budget; re-enqueues itself while work remains. Safe to run twice
    or concurrently (rows are claimed with SKIP LOCKED and a lease)."""
    from provisioning.fleet.drain import panel_operations_drain

    return panel_operations_drain()
