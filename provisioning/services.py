"""The provisioning entry point billing calls when an order is paid."""

import logging

from django.conf import settings
from django.db import transaction

from common.actors import Actor
from provisioning.models import (
    ProvisioningRequest,
    ProvisioningRequestEvent,
    ProvisioningRequestStatus,
)

logger = logging.getLogger(__name__)


def provisioning_request_create(
    *, deployment_id: int, order_reference: str, actor: Actor
) -> ProvisioningRequest:
    """Record that this deployment must be provisioned. At most one request per deployment.

    Uniqueness is the database's job (one-to-one on deployment, INSERT .. ON CONFLICT DO
    NOTHING), so a duplicate webhook or a second confirmation racing this one adds nothing.
    Call it inside the confirming transaction: the request commits or rolls back with it.
    """
    automatic = settings.PROVISIONING_ENABLED
    with transaction.atomic():
        ProvisioningRequest.objects.bulk_create(
            [
                ProvisioningRequest(
                    deployment_id=deployment_id,
                    order_reference=order_reference,
                    requested_by=actor.label,
                    automatic=automatic,
                )
            ],
            ignore_conflicts=True,
        )
        request = ProvisioningRequest.objects.select_for_update().get(deployment_id=deployment_id)
        if not request.events.exists():
            ProvisioningRequestEvent.objects.create(
                request=request,
                actor=actor.user,
                actor_label=actor.label,
                from_status="",
                to_status=ProvisioningRequestStatus.PENDING,
                reason=(
                    f"{order_reference} confirmed"
                    if automatic
                    else f"{order_reference} confirmed; PROVISIONING_ENABLED is off, waiting "
                    "for manual provisioning"
                ),
            )
    logger.info(
        "provisioning requested for deployment %s (%s), automatic=%s",
        deployment_id,
        order_reference,
        automatic,
    )
    return request
