"""Terminated servers kept on the panel: the final backup and the deletion once due.

`deployment_terminate` (provisioning.operations) with TERMINATION_RESTORE_WINDOW_DAYS or
TERMINATION_FINAL_BACKUP moves the deployment to TERMINATED at once (billing stops) and keeps
the panel server suspended with `panel_deletion_due_at`. The fleet job
`terminated_servers_purge` selects the due ones (one indexed query per batch: the partial index
deployment_deletion_due_idx) and requests one TERMINATE panel operation each
(params source "termination_purge"); the drain runs `termination_purge_execute`:

1. Final backup wanted: the panel refuses backups of a suspended server (409 from
   AuthenticateServerAccess, root admins included), so the suspension is lifted on the panel
   (the server is not started), the backup "final-<deployment id>" is requested through the
   Client API (looked up by name first: a lost reply never starts a second one) and its uuid
   recorded; the operation waits (OperationResult.retry_in) and reads it back on later drain
   turns until Wings reports it done, failed, or FINAL_BACKUP_MAX_WAIT passes.
   A refusal (backup limit 0 or reached: 400 TooManyBackupsException; a lasting 409; no client
   key configured; 4xx) is recorded in the history and the deletion goes on. A 429 (two
   backups within ten minutes) or 5xx is retried by the drain, the server suspended again
   meanwhile.
2. The panel server is force-deleted, read back, its ports freed, the panel user removed if
   it owns nothing else; the deployment forgets its panel id (`deployment_panel_server_deleted`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Exists, OuterRef
from django.utils import timezone

from common.actors import Actor
from provisioning.fleet.operations import (
    OperationRequest,
    OperationResult,
    panel_operations_request,
    register_operation_executor,
)
from provisioning.models import (
    OPEN_OPERATION_STATUSES,
    PanelOperation,
    PanelOperationKind,
    PanelOperationStatus,
)
from provisioning.operations import (
    FINAL_BACKUP_WANTED,
    _verification_note,
    panel_server_delete,
)
from provisioning.pterodactyl import (
    Backup,
    PanelError,
    PanelNotFound,
    PanelRateLimited,
    PterodactylClient,
    PterodactylClientAPI,
)
from servers.models import Deployment, DeploymentStatus
from servers.services import deployment_final_backup_record, deployment_panel_server_deleted

logger = logging.getLogger(__name__)

PURGE_SOURCE = "termination_purge"
ACTOR = Actor.system("termination purge")
# Seconds between two reads of a running final backup (the drain's turn comes back then).
FINAL_BACKUP_POLL_SECONDS = 60.0
# The panel fails a backup Wings never reported after backups.prune_age (360 min by default,
# config/backups.php); we stop waiting then too and delete without it.
FINAL_BACKUP_MAX_WAIT = dt.timedelta(hours=6)

PENDING, COMPLETED, FAILED, REFUSED = "pending", "completed", "failed", "refused"


def final_backup_name(deployment_id: int) -> str:
    return f"final-{deployment_id}"


# --------------------------------------------------------------------------- the job


def terminated_servers_purge(*, now: dt.datetime | None = None, dry_run: bool = False) -> dict:
    """Request the panel deletion of every terminated server whose deletion is due (restore
    window over, or at once when only a final backup was wanted), in batches of
    FLEET_BATCH_SIZE; a server with an open operation, or whose purge failed within the hour,
    is left for a later run. A re-run requests nothing new."""
    from django.conf import settings

    now = now or timezone.now()
    open_operation = PanelOperation.objects.filter(
        deployment=OuterRef("pk"), status__in=OPEN_OPERATION_STATUSES
    )
    recently_failed = PanelOperation.objects.filter(
        deployment=OuterRef("pk"),
        kind=PanelOperationKind.TERMINATE,
        status=PanelOperationStatus.FAILED,
        finished_at__gte=now - dt.timedelta(hours=1),
    )
    due = (
        Deployment.objects.filter(
            panel_deletion_due_at__lte=now,
            panel_server_id__isnull=False,
            status=DeploymentStatus.TERMINATED,
        )
        .filter(~Exists(open_operation), ~Exists(recently_failed))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    counts = {"due": 0, "requested": 0}
    after = 0
    while True:
        ids = list(due.filter(pk__gt=after)[: settings.FLEET_BATCH_SIZE])
        if not ids:
            return counts
        after = ids[-1]
        counts["due"] += len(ids)
        if dry_run:
            continue
        counts["requested"] += panel_operations_request(
            requests=[
                OperationRequest(
                    kind=PanelOperationKind.TERMINATE,
                    reason="Terminated; the panel deletion is due",
                    deployment_id=deployment_id,
                    params={"source": PURGE_SOURCE},
                )
                for deployment_id in ids
            ],
            actor=ACTOR,
        )


def terminated_servers_purge_job(*, dry_run: bool) -> dict:
    """The fleet job (`run_job terminated_servers_purge`, and beat)."""
    return terminated_servers_purge(dry_run=dry_run)


# --------------------------------------------------------------------------- the executor


@dataclass(frozen=True)
class _Wait:
    outcome: str


def termination_purge_execute(
    *,
    operation: PanelOperation,
    client: PterodactylClient,
    client_api: PterodactylClientAPI | None = None,
) -> OperationResult:
    """One turn of a purge: checked again first (restored meanwhile: nothing is done)."""
    deployment = Deployment.objects.get(pk=operation.deployment_id)
    due = deployment.panel_deletion_due_at
    if (
        deployment.status != DeploymentStatus.TERMINATED
        or deployment.panel_server_id is None
        or due is None
    ):
        return OperationResult(outcome="nothing to delete (restored or deleted)", skipped=True)
    if due > timezone.now():
        return OperationResult(outcome=f"not due before {due:%Y-%m-%d %H:%M}", skipped=True)
    actor = Actor(label=operation.requested_by)
    if deployment.final_backup_status in (FINAL_BACKUP_WANTED, PENDING):
        wait = _final_backup_turn(deployment, client=client, client_api=client_api, actor=actor)
        if wait is not None:
            return OperationResult(outcome=wait.outcome, retry_in=FINAL_BACKUP_POLL_SECONDS)
        deployment.refresh_from_db()
    verified, user_note = panel_server_delete(client, deployment)
    backup_note = {
        COMPLETED: f"; final backup {deployment.final_backup_uuid} kept in the backup storage",
        FAILED: "; without a final backup (it failed)",
        REFUSED: "; without a final backup (refused)",
    }.get(deployment.final_backup_status, "")
    deployment_panel_server_deleted(
        deployment_id=deployment.pk,
        actor=actor,
        reason=f"Panel server #{deployment.panel_server_id} deleted (terminated "
        f"{deployment.terminated_at:%Y-%m-%d}){backup_note}{user_note}"
        f"{_verification_note(verified, 'deleted')}",
    )
    return OperationResult(outcome="panel server deleted", verified=verified)


def _final_backup_turn(
    deployment: Deployment,
    *,
    client: PterodactylClient,
    client_api: PterodactylClientAPI | None,
    actor: Actor,
) -> _Wait | None:
    """Advance the final backup; a _Wait while it runs, None once the deletion may go on."""
    name = final_backup_name(deployment.pk)
    identifier = deployment.panel_identifier
    if not identifier:
        _refused(deployment, actor, "the deployment has no panel identifier recorded")
        return None
    try:
        client_api = client_api or PterodactylClientAPI.from_settings()
    except ImproperlyConfigured:
        _refused(deployment, actor, "PTERODACTYL_CLIENT_API_KEY is not set")
        return None
    if deployment.final_backup_status == FINAL_BACKUP_WANTED:
        return _final_backup_start(deployment, name, identifier, client, client_api, actor)
    return _final_backup_check(deployment, identifier, client, client_api, actor)


def _final_backup_start(
    deployment: Deployment,
    name: str,
    identifier: str,
    client: PterodactylClient,
    client_api: PterodactylClientAPI,
    actor: Actor,
) -> _Wait | None:
    try:
        # The panel answers 409 on every backup route of a suspended server.
        client.unsuspend_server(deployment.panel_server_id)
        backup = client_api.backup_find(identifier, name) or client_api.backup_create(
            identifier, name, is_locked=True
        )
    except PanelNotFound:
        _refused(deployment, actor, "the panel has no such server any more")
        return None
    except PanelError as exc:
        if exc.retryable:
            _suspend_again(client, deployment)
            raise  # a 429 or 5xx: the drain retries (with Retry-After)
        _refused(deployment, actor, exc.detail or str(exc))
        return None
    if not backup.in_progress:
        _settled(deployment, backup, actor)
        return None
    deployment_final_backup_record(
        deployment_id=deployment.pk,
        status=PENDING,
        uuid=backup.uuid,
        actor=actor,
        reason=f"Final backup {name} requested on the panel (uuid {backup.uuid}); the server "
        "is unsuspended on the panel while it runs (the panel refuses backups of suspended "
        "servers) and deleted once it is done",
    )
    return _Wait(f"waiting for the final backup {backup.uuid}")


def _final_backup_check(
    deployment: Deployment,
    identifier: str,
    client: PterodactylClient,
    client_api: PterodactylClientAPI,
    actor: Actor,
) -> _Wait | None:
    uuid = deployment.final_backup_uuid
    try:
        backup = client_api.backup_get(identifier, uuid)
    except PanelNotFound:
        _record(deployment, FAILED, actor, f"Final backup {uuid} is gone from the panel")
        return None
    except PanelError as exc:
        if exc.retryable and not isinstance(exc, PanelRateLimited):
            raise
        if exc.retryable:
            return _Wait(f"final backup {uuid} not read (rate limited)")
        _record(deployment, FAILED, actor, f"Final backup {uuid} could not be read: {exc}")
        return None
    if not backup.in_progress:
        _settled(deployment, backup, actor)
        return None
    started = backup.created_at or timezone.now()
    if timezone.now() - started > FINAL_BACKUP_MAX_WAIT:
        _record(
            deployment,
            FAILED,
            actor,
            f"Final backup {uuid} did not finish within {FINAL_BACKUP_MAX_WAIT}; deleting "
            "without it",
        )
        return None
    return _Wait(f"waiting for the final backup {uuid}")


def _settled(deployment: Deployment, backup: Backup, actor: Actor) -> None:
    if backup.is_successful:
        _record(
            deployment,
            COMPLETED,
            actor,
            f"Final backup {backup.name} completed on the panel (uuid {backup.uuid}, "
            f"{backup.bytes} bytes, {backup.checksum or 'no checksum'})",
            uuid=backup.uuid,
        )
    else:
        _record(
            deployment,
            FAILED,
            actor,
            f"Final backup {backup.name} failed on the panel (uuid {backup.uuid}); deleting "
            "without it",
            uuid=backup.uuid,
        )


def _refused(deployment: Deployment, actor: Actor, why: str) -> None:
    logger.warning("final backup of deployment %s refused: %s", deployment.pk, why)
    _record(
        deployment,
        REFUSED,
        actor,
        f"Final backup not taken: {why}; the panel server is deleted without it",
    )


def _record(
    deployment: Deployment, status: str, actor: Actor, reason: str, uuid: str | None = None
) -> None:
    deployment_final_backup_record(
        deployment_id=deployment.pk, status=status, uuid=uuid, actor=actor, reason=reason[:1000]
    )


def _suspend_again(client: PterodactylClient, deployment: Deployment) -> None:
    """Best effort between two attempts (the next attempt lifts it again)."""
    try:
        client.suspend_server(deployment.panel_server_id)
    except PanelError as exc:
        logger.warning("could not suspend deployment %s again: %s", deployment.pk, exc)


def register() -> None:
    """Called from ProvisioningConfig.ready: the drain runs purge operations through here."""
    register_operation_executor(PURGE_SOURCE, _executor)


def _executor(*, operation: PanelOperation, client: Any) -> OperationResult:
    return termination_purge_execute(operation=operation, client=client)
