"""The rows of one message: find and lock them together, record their history, enqueue sends.

A message is every Delivery of one (event, event_key, audience, customer): one per recipient and
channel. Whenever one of them changes, all are locked, in id order, so "did every channel
fail?" is decided under a lock. Every status change goes through DELIVERY_STATES (a
common.state.StateMachine) with a DeliveryEvent row.
"""

from dataclasses import dataclass

from django.db.models import QuerySet

from common.actors import Actor
from notifications.models import DELIVERY_STATES, Delivery, DeliveryStatus

SYSTEM = Actor.system("notifications")
S = DeliveryStatus


@dataclass(frozen=True)
class AttemptOutcome:
    delivery_id: int
    status: str
    retry_in: int | None = None
    detail: str = ""


def message_rows(
    event: str, event_key: str, audience: str, user_id: int | None
) -> QuerySet[Delivery]:
    """The deliveries of one message, in id order (the lock order)."""
    rows = Delivery.objects.filter(event=event, event_key=event_key, audience=audience)
    rows = rows.filter(user_id=user_id) if user_id is not None else rows.filter(user__isnull=True)
    return rows.order_by("pk")


def message_lock(delivery_id: int) -> tuple[Delivery, list[Delivery]] | None:
    """Lock the delivery and the other rows of its message (in id order: no deadlock)."""
    head = (
        Delivery.objects.filter(pk=delivery_id)
        .values("event", "event_key", "audience", "user_id")
        .first()
    )
    if head is None:
        return None
    group = list(
        message_rows(head["event"], head["event_key"], head["audience"], head["user_id"])
        .select_for_update(of=("self",))
        .select_related("user")
    )
    delivery = next((row for row in group if row.pk == delivery_id), None)
    if delivery is None:  # its customer was deleted meanwhile
        delivery = Delivery.objects.select_for_update().get(pk=delivery_id)
        group = [delivery]
    return delivery, group


def message_lock_existing(delivery_id: int) -> tuple[Delivery, list[Delivery]]:
    """`message_lock` for a delivery that must exist (raises Delivery.DoesNotExist if not)."""
    locked = message_lock(delivery_id)
    if locked is None:
        raise Delivery.DoesNotExist(f"Delivery {delivery_id} does not exist.")
    return locked


def deliveries_queued(deliveries: list[Delivery], *, reason: str, actor: Actor = SYSTEM) -> None:
    """History rows for new deliveries, and their send tasks enqueued after commit."""
    DELIVERY_STATES.record_created_many(deliveries, actor=actor, reason=reason)
    from notifications.tasks import deliver

    for delivery in deliveries:
        deliver.delay_on_commit(delivery.pk)
