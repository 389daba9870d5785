"""Operations on live servers: suspend, unsuspend, terminate (and restore within the restore
window), change plan, reinstall, reset the panel password. Each calls the panel with no
transaction open, then records the outcome (status change or audit row) with the acting user."""

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from common.actors import Actor
from common.errors import ApplicationError, ConflictError, NotFoundError
from notifications.services import credentials_resend_allowed
from provisioning import listeners, notify
from provisioning.credentials import panel_password
from provisioning.errors import ProvisioningErrorCode as Code
from provisioning.models import AllocationClaim, DriftKind, PanelAccount
from provisioning.pterodactyl import (
    PanelBadRequest,
    PanelError,
    PanelNotFound,
    PterodactylClient,
    ServerStatus,
)
from provisioning.saga.panel_user_step import panel_user_in_use
from servers.models import Deployment, DeploymentStatus
from servers.services import deployment_record, deployment_transition, deployment_update_spec

logger = logging.getLogger(__name__)

# Deployment.final_backup_status values (the purge job moves them along).
FINAL_BACKUP_WANTED = "wanted"


class PanelOperationFailed(ApplicationError):
    default_code = Code.PANEL_OPERATION_FAILED
    http_status = 502


class PanelServerMissing(PanelOperationFailed):
    """The server is gone from the panel (deleted by hand?): retrying will not help."""

    default_code = Code.PANEL_SERVER_MISSING


def _live(deployment_id: int, allowed: tuple[str, ...]) -> Deployment:
    deployment = Deployment.objects.get(pk=deployment_id)
    if deployment.status not in allowed:
        raise ConflictError(
            f"{deployment} is {deployment.get_status_display().lower()}; this needs "
            f"{' or '.join(allowed)}.",
            code=Code.INVALID_STATE,
        )
    if deployment.panel_server_id is None:
        raise ConflictError(f"{deployment} has no panel server.", code=Code.NO_PANEL_SERVER)
    return deployment


def _panel(call: Any, what: str) -> Any:
    try:
        return call()
    except PanelNotFound as exc:
        raise PanelServerMissing(f"The panel has no such server (could not {what}).") from exc
    except PanelError as exc:
        raise PanelOperationFailed(f"The panel refused to {what}: {exc}") from exc


def _read_back(client: PterodactylClient, deployment: Deployment, *, expect: str) -> bool | None:
    """After an action, ask the panel what it shows now: True as intended, False not (a drift
    item is raised for the reconcile job and staff), None when it could not be read."""
    try:
        server = client.get_server(deployment.panel_server_id)
    except PanelNotFound:
        shown, verified = "no such server", expect == "deleted"
    except PanelError as exc:
        logger.warning("could not read back deployment %s: %s", deployment.pk, exc)
        return None
    else:
        shown = f"status {server.status or 'normal'}"
        verified = {
            "suspended": server.status == ServerStatus.SUSPENDED,
            "unsuspended": server.status != ServerStatus.SUSPENDED,
            "deleted": False,
        }[expect]
    if not verified:
        from provisioning.fleet.drift import drift_record

        drift_kind = {
            "suspended": DriftKind.SUSPENDED_HERE_RUNNING_THERE,
            "unsuspended": DriftKind.SUSPENDED_THERE_ACTIVE_HERE,
            "deleted": DriftKind.ORPHAN_SERVER,
        }[expect]
        drift_record(
            kind=drift_kind,
            deployment_id=deployment.pk,
            panel_server_id=deployment.panel_server_id,
            details={"expected": expect, "panel_shows": shown},
            source=f"verify:{expect}",
        )
    return verified


def _verification_note(verified: bool | None, expect: str) -> str:
    if verified is None:
        return "; not read back (the panel did not answer)"
    return f"; verified {expect} on the panel" if verified else "; drift: the panel disagrees"


