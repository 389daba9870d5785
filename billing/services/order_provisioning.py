"""Staff provisioning an order (the provisioning API's provision/ and manual/): billing knows
orders and whether they are paid; provisioning does the work on the order's deployment."""

from billing.errors import BillingErrorCode
from billing.models import Order, OrderStatus
from billing.selectors import order_get_by_reference
from common.actors import Actor
from common.errors import ConflictError
from provisioning.manual import ManualLink, provisioning_link_manual_server
from provisioning.services import QueuedProvisioning, provisioning_queue

# Paid orders: confirmed (waiting or retrying), provisioning, or completed (a server exists).
PAID_ORDER_STATUSES = (OrderStatus.CONFIRMED, OrderStatus.PROVISIONING, OrderStatus.COMPLETED)


def order_get_paid(*, order_id: int) -> Order:
    """The order (404 when unknown), refused with 409 unless it is paid."""
    order = order_get_by_reference(reference=str(order_id))
    if order.status == OrderStatus.CANCELLED:
        raise ConflictError(
            f"{order} is cancelled; it cannot be provisioned.",
            code=BillingErrorCode.ORDER_CANCELLED,
        )
    if order.status not in PAID_ORDER_STATUSES:
        raise ConflictError(
            f"{order} is not paid yet; confirm its payment first.",
            code=BillingErrorCode.ORDER_NOT_PAID,
        )
    return order


def order_provision(*, order_id: int, actor: Actor) -> tuple[Order, QueuedProvisioning]:
    """Queue the paid order's deployment (idempotent: the existing run comes back)."""
    order = order_get_paid(order_id=order_id)
    queued = provisioning_queue(
        deployment_id=order.deployment_id, order_reference=str(order), actor=actor
    )
    return order, queued


def order_link_manual_server(
    *, order_id: int, panel_server_id: int, actor: Actor, note: str = ""
) -> tuple[Order, ManualLink]:
    """Link a server staff created by hand on the panel to the paid order's deployment."""
    order = order_get_paid(order_id=order_id)
    link = provisioning_link_manual_server(
        deployment_id=order.deployment_id, panel_server_id=panel_server_id, actor=actor, note=note
    )
    return order, link
