"""Send-time secrets of deliveries (DeliverySecret): stored encrypted when a message is queued,
read when it is rendered, deleted as soon as nothing can need them any more, purged when
expired."""

import json
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from notifications.models import Channel, CredentialReveal, Delivery, DeliverySecret
from notifications.services.delivery_rows import S


def delivery_secrets_store(deliveries: list[Delivery], values: dict[str, str]) -> None:
    """Encrypted send-time secrets for new deliveries."""
    expires_at = timezone.now() + timedelta(hours=settings.NOTIFICATIONS_SECRET_RETENTION_HOURS)
    DeliverySecret.objects.bulk_create(
        DeliverySecret(delivery=delivery, values=json.dumps(values), expires_at=expires_at)
        for delivery in deliveries
    )


def delivery_secrets_load(delivery: Delivery) -> dict[str, str] | None:
    row = DeliverySecret.objects.filter(delivery=delivery, expires_at__gt=timezone.now()).first()
    return json.loads(row.values) if row is not None else None


def _finished(delivery: Delivery) -> bool:
    """Nothing more can happen that needs the secret (WhatsApp may still report "failed")."""
    if delivery.status == S.FAILED:
        return True
    if delivery.channel == Channel.EMAIL:
        return delivery.status == S.SENT
    return delivery.status in (S.DELIVERED, S.READ)


def delivery_secrets_discard_if_finished(delivery: Delivery) -> None:
    if _finished(delivery):
        DeliverySecret.objects.filter(delivery=delivery).delete()


def notification_secrets_purge() -> tuple[int, int]:
    """Delete expired send-time secrets and wipe expired reveal links: (secrets, links)."""
    now = timezone.now()
    secrets_deleted, _ = DeliverySecret.objects.filter(expires_at__lte=now).delete()
    links_wiped = CredentialReveal.objects.filter(
        expires_at__lte=now, secrets__isnull=False
    ).update(secrets=None)
    return secrets_deleted, links_wiped
