"""Health incidents: make the open per-server incidents match what a run wants (open,
refresh, close), and the panel-wide incidents (one open at a time per kind)."""

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F

from servers.health.batches import batches
from servers.models import PANEL_WIDE_INCIDENT_KINDS, HealthIncident, HealthIncidentKind

# Incidents about one server (the panel-wide ones are handled on their own).
SERVER_INCIDENT_KINDS = tuple(
    kind for kind in HealthIncidentKind.values if kind not in PANEL_WIDE_INCIDENT_KINDS
)
IncidentKey = tuple[str, int]  # (kind, deployment id)


@dataclass(frozen=True)
class IncidentPlan:
    to_open: dict[IncidentKey, str] = field(default_factory=dict)  # key -> detail
    to_refresh: list[int] = field(default_factory=list)  # incident ids
    to_close: list[int] = field(default_factory=list)


def health_incidents_open(
    *, kinds: Collection[str] = SERVER_INCIDENT_KINDS
) -> dict[IncidentKey, int]:
    """The open per-server incidents of these kinds: (kind, deployment id) -> incident id."""
    rows = (
        HealthIncident.objects.filter(
            kind__in=list(kinds), closed_at__isnull=True, deployment__isnull=False
        )
        .order_by()
        .values_list("kind", "deployment_id", "pk")
    )
    return {(kind, deployment_id): pk for kind, deployment_id, pk in rows}


def health_incidents_plan(
    *, wanted: Mapping[IncidentKey, str], open_incidents: Mapping[IncidentKey, int]
) -> IncidentPlan:
    """What to open (wanted, not open), refresh (both) and close (open, no longer wanted)."""
    return IncidentPlan(
        to_open={key: detail for key, detail in wanted.items() if key not in open_incidents},
        to_refresh=[pk for key, pk in open_incidents.items() if key in wanted],
        to_close=[pk for key, pk in open_incidents.items() if key not in wanted],
    )


def health_incidents_apply(*, plan: IncidentPlan, now: dt.datetime) -> tuple[int, int]:
    """Carry out the plan; returns (opened, closed). The partial unique constraint turns an
    open that raced another run into a no-op (ON CONFLICT DO NOTHING)."""
    with transaction.atomic():
        for batch in batches(plan.to_open.items()):
            HealthIncident.objects.bulk_create(
                [
                    HealthIncident(
                        kind=kind,
                        deployment_id=deployment_id,
                        opened_at=now,
                        last_seen_at=now,
                        detail=detail[:2000],
                    )
                    for (kind, deployment_id), detail in batch
                ],
                ignore_conflicts=True,
            )
        for batch in batches(plan.to_refresh):
            HealthIncident.objects.filter(pk__in=batch, closed_at__isnull=True).update(
                last_seen_at=now, checks=F("checks") + 1
            )
        closed = 0
        for batch in batches(plan.to_close):
            closed += HealthIncident.objects.filter(pk__in=batch, closed_at__isnull=True).update(
                closed_at=now, last_seen_at=now
            )
        # ON CONFLICT DO NOTHING returns no ids: this run's inserts carry its timestamp.
        opened = (
            HealthIncident.objects.filter(opened_at=now, deployment__isnull=False).count()
            if plan.to_open
            else 0
        )
    return opened, closed


def health_incident_panel_open(
    *, kind: str, detail: str, now: dt.datetime
) -> tuple[HealthIncident, bool]:
    """Open the panel-wide incident `kind`, or refresh the open one; (incident, opened)."""
    if kind not in PANEL_WIDE_INCIDENT_KINDS:
        raise ValueError(f"{kind} is not a panel-wide incident")
    detail = detail[:2000]
    with transaction.atomic():
        HealthIncident.objects.bulk_create(
            [HealthIncident(kind=kind, opened_at=now, last_seen_at=now, detail=detail)],
            ignore_conflicts=True,
        )
        incident = HealthIncident.objects.select_for_update().get(
            kind=kind, deployment__isnull=True, closed_at__isnull=True
        )
        opened = incident.opened_at == now
        if not opened:
            HealthIncident.objects.filter(pk=incident.pk).update(
                last_seen_at=now, checks=F("checks") + 1, detail=detail
            )
    return incident, opened


def health_incident_panel_is_open(*, kind: str) -> bool:
    return HealthIncident.objects.filter(
        kind=kind, deployment__isnull=True, closed_at__isnull=True
    ).exists()


def health_incident_panel_close(*, kind: str, now: dt.datetime) -> int:
    return HealthIncident.objects.filter(
        kind=kind, deployment__isnull=True, closed_at__isnull=True
    ).update(closed_at=now, last_seen_at=now)