def deployment_suspend(
    *,
    deployment_id: int,
    actor: Actor,
    reason: str,
    cause: str = "staff",
    client: PterodactylClient | None = None,
) -> Deployment:
    deployment = _live(deployment_id, (DeploymentStatus.ACTIVE,))
    client = client or PterodactylClient.from_settings()
    _panel(lambda: client.suspend_server(deployment.panel_server_id), "suspend the server")
    verified = _read_back(client, deployment, expect="suspended")
    with transaction.atomic():
        deployment = deployment_transition(
            deployment_id=deployment_id,
            to_status=DeploymentStatus.SUSPENDED,
            actor=actor,
            reason=reason + _verification_note(verified, "suspended"),
            updates={"suspension_cause": cause},
        )
        notify.notify_server_event(
            deployment,
            event="server_suspended",
            reason=reason,
            occurrence=deployment.suspended_at.isoformat(),
        )
    deployment.panel_verified = verified  # for the caller (the drain records it)
    return deployment


def deployment_unsuspend(
    *, deployment_id: int, actor: Actor, reason: str, client: PterodactylClient | None = None
) -> Deployment:
    deployment = _live(deployment_id, (DeploymentStatus.SUSPENDED,))
    client = client or PterodactylClient.from_settings()
    _panel(lambda: client.unsuspend_server(deployment.panel_server_id), "unsuspend the server")
    verified = _read_back(client, deployment, expect="unsuspended")
    occurrence = deployment.suspended_at.isoformat() if deployment.suspended_at else "-"
    with transaction.atomic():
        deployment = deployment_transition(
            deployment_id=deployment_id,
            to_status=DeploymentStatus.ACTIVE,
            actor=actor,
            reason=reason + _verification_note(verified, "unsuspended"),
            updates={"suspended_at": None, "suspension_cause": ""},
        )
        notify.notify_server_event(
            deployment, event="server_unsuspended", reason=reason, occurrence=occurrence
        )
    deployment.panel_verified = verified
    return deployment


def deployment_terminate(
    *, deployment_id: int, actor: Actor, reason: str, client: PterodactylClient | None = None
) -> Deployment:
    """Terminate a live server: billing-wise at once (TERMINATED: renewals and dunning stop,
    the listeners run), on the panel either at once or later.

    Without TERMINATION_RESTORE_WINDOW_DAYS and TERMINATION_FINAL_BACKUP: force-delete the
    server, free its ports, remove the panel user if we created it and it owns nothing else.
    Idempotent on the panel side (a missing server counts as deleted).

    With either: the server is suspended on the panel (if not already) and kept;
    `panel_deletion_due_at` = now + the window, and the purge job
    (provisioning.termination) takes the final backup, if wanted, and deletes it once due.
    Staff may restore it until then (`deployment_restore`).
    """
    deployment = _live(deployment_id, (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED))
    client = client or PterodactylClient.from_settings()
    window_days = max(0, int(settings.TERMINATION_RESTORE_WINDOW_DAYS))
    final_backup = bool(settings.TERMINATION_FINAL_BACKUP)
    if window_days or final_backup:
        return _terminate_keeping(
            deployment,
            actor=actor,
            reason=reason,
            client=client,
            window_days=window_days,
            final_backup=final_backup,
        )
    verified, user_note = panel_server_delete(client, deployment)
    with transaction.atomic():
        deployment = deployment_transition(
            deployment_id=deployment_id,
            to_status=DeploymentStatus.TERMINATED,
            actor=actor,
            reason=f"{reason}{user_note}{_verification_note(verified, 'deleted')}",
        )
        listeners.notify_terminated(deployment_id=deployment_id, actor=actor)
        notify.notify_server_event(
            deployment, event="server_terminated", reason=reason, occurrence="final"
        )
    deployment.panel_verified = verified
    return deployment


