"""The `reconcile` job: billing <-> panel drift, detected in sets and repaired as rows.

1. Read the whole fleet from the panel with list calls (servers with their allocations, and
   the users carrying our external-id prefix), per_page=100: ceil(N/100) calls, reduced while
   reading to a few ints per server (provisioning.fleet.panel_read). A failed read raises
   before anything is compared, so a panel outage flips no state; staff get one message per
   outage, not one per run or server.
2. Compare with our rows in memory by id, FLEET_BATCH_SIZE deployments (and claims, and orphan
   candidates) per query (`drift_findings` in provisioning.fleet.drift_scan, a selector: it
   writes nothing).
3. Unless dry run: record the findings (set-based), close the items the read no longer sees,
   and request the repairs the operator enabled (RECONCILE_REPAIRS) as panel operations for
   the drain (`provisioning.fleet.repairs.repair_execute` runs them).

Deployments with lifecycle work in flight (an open suspend/unsuspend/terminate) or changed
while the panel was being read are skipped this run: their state is moving, the next run
judges them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from common.actors import Actor
from common.logging import redact
from common.models import JobRun, JobRunStatus
from notifications.services import notification_send
from provisioning.fleet.budget import fleet_panel_client
from provisioning.fleet.drift import (
    REPAIR_NAMES,
    drift_admin_url,
    drifts_record,
    drifts_resolve_gone,
)
from provisioning.fleet.drift_repairs import (
    drift_items_for_automatic_repair,
    drift_repairs_request,
)
from provisioning.fleet.drift_scan import LISTING_LIMIT, DriftScan, drift_findings
from provisioning.models import DriftItem, DriftKind
from provisioning.pterodactyl import PanelError

logger = logging.getLogger(__name__)

K = DriftKind
ACTOR = Actor.system("reconcile")
# The scan stays importable from the job's module, where it used to live.
__all__ = ["DriftScan", "drift_findings", "enabled_repairs", "reconcile_job"]


def enabled_repairs() -> list[str]:
    """RECONCILE_REPAIRS, checked: an unknown name is a configuration error, not ignored."""
    names = [str(name).strip() for name in settings.RECONCILE_REPAIRS if str(name).strip()]
    unknown = sorted(set(names) - set(REPAIR_NAMES))
    if unknown:
        raise ImproperlyConfigured(
            f"RECONCILE_REPAIRS: unknown {', '.join(unknown)}; use {', '.join(REPAIR_NAMES)}."
        )
    return names


def _items_to_repair(*, seen_at: datetime, allowed: list[str], batch: int) -> Iterator[DriftItem]:
    queryset = drift_items_for_automatic_repair(seen_at=seen_at, allowed=allowed)
    last = 0
    while True:
        items = list(queryset.filter(pk__gt=last)[:batch])
        if not items:
            return
        last = items[-1].pk
        yield from items


def reconcile_job(*, dry_run: bool) -> dict[str, int | str]:
    """Detect drift between billing and the panel; unless `dry_run`, record it and request the
    enabled repairs. Returns counts per kind (and, in a dry run, the listing under "list")."""
    allowed = enabled_repairs()
    try:
        scan = drift_findings(client=fleet_panel_client())
    except PanelError as exc:
        logger.warning("reconcile: the panel could not be read: %s", redact(str(exc)))
        if not dry_run:
            _alert_read_failed(exc)
        raise
    by_kind = scan.counts()
    counts: dict[str, int | str] = {
        "servers_read": scan.servers_read,
        "users_read": scan.users_read,
        "deployments_checked": len(scan.checked_deployment_ids),
        "deployments_skipped": len(scan.skipped_deployment_ids),
        **{kind: by_kind.get(kind, 0) for kind in K.values},
    }
    if dry_run:
        for finding in scan.findings[:LISTING_LIMIT]:
            logger.info("drift (dry run): %s", finding.describe())
        counts["list"] = scan.listing()
        return counts
    recorded = drifts_record(findings=scan.findings, source="reconcile", seen_at=scan.compared_at)
    gone = drifts_resolve_gone(
        checked_deployment_ids=scan.checked_deployment_ids,
        skipped_deployment_ids=scan.skipped_deployment_ids,
        read_started=scan.read_started,
        resolved_by=ACTOR.label,
    )
    batch = max(1, int(settings.FLEET_BATCH_SIZE))
    repairs = drift_repairs_request(
        items=_items_to_repair(seen_at=scan.compared_at, allowed=allowed, batch=batch),
        actor=ACTOR,
        allowed=allowed,
    )
    counts.update(
        {
            "new": sum(recorded.new.values()),
            "refreshed": recorded.refreshed,
            "resolved_gone": gone,
            "operations_requested": repairs.requested,
            "adopted": repairs.adopted,
        }
    )
    return counts


def _alert_read_failed(exc: PanelError) -> None:
    """One message per outage: the key names the last successful run, so every failed run
    until the panel answers again shares it."""
    last_ok = (
        JobRun.objects.filter(name="reconcile", status=JobRunStatus.SUCCEEDED)
        .order_by("-started_at", "-id")
        .values_list("pk", flat=True)
        .first()
    )
    notification_send(
        event="fleet_alert_staff",
        staff=True,
        context={
            "title": "Reconcile: the panel could not be read",
            "detail": f"{redact(str(exc))[:500]}. Nothing was compared or changed; the next "
            "run tries again.",
            "admin_url": drift_admin_url(),
            "opened_at": timezone.now().strftime("%Y-%m-%d %H:%M UTC"),
        },
        event_key=f"reconcile:panel-read-failed:after-run-{last_ok or 0}",
    )
