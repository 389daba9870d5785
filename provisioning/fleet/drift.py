"""Drift items: what billing and the panel disagree on, recorded once and kept fresh.

Services (writes):
- `drift_record`: one observation (the verified lifecycle actions and the repairs call it);
  idempotent, it refreshes the open item of the same kind and target.
- `drifts_record`: the reconcile job's set-based variant (constant statements per batch).
- `drift_resolve` / `drifts_resolve_gone`: close items (repaired, gone on a later full read).
- `drifts_dismiss`: staff close items by hand.
- `drift_alert_repair_unverified`: a repair ran and the panel still disagrees.
Turning open items into repairs is provisioning.fleet.drift_repairs; running those repairs,
provisioning.fleet.repairs.

Staff are alerted once per kind per hour at most (`fleet_alert_staff`, keyed by kind and hour),
never once per item or per run: a thousand servers drifting at once is one message whose link
lists them all in the admin.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from common.actors import Actor
from notifications.services import notification_send
from provisioning.models import DriftItem, DriftKind
from servers.models import DeploymentStatus

logger = logging.getLogger(__name__)

K = DriftKind
T = TypeVar("T")

# Our idempotency keys on the panel (servers.Deployment.external_id, saga PanelUserStep).
SERVER_EXTERNAL_PREFIX = "deployment-"
USER_EXTERNAL_PREFIX = "portal-user-"
LIVE_STATUSES = (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED)

# Kinds judged per live deployment (a deployment skipped by a run keeps its items as they are).
DEPLOYMENT_KINDS = (
    K.SUSPENDED_HERE_RUNNING_THERE,
    K.SUSPENDED_THERE_ACTIVE_HERE,
    K.MISSING_ON_PANEL,
    K.LIMITS_MISMATCH,
)
SUSPENSION_KINDS = (K.SUSPENDED_HERE_RUNNING_THERE, K.SUSPENDED_THERE_ACTIVE_HERE)
ORPHAN_KINDS = (K.ORPHAN_SERVER, K.ORPHAN_USER)

# The repair of each item, by the names RECONCILE_REPAIRS uses; orphans carry theirs in
# details["repair"] ("adopt", "delete" or "review" = staff only).
REPAIR_SUSPENSION, REPAIR_BUILD = "suspension", "build"
REPAIR_ADOPT, REPAIR_DELETE = "adopt_orphans", "delete_orphans"
REPAIR_NAMES = (REPAIR_SUSPENSION, REPAIR_BUILD, REPAIR_ADOPT, REPAIR_DELETE)
_ORPHAN_REPAIRS = {"adopt": REPAIR_ADOPT, "delete": REPAIR_DELETE}
# How long one alert covers its kind: at most one message per kind in this window.
ALERT_WINDOW_FORMAT = "%Y-%m-%dT%H"
ALERT_EXAMPLES = 5


def repair_for(*, kind: str, details: dict[str, Any]) -> str:
    """The RECONCILE_REPAIRS name that repairs an item, or "" (staff decide by hand)."""
    if kind in SUSPENSION_KINDS:
        return REPAIR_SUSPENSION
    if kind == K.LIMITS_MISMATCH:
        return REPAIR_BUILD
    if kind in ORPHAN_KINDS:
        return _ORPHAN_REPAIRS.get(str(details.get("repair", "")), "")
    return ""  # missing_on_panel, port_conflict: no safe automatic repair


@dataclass(frozen=True)
class DriftFinding:
    """One difference seen by a read: what an open item will say."""

    kind: str
    details: dict[str, Any]
    deployment_id: int | None = None
    panel_server_id: int | None = None
    panel_user_id: int | None = None

    @property
    def key(self) -> tuple[str, str, int | None]:
        return _key(self.kind, self.deployment_id, self.panel_server_id, self.panel_user_id)

    @property
    def repair(self) -> str:
        return repair_for(kind=self.kind, details=self.details)

    def describe(self) -> str:
        """One line for the dry-run listing and the alert (ids and values, no secrets)."""
        target = (
            f"deployment #{self.deployment_id}"
            if self.deployment_id
            else f"panel server #{self.panel_server_id}"
            if self.panel_server_id
            else f"panel user #{self.panel_user_id}"
        )
        if self.deployment_id and self.panel_server_id:
            target += f" (panel server #{self.panel_server_id})"
        shown = ", ".join(
            f"{name}={value}" for name, value in self.details.items() if name != "repair"
        )
        repair = self.repair or "by hand"
        return f"{self.kind}: {target}: {shown} [repair: {repair}]"


@dataclass
class RecordResult:
    new: Counter[str] = field(default_factory=Counter)
    refreshed: int = 0
    # One line per new item, per kind (the first few, for the alert).
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def _key(
    kind: str, deployment_id: int | None, panel_server_id: int | None, panel_user_id: int | None
) -> tuple[str, str, int | None]:
    # The same targets the partial unique constraints use.
    if deployment_id is not None:
        return (str(kind), "deployment", deployment_id)
    if panel_server_id is not None:
        return (str(kind), "server", panel_server_id)
    return (str(kind), "user", panel_user_id)


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def open_items_q() -> Q:
    return Q(resolved_at__isnull=True)


def _target_q(kind: str, deployment_id: Any, panel_server_id: Any, panel_user_id: Any) -> Q:
    if deployment_id is not None:
        return Q(kind=kind, deployment_id=deployment_id)
    if panel_server_id is not None:
        return Q(kind=kind, deployment__isnull=True, panel_server_id=panel_server_id)
    return Q(kind=kind, deployment__isnull=True, panel_user_id=panel_user_id)


def fleet_batch_size() -> int:
    return max(1, int(settings.FLEET_BATCH_SIZE))


# --- one observation -----------------------------------------------------------------------


def drift_record(
    *,
    kind: str,
    deployment_id: int | None = None,
    panel_server_id: int | None = None,
    panel_user_id: int | None = None,
    details: dict,
    source: str,
) -> DriftItem:
    """Record that billing and the panel disagree; returns the open item (new or refreshed).

    Idempotent: a second call for the same kind and target refreshes `details` and
    `last_seen_at` of the open item. Staff are alerted for a new item, at most once per kind
    per hour.
    """
    if kind not in K.values:
        raise ValueError(f"unknown drift kind {kind!r}")
    if deployment_id is None and panel_server_id is None and panel_user_id is None:
        raise ValueError("a drift item needs a deployment, a panel server or a panel user")
    now = timezone.now()
    target = _target_q(kind, deployment_id, panel_server_id, panel_user_id)
    for _attempt in range(2):
        try:
            with transaction.atomic():
                item = DriftItem.objects.select_for_update().filter(open_items_q(), target).first()
                if item is not None:
                    item.details, item.last_seen_at, item.source = details, now, source[:60]
                    if panel_server_id is not None:
                        item.panel_server_id = panel_server_id
                    if panel_user_id is not None:
                        item.panel_user_id = panel_user_id
                    item.save(
                        update_fields=[
                            "details",
                            "last_seen_at",
                            "source",
                            "panel_server_id",
                            "panel_user_id",
                        ]
                    )
                    return item
                item = DriftItem.objects.create(
                    kind=kind,
                    deployment_id=deployment_id,
                    panel_server_id=panel_server_id,
                    panel_user_id=panel_user_id,
                    details=details,
                    source=source[:60],
                    detected_at=now,
                    last_seen_at=now,
                )
                finding = DriftFinding(kind, details, deployment_id, panel_server_id, panel_user_id)
                _alert(kind=kind, new=1, examples=[finding.describe()], at=now)
                logger.warning("drift recorded: %s (source %s)", finding.describe(), source)
                return item
        except IntegrityError:
            continue  # created concurrently: the next pass refreshes that one
    raise RuntimeError("drift item could not be recorded")  # pragma: no cover


def drift_resolve(
    *,
    resolution: str,
    resolved_by: str,
    item_id: int | None = None,
    kinds: Sequence[str] = (),
    deployment_id: int | None = None,
    panel_server_id: int | None = None,
    panel_user_id: int | None = None,
) -> int:
    """Close the open item `item_id`, or the open items of `kinds` on one target; returns how
    many were closed (0 when none was open: closing twice is harmless)."""
    if not resolution:
        raise ValueError("a resolution is required")
    if item_id is not None:
        scope = Q(pk=item_id)
    elif kinds:
        scope = Q()
        for kind in kinds:
            scope |= _target_q(kind, deployment_id, panel_server_id, panel_user_id)
    else:
        raise ValueError("give item_id or kinds with a target")
    return DriftItem.objects.filter(open_items_q(), scope).update(
        resolved_at=timezone.now(), resolution=resolution[:2000], resolved_by=resolved_by[:200]
    )


def drifts_dismiss(*, item_ids: Iterable[int], actor: Actor) -> int:
    """Staff close open items without a repair ("dismissed by staff:alice"); one statement."""
    return DriftItem.objects.filter(open_items_q(), pk__in=list(item_ids)).update(
        resolved_at=timezone.now(),
        resolution=f"dismissed by {actor.label}"[:2000],
        resolved_by=actor.label[:200],
    )


# --- the reconcile job's set-based writes ---------------------------------------------------


def drifts_record(
    *, findings: Sequence[DriftFinding], source: str, seen_at: datetime, alert: bool = True
) -> RecordResult:
    """Create or refresh the open items for `findings`, FLEET_BATCH_SIZE at a time, with a
    constant number of statements per batch (one SELECT, one bulk UPDATE, one INSERT .. ON
    CONFLICT DO NOTHING); then at most one alert per kind with new items."""
    result = RecordResult()
    for chunk in chunked(findings, fleet_batch_size()):
        with transaction.atomic():
            _record_chunk(chunk, source=source, seen_at=seen_at, result=result)
    if alert:
        for kind, count in result.new.items():
            _alert(kind=kind, new=count, examples=result.examples[kind], at=seen_at)
    return result


def _record_chunk(
    chunk: list[DriftFinding], *, source: str, seen_at: datetime, result: RecordResult
) -> None:
    scope = Q(pk__in=[])
    deployment_ids = [f.deployment_id for f in chunk if f.deployment_id is not None]
    server_ids = [f.panel_server_id for f in chunk if f.deployment_id is None and f.panel_server_id]
    user_ids = [
        f.panel_user_id
        for f in chunk
        if f.deployment_id is None and f.panel_server_id is None and f.panel_user_id
    ]
    if deployment_ids:
        scope |= Q(deployment_id__in=deployment_ids)
    if server_ids:
        scope |= Q(deployment__isnull=True, panel_server_id__in=server_ids)
    if user_ids:
        scope |= Q(deployment__isnull=True, panel_user_id__in=user_ids)
    existing = {
        _key(i.kind, i.deployment_id, i.panel_server_id, i.panel_user_id): i
        for i in DriftItem.objects.filter(open_items_q(), scope, kind__in={f.kind for f in chunk})
    }
    changed, created = [], []
    for finding in chunk:
        item = existing.get(finding.key)
        if item is not None:
            item.details, item.last_seen_at, item.source = finding.details, seen_at, source
            item.panel_server_id = finding.panel_server_id or item.panel_server_id
            item.panel_user_id = finding.panel_user_id or item.panel_user_id
            changed.append(item)
            continue
        created.append(
            DriftItem(
                kind=finding.kind,
                deployment_id=finding.deployment_id,
                panel_server_id=finding.panel_server_id,
                panel_user_id=finding.panel_user_id,
                details=finding.details,
                source=source,
                detected_at=seen_at,
                last_seen_at=seen_at,
            )
        )
        result.new[finding.kind] += 1
        if len(result.examples[finding.kind]) < ALERT_EXAMPLES:
            result.examples[finding.kind].append(finding.describe())
    if changed:
        DriftItem.objects.bulk_update(
            changed, ["details", "last_seen_at", "source", "panel_server_id", "panel_user_id"]
        )
        result.refreshed += len(changed)
    if created:
        # A concurrent drift_record of the same target wins; ours is dropped (not an error).
        DriftItem.objects.bulk_create(created, ignore_conflicts=True)


def drifts_resolve_gone(
    *,
    checked_deployment_ids: Sequence[int],
    skipped_deployment_ids: Sequence[int],
    read_started: datetime,
    resolved_by: str,
) -> int:
    """After a complete read: close the open items that read did not see again ("gone").

    An item last seen before the read started and not refreshed by it is gone, except for the
    deployments the run skipped (work in flight, changed during the read): those are judged by
    a later run. Per-deployment kinds are closed FLEET_BATCH_SIZE deployments at a time; the
    other kinds in one statement each.
    """
    now = timezone.now()
    stale = Q(open_items_q(), last_seen_at__lt=read_started)
    update = {"resolved_at": now, "resolved_by": resolved_by[:200]}
    closed = 0
    for chunk in chunked(checked_deployment_ids, fleet_batch_size()):
        closed += DriftItem.objects.filter(
            stale, kind__in=DEPLOYMENT_KINDS, deployment_id__in=chunk
        ).update(**update, resolution="gone: not seen on a later full read of the panel")
    # Items of servers that are no longer live here (terminated meanwhile): moot.
    closed += (
        DriftItem.objects.filter(stale, kind__in=DEPLOYMENT_KINDS)
        .exclude(deployment__status__in=LIVE_STATUSES)
        .update(**update, resolution="gone: the server is no longer live here")
    )
    closed += (
        DriftItem.objects.filter(stale, kind__in=(*ORPHAN_KINDS, K.PORT_CONFLICT))
        .exclude(deployment_id__in=list(skipped_deployment_ids))
        .update(**update, resolution="gone: not seen on a later full read of the panel")
    )
    return closed


# --- alerts --------------------------------------------------------------------------------


def drift_admin_url(*, kind: str | None = None) -> str:
    url = settings.PORTAL_BASE_URL.rstrip("/") + reverse("admin:provisioning_driftitem_changelist")
    query = "?state=open" + (f"&kind__exact={kind}" if kind else "")
    return url + query


def drift_alert_repair_unverified(*, kind: str, detail: str) -> None:
    """A repair ran but the panel still disagrees: staff look at it (the job does not repeat
    that repair by itself). At most one message per kind per hour."""
    at = timezone.now()
    notification_send(
        event="fleet_alert_staff",
        staff=True,
        context={
            "title": f"Drift repair did not hold: {K(kind).label}",
            "detail": f"{detail[:1200]} The item stays open; repair it again from the admin "
            "once the cause is fixed, or dismiss it.",
            "admin_url": drift_admin_url(kind=kind),
            "opened_at": at.strftime("%Y-%m-%d %H:%M UTC"),
        },
        event_key=f"drift-unverified:{kind}:{at.astimezone(UTC).strftime(ALERT_WINDOW_FORMAT)}",
    )


def _alert(*, kind: str, new: int, examples: list[str], at: datetime) -> None:
    """One staff message per kind per hour at most (the event key names kind and hour)."""
    label = K(kind).label
    lines = list(examples[:ALERT_EXAMPLES])
    if new > len(lines):
        lines.append(f"... and {new - len(lines)} more")
    notification_send(
        event="fleet_alert_staff",
        staff=True,
        context={
            "title": f"Drift: {label} ({new} new)",
            "detail": "\n".join(lines)[:1500],
            "admin_url": drift_admin_url(kind=kind),
            "opened_at": at.strftime("%Y-%m-%d %H:%M UTC"),
        },
        event_key=f"drift:{kind}:{at.astimezone(UTC).strftime(ALERT_WINDOW_FORMAT)}",
    )