def _terminate_keeping(
    deployment: Deployment,
    *,
    actor: Actor,
    reason: str,
    client: PterodactylClient,
    window_days: int,
    final_backup: bool,
) -> Deployment:
    """Terminated here, kept suspended on the panel until the purge job deletes it."""
    # Idempotent on the panel (204 when already suspended): also covers a drifted one.
    _panel(lambda: client.suspend_server(deployment.panel_server_id), "suspend the server")
    verified = _read_back(client, deployment, expect="suspended")
    due = timezone.now() + dt.timedelta(days=window_days)
    if window_days:
        kept = (
            f"; kept suspended on the panel, restorable by staff until {due:%Y-%m-%d %H:%M} "
            f"UTC ({window_days}-day restore window)"
        )
    else:
        kept = "; kept suspended on the panel until its final backup is taken, then deleted"
    if final_backup:
        kept += "; a final backup is taken before the deletion"
    with transaction.atomic():
        deployment = deployment_transition(
            deployment_id=deployment.pk,
            to_status=DeploymentStatus.TERMINATED,
            actor=actor,
            reason=f"{reason}{kept}{_verification_note(verified, 'suspended')}",
            updates={
                "panel_deletion_due_at": due,
                "final_backup_status": FINAL_BACKUP_WANTED if final_backup else "",
                "final_backup_uuid": "",
            },
        )
        listeners.notify_terminated(deployment_id=deployment.pk, actor=actor)
        notify.notify_server_event(
            deployment, event="server_terminated", reason=reason, occurrence="final"
        )
    deployment.panel_verified = verified
    return deployment


def panel_server_delete(
    client: PterodactylClient, deployment: Deployment
) -> tuple[bool | None, str]:
    """Force-delete the deployment's panel server (a missing one counts as deleted), read it
    back, free its ports and remove the panel user if we created it and it owns nothing else.
    Returns (verified, a note on the panel user)."""
    _panel(
        lambda: client.delete_server(deployment.panel_server_id, force=True, missing_ok=True),
        "delete the server",
    )
    verified = _read_back(client, deployment, expect="deleted")
    AllocationClaim.objects.filter(deployment=deployment).delete()
    account = PanelAccount.objects.filter(user_id=deployment.customer_id).first()
    user_note = ""
    if account and panel_user_in_use(deployment):
        user_note = "; panel user kept (the customer has other servers)"
    elif account and account.created_by_portal and account.panel_user_id:
        try:
            client.delete_user(account.panel_user_id, missing_ok=True)
            PanelAccount.objects.filter(pk=account.pk).update(panel_user_id=None)
            user_note = "; panel user removed"
        except PanelBadRequest:
            user_note = "; panel user kept (owns other servers)"
        except PanelError as exc:
            user_note = f"; panel user not removed ({exc})"
    return verified, user_note


