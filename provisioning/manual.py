"""Manual provisioning: staff created the server by hand in the panel; link it to the paid
order's deployment as the saga's success would (deployment active, request succeeded, billing
told), with a history row naming who did it.

Read the panel first (no transaction open), then one locked transaction re-checks the states
and writes. The unique keys on Deployment.panel_server_id and ProvisioningRun.panel_server_id
keep a panel server one deployment's only, whatever raced this.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from common.actors import Actor
from common.errors import ApplicationError, ConflictError, NotFoundError
from provisioning import listeners, notify
from provisioning.errors import ProvisioningErrorCode as Code
from provisioning.models import (
    ACTIVE_RUN_STATUSES,
    PROVISIONING_REQUEST_STATES,
    ProvisioningRequest,
    ProvisioningRequestStatus,
    ProvisioningRun,
    RunStatus,
)
from provisioning.pterodactyl import PanelError, PanelNotFound, PterodactylClient, Server
from servers.capacity import capacity_hold_release
from servers.models import Deployment, DeploymentStatus, Node
from servers.services import deployment_transition

logger = logging.getLogger(__name__)

# Requests a hand-made server can finish: not started yet, failed, or waiting for room.
_LINKABLE_REQUEST_STATUSES = (
    ProvisioningRequestStatus.PENDING,
    ProvisioningRequestStatus.FAILED,
    ProvisioningRequestStatus.WAITING_CAPACITY,
)


class PanelUnavailable(ApplicationError):
    default_code = Code.PANEL_UNAVAILABLE
    http_status = 502


@dataclass(frozen=True)
class ManualLink:
    deployment: Deployment
    panel_server: Server


def provisioning_link_manual_server(
    *,
    deployment_id: int,
    panel_server_id: int,
    actor: Actor,
    note: str = "",
    client: PterodactylClient | None = None,
) -> ManualLink:
    """Link panel server `panel_server_id` (made by hand) to the deployment and make it
    active. Refused (409) while a run is active or holds what it created (needs attention),
    once the deployment is provisioned or cancelled, or when the panel server belongs to
    another deployment."""
    request = _linkable_request(deployment_id)
    _check_server_free(deployment_id=deployment_id, panel_server_id=panel_server_id)
    client = client or PterodactylClient.from_settings()
    try:
        server = client.get_server(panel_server_id, include=["allocations"])
    except PanelNotFound as exc:
        raise NotFoundError(f"The panel has no server #{panel_server_id}.") from exc
    except PanelError as exc:
        raise PanelUnavailable(f"Could not read panel server #{panel_server_id}: {exc}") from exc
    primary = next((a for a in server.allocations or () if a.id == server.allocation_id), None)
    node_id = Node.objects.filter(panel_id=server.node_id).values_list("pk", flat=True).first()
    reason = f"Linked by hand to panel server #{server.id} ({server.identifier})" + (
        f": {note}" if note else ""
    )
    try:
        with transaction.atomic():
            request = _linkable_request(deployment_id, lock=True)
            if request.status != ProvisioningRequestStatus.IN_PROGRESS:
                PROVISIONING_REQUEST_STATES.move(
                    request, ProvisioningRequestStatus.IN_PROGRESS, actor=actor, reason=reason
                )
            PROVISIONING_REQUEST_STATES.move(
                request,
                ProvisioningRequestStatus.SUCCEEDED,
                actor=actor,
                reason="Server active (linked by hand)",
                extra_updates={"last_error": ""},
            )
            current = Deployment.objects.only("status").get(pk=deployment_id).status
            if current != DeploymentStatus.PROVISIONING:
                deployment_transition(
                    deployment_id=deployment_id,
                    to_status=DeploymentStatus.PROVISIONING,
                    actor=actor,
                    reason=reason,
                )
            deployment = deployment_transition(
                deployment_id=deployment_id,
                to_status=DeploymentStatus.ACTIVE,
                actor=actor,
                reason=reason,
                updates={
                    "node_id": node_id,
                    "panel_user_id": server.user_id,
                    "panel_server_id": server.id,
                    "panel_server_uuid": server.uuid[:36],
                    "panel_identifier": server.identifier[:8],
                    "ip_address": primary.ip if primary else "",
                    "port": primary.port if primary else None,
                },
            )
            capacity_hold_release(
                deployment_id=deployment_id,
                reason=f"linked by hand to panel server #{server.id}",
                actor=actor,
            )
            listeners.notify_succeeded(deployment_id=deployment_id, actor=actor)
            # The customer is told as after the saga (queued when this commits).
            notify.notify_deployment_ready(
                deployment_id=deployment_id,
                order_id=request.order_reference.removeprefix("Order #"),
                panel_user_id=server.user_id,
            )
    except IntegrityError as exc:
        # Another deployment took this panel server between the check and the write.
        raise _linked_elsewhere(panel_server_id) from exc
    logger.info(
        "deployment %s linked by hand to panel server %s by %s",
        deployment_id,
        server.id,
        actor.label,
    )
    return ManualLink(deployment=deployment, panel_server=server)


def _linkable_request(deployment_id: int, *, lock: bool = False) -> ProvisioningRequest:
    requests = ProvisioningRequest.objects.filter(deployment_id=deployment_id)
    request = (requests.select_for_update() if lock else requests).first()
    if request is None:
        raise ConflictError(
            "This deployment was never handed to provisioning (is its order paid?).",
            code=Code.NO_REQUEST,
        )
    if request.status not in _LINKABLE_REQUEST_STATUSES:
        raise ConflictError(
            f"Provisioning of {request.order_reference} is "
            f"{request.get_status_display().lower()}; there is nothing to link.",
            code=Code.PROVISIONING_FINISHED,
        )
    last = ProvisioningRun.objects.filter(deployment_id=deployment_id).order_by("-pk").first()
    if last is not None and last.status in ACTIVE_RUN_STATUSES:
        raise ConflictError(
            f"Run #{last.pk} is still {last.get_status_display().lower()}: roll it back first.",
            code=Code.RUN_BUSY,
        )
    if last is not None and last.status == RunStatus.NEEDS_ATTENTION:
        raise ConflictError(
            f"Run #{last.pk} still holds what it created (its rollback did not finish): roll "
            "it back first.",
            code=Code.NEEDS_ATTENTION,
        )
    return request


def _check_server_free(*, deployment_id: int, panel_server_id: int) -> None:
    taken = (
        Deployment.objects.filter(panel_server_id=panel_server_id)
        .exclude(pk=deployment_id)
        .exists()
        or ProvisioningRun.objects.filter(panel_server_id=panel_server_id)
        .exclude(deployment_id=deployment_id)
        .exists()
    )
    if taken:
        raise _linked_elsewhere(panel_server_id)


def _linked_elsewhere(panel_server_id: int) -> ConflictError:
    return ConflictError(
        f"Panel server #{panel_server_id} is already linked to another deployment.",
        code=Code.PANEL_SERVER_LINKED,
    )
