"""Staff alerts of health incidents: once per incident, or one summary for a burst."""

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min
from django.urls import reverse

from notifications.models import NotificationEvent
from notifications.services import notification_send
from servers.models import HealthIncident, HealthIncidentKind

logger = logging.getLogger(__name__)

# A run alerting more new incidents than this sends one summary instead (a mass event such as a
# panel database restore must not send hundreds of messages).
ALERT_BURST_LIMIT = 20


def _utc(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


_TITLES = {
    HealthIncidentKind.PANEL_UNREACHABLE: "Panel unreachable: health checks paused",
    HealthIncidentKind.SERVER_MISSING: "Server missing on the panel: {name}",
    HealthIncidentKind.SERVER_OFFLINE: "Server offline: {name}",
    HealthIncidentKind.INSTALL_FAILED: "Server install failed: {name}",
    HealthIncidentKind.PANEL_OPERATIONS_FAILING: "Panel operations paused: the panel keeps failing",
}


def _admin_url(name: str, pk: int | None = None) -> str:
    path = reverse(name, args=[pk]) if pk is not None else reverse(name)
    return settings.PORTAL_BASE_URL.rstrip("/") + path


def _alert_context(incident: HealthIncident) -> dict[str, str]:
    deployment = incident.deployment
    context = {
        "title": _TITLES[incident.kind].format(name=deployment.name if deployment else ""),
        "detail": incident.detail or incident.get_kind_display(),
        "opened_at": _utc(incident.opened_at),
    }
    if deployment is None:
        context["admin_url"] = _admin_url("admin:servers_healthincident_change", incident.pk)
        return context
    return context | {
        "admin_url": _admin_url("admin:servers_serverhealth_change", deployment.pk),
        "deployment_id": str(deployment.pk),
        "server_name": deployment.name,
        "customer_email": deployment.customer.email,
    }


def health_incidents_alert(*, now: dt.datetime, limit: int = ALERT_BURST_LIMIT) -> int:
    """Alert staff of every open incident not alerted yet; returns the messages queued.

    Once per incident: alerted_at is claimed by a conditional UPDATE in the transaction that
    queues the message, and the event_key ("health:<id>") makes a repeat a no-op. More than
    `limit` new incidents at once become one summary alert.
    """
    pending = list(
        HealthIncident.objects.filter(closed_at__isnull=True, alerted_at__isnull=True)
        .select_related("deployment__customer")
        .order_by("opened_at", "pk")[: limit + 1]
    )
    if len(pending) > limit:
        return _alert_burst(now=now)
    sent = 0
    for incident in pending:
        with transaction.atomic():
            claimed = HealthIncident.objects.filter(pk=incident.pk, alerted_at__isnull=True).update(
                alerted_at=now
            )
            if not claimed:
                continue  # another run alerted it meanwhile
            notification_send(
                event=NotificationEvent.FLEET_ALERT_STAFF,
                staff=True,
                context=_alert_context(incident),
                event_key=f"health:{incident.pk}",
            )
            sent += 1
    return sent


def _alert_burst(*, now: dt.datetime) -> int:
    """One summary alert for every open incident not alerted yet (a constant number of
    statements however many there are)."""
    with transaction.atomic():
        pending = HealthIncident.objects.filter(closed_at__isnull=True, alerted_at__isnull=True)
        first = pending.aggregate(first=Min("pk"))["first"]
        if first is None:
            return 0
        kinds = dict(
            pending.order_by().values("kind").annotate(n=Count("pk")).values_list("kind", "n")
        )
        total = pending.update(alerted_at=now)
        listed = ", ".join(
            f"{count} {HealthIncidentKind(kind).label.lower()}"
            for kind, count in sorted(kinds.items())
        )
        notification_send(
            event=NotificationEvent.FLEET_ALERT_STAFF,
            staff=True,
            context={
                "title": f"{total} new fleet health incidents",
                "detail": f"One health run found: {listed}. See the open incidents.",
                "admin_url": _admin_url("admin:servers_healthincident_changelist") + "?open=yes",
                "opened_at": _utc(now),
            },
            event_key=f"health:burst:{first}",
        )
    logger.warning("health: %s new incidents alerted as one summary (%s)", total, listed)
    return 1