def deployment_restore(
    *,
    deployment_id: int,
    actor: Actor,
    reason: str = "Restored by staff",
    client: PterodactylClient | None = None,
) -> Deployment:
    """Bring a terminated server back within its restore window: unsuspend it on the panel,
    read it back (refused unless the panel confirms), then TERMINATED -> ACTIVE with a history
    row naming who and why. The paid-through date (next_due_date) is left as it was: the
    renewal job issues the next invoice as for any active server."""
    from provisioning.models import OPEN_OPERATION_STATUSES, PanelOperation

    deployment = Deployment.objects.get(pk=deployment_id)
    if deployment.status != DeploymentStatus.TERMINATED:
        raise ConflictError(
            f"{deployment} is {deployment.get_status_display().lower()}; only a terminated "
            "server can be restored.",
            code=Code.INVALID_STATE,
        )
    now = timezone.now()
    due = deployment.panel_deletion_due_at
    if deployment.panel_server_id is None or due is None:
        raise ConflictError(
            f"{deployment} was deleted on the panel; there is nothing to restore.",
            code=Code.RESTORE_WINDOW_CLOSED,
        )
    if due <= now:
        raise ConflictError(
            f"The restore window of {deployment} ended at {due:%Y-%m-%d %H:%M} UTC; its "
            "panel server is being deleted.",
            code=Code.RESTORE_WINDOW_CLOSED,
        )
    if PanelOperation.objects.filter(
        deployment_id=deployment_id, status__in=OPEN_OPERATION_STATUSES
    ).exists():
        raise ConflictError(
            f"A panel operation on {deployment} is still open; try again once it is done.",
            code=Code.INVALID_STATE,
        )
    client = client or PterodactylClient.from_settings()
    _panel(lambda: client.get_server(deployment.panel_server_id), "read the server")
    _panel(lambda: client.unsuspend_server(deployment.panel_server_id), "unsuspend the server")
    verified = _read_back(client, deployment, expect="unsuspended")
    if verified is not True:
        raise PanelOperationFailed(
            f"The panel did not confirm that {deployment} is unsuspended"
            f"{_verification_note(verified, 'unsuspended')}; it stays terminated."
        )
    due_note = (
        f"next due date {deployment.next_due_date:%Y-%m-%d} unchanged"
        if deployment.next_due_date
        else "no next due date"
    )
    with transaction.atomic():
        # Checked again under the row lock: the purge may have started (an open operation) or
        # finished (no panel server) while the panel calls ran; the window may have closed.
        locked = Deployment.objects.select_for_update().get(pk=deployment_id)
        if (
            locked.status != DeploymentStatus.TERMINATED
            or locked.panel_server_id is None
            or locked.panel_deletion_due_at is None
            or locked.panel_deletion_due_at <= timezone.now()
            or PanelOperation.objects.filter(
                deployment_id=deployment_id, status__in=OPEN_OPERATION_STATUSES
            ).exists()
        ):
            raise ConflictError(
                f"The restore window of {deployment} closed while it was being restored (its "
                "deletion started); it stays terminated.",
                code=Code.RESTORE_WINDOW_CLOSED,
            )
        deployment = deployment_transition(
            deployment_id=deployment_id,
            to_status=DeploymentStatus.ACTIVE,
            actor=actor,
            reason=f"Restored within the restore window by {actor.label}: {reason}; "
            f"verified unsuspended on the panel; {due_note}",
            updates={
                "panel_deletion_due_at": None,
                "terminated_at": None,
                "suspended_at": None,
                "suspension_cause": "",
            },
        )
        listeners.notify_restored(deployment_id=deployment_id, actor=actor)
        notify.notify_server_event(
            deployment,
            event="server_unsuspended",
            reason=reason,
            occurrence=f"restored-{now.isoformat()}",
        )
    deployment.panel_verified = verified
    return deployment


def deployment_reinstall(
    *, deployment_id: int, actor: Actor, client: PterodactylClient | None = None
) -> None:
    deployment = _live(deployment_id, (DeploymentStatus.ACTIVE,))
    client = client or PterodactylClient.from_settings()
    _panel(lambda: client.reinstall_server(deployment.panel_server_id), "reinstall the server")
    deployment_record(deployment_id=deployment_id, actor=actor, reason="Reinstall requested")


def deployment_change_build(
    *,
    deployment_id: int,
    spec: dict[str, Any],
    plan_slug: str,
    plan_name: str,
    actor: Actor,
    client: PterodactylClient | None = None,
) -> Deployment:
    """Apply new limits (a plan change) on the panel, read them back, then record them."""
    deployment = _live(deployment_id, (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED))
    client = client or PterodactylClient.from_settings()
    limits, features = spec["limits"], spec["feature_limits"]
    _panel(
        lambda: client.update_server_build(
            deployment.panel_server_id,
            memory=limits["memory"],
            swap=limits["swap"],
            disk=limits["disk"],
            io=limits["io"],
            cpu=limits["cpu"],
            threads=limits.get("threads"),
            database_limit=features["databases"],
            allocation_limit=features["allocations"],
            backup_limit=features["backups"],
        ),
        "change the server's limits",
    )
    server = _panel(lambda: client.get_server(deployment.panel_server_id), "read the server")
    applied = (server.limits.memory, server.limits.cpu, server.limits.disk)
    wanted = (limits["memory"], limits["cpu"], limits["disk"])
    if applied != wanted:
        from provisioning.fleet.drift import drift_record

        drift_record(
            kind="limits_mismatch",
            deployment_id=deployment.pk,
            panel_server_id=deployment.panel_server_id,
            details={"expected": list(wanted), "panel_shows": list(applied)},
            source="verify:build",
        )
        raise PanelOperationFailed(
            f"The panel shows memory/cpu/disk {applied} after the change, not {wanted}."
        )
    new_spec = {**deployment.spec, "limits": limits, "feature_limits": features}
    return deployment_update_spec(
        deployment_id=deployment_id,
        spec=new_spec,
        plan_slug=plan_slug,
        plan_name=plan_name,
        actor=actor,
        reason=f"Plan changed from {deployment.plan_name} to {plan_name}; panel limits "
        f"read back as {applied[0]} MB / {applied[1]}% / {applied[2]} MB (verified)",
    )


def panel_password_reset(
    *, deployment_id: int, actor: Actor, client: PterodactylClient | None = None
) -> str:
    """Give the customer's panel user a new password (returned once, stored encrypted)."""
    deployment = Deployment.objects.get(pk=deployment_id)
    account = PanelAccount.objects.filter(user_id=deployment.customer_id).first()
    if account is None or not account.panel_user_id:
        raise ConflictError("This customer has no panel user yet.", code=Code.NO_PANEL_USER)
    if not account.created_by_portal:
        raise ConflictError(
            "This panel user existed before the portal attached it (matched by e-mail); its "
            "password is not ours to change. Reset it in the panel after verifying the owner.",
            code=Code.NOT_OUR_PANEL_USER,
        )
    client = client or PterodactylClient.from_settings()
    password = panel_password()
    _panel(
        lambda: client.update_user(account.panel_user_id, password=password), "set the new password"
    )
    with transaction.atomic():
        account.password = password
        account.save(update_fields=["password", "updated_at"])
        deployment_record(deployment_id=deployment_id, actor=actor, reason="Panel password reset")
        notify.notify_credentials(
            deployment,
            event="panel_password_reset",
            account=account,
            occurrence=timezone.now().isoformat(),
        )
    return password


def credentials_resend(
    *,
    deployment_id: int,
    user: Any,
    channels: list[str] | None = None,
    occurrence: str | None = None,
    via: str = "",
) -> list[Any]:
    """The customer asks for their panel login again (rate limited), through the same path as
    every message (a one-time link by default); returns the queued deliveries. `channels`,
    `occurrence` (the message's idempotency part) and `via` (for the audit row) let a WhatsApp
    "login" be answered on WhatsApp, once per inbound message."""
    deployment = Deployment.objects.filter(pk=deployment_id, customer=user).first()
    if deployment is None:
        raise NotFoundError("No such server.")
    if deployment.status not in (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED):
        raise ConflictError("This server has no login yet.", code=Code.INVALID_STATE)
    account = PanelAccount.objects.filter(user=user, panel_user_id__isnull=False).first()
    if account is None:
        raise ConflictError("You have no panel login yet.", code=Code.NO_PANEL_USER)
    with transaction.atomic():
        if not credentials_resend_allowed(user=user, key=f"deployment-{deployment.pk}"):
            raise ConflictError(
                "You asked for your login details several times recently; please wait an hour "
                "or contact support.",
                code=Code.RATE_LIMITED,
            )
        deliveries = notify.notify_credentials(
            deployment,
            event="credentials_resent",
            account=account,
            occurrence=occurrence or timezone.now().isoformat(),
            channels=channels,
        )
        deployment_record(
            deployment_id=deployment.pk,
            actor=Actor.customer(user),
            reason="Login details sent again on request" + (f" ({via})" if via else ""),
        )
    return deliveries
