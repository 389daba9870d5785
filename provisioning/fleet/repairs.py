"""Executors of the drift repairs (called by the drain, one claimed operation at a time).

Each one checks first that the drift still exists (the operation may have waited for hours):
when it does not, nothing is sent to the panel, the item is closed and the operation is
skipped. Otherwise it acts, reads the panel state back, and closes the item (verified) or
refreshes it with what the panel shows now and alerts staff (not verified; the reconcile job
does not request that repair again by itself). The panel client's errors are
raised as they are: the drain retries the retryable ones and fails the others with one alert.

Panel calls per operation: re-apply suspension 3 (GET, POST, GET), re-apply build 3 (GET, then
the client's GET + PATCH; the PATCH reply is the state the panel saved), delete orphan server
or user 3 (GET, DELETE, GET).
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from common.actors import Actor
from provisioning.fleet.drift import (
    LIVE_STATUSES,
    SERVER_EXTERNAL_PREFIX,
    SUSPENSION_KINDS,
    USER_EXTERNAL_PREFIX,
    drift_alert_repair_unverified,
    drift_record,
    drift_resolve,
)
from provisioning.fleet.drift_scan import limits_difference
from provisioning.fleet.operations import OperationResult
from provisioning.fleet.panel_read import PanelServerView
from provisioning.models import (
    ACTIVE_RUN_STATUSES,
    DriftItem,
    DriftKind,
    PanelAccount,
    PanelOperation,
    PanelOperationKind,
    ProvisioningRun,
)
from provisioning.pterodactyl import UNSET, PanelNotFound, PterodactylClient, Server, ServerStatus
from servers.models import Deployment, DeploymentStatus
from servers.services import deployment_record

K = DriftKind
SOURCE = "repair"


def repair_execute(*, operation: PanelOperation, client: PterodactylClient) -> OperationResult:
    """Run one repair operation (REAPPLY_SUSPENSION, REAPPLY_BUILD, DELETE_ORPHAN_SERVER,
    DELETE_ORPHAN_USER); raises the client's PanelError when the panel fails."""
    executors = {
        PanelOperationKind.REAPPLY_SUSPENSION: _reapply_suspension,
        PanelOperationKind.REAPPLY_BUILD: _reapply_build,
        PanelOperationKind.DELETE_ORPHAN_SERVER: _delete_orphan_server,
        PanelOperationKind.DELETE_ORPHAN_USER: _delete_orphan_user,
    }
    try:
        executor = executors[operation.kind]
    except KeyError:
        raise ValueError(f"{operation.kind} is not a drift repair") from None
    return executor(operation, client)


def _by(operation: PanelOperation) -> str:
    return operation.requested_by or "system:reconcile"


def _live_deployment(operation: PanelOperation) -> Deployment | None:
    deployment = Deployment.objects.filter(pk=operation.deployment_id).first()
    if deployment is None or deployment.status not in LIVE_STATUSES:
        return None
    return deployment if deployment.panel_server_id else None


def _close(operation: PanelOperation, kinds: tuple[str, ...], resolution: str, **target) -> None:
    drift_resolve(resolution=resolution, resolved_by=_by(operation), kinds=kinds, **target)


def _missing(
    operation: PanelOperation, deployment: Deployment, kinds: tuple[str, ...]
) -> OperationResult:
    """The server is gone from the panel: that is the drift now (staff decide)."""
    drift_record(
        kind=K.MISSING_ON_PANEL,
        deployment_id=deployment.pk,
        panel_server_id=deployment.panel_server_id,
        details={
            "expected_panel_server_id": deployment.panel_server_id,
            "actual": "not on the panel",
        },
        source=SOURCE,
    )
    _close(
        operation,
        kinds,
        f"superseded: the server is missing on the panel (operation #{operation.pk})",
        deployment_id=deployment.pk,
    )
    return OperationResult(outcome="the server is missing on the panel; nothing sent", skipped=True)


def _live_server(
    operation: PanelOperation, client: PterodactylClient, kinds: tuple[str, ...]
) -> tuple[Deployment, Server] | OperationResult:
    """The operation's live deployment and its panel server, or the result that ends the
    repair (no longer live, or missing on the panel: the items are closed or moved on)."""
    deployment = _live_deployment(operation)
    if deployment is None:
        _close(
            operation,
            kinds,
            "gone: the server is no longer live here",
            deployment_id=operation.deployment_id,
        )
        return OperationResult(outcome="not needed: the server is no longer live", skipped=True)
    try:
        return deployment, client.get_server(deployment.panel_server_id)
    except PanelNotFound:
        return _missing(operation, deployment, kinds)


def _reapply_suspension(operation: PanelOperation, client: PterodactylClient) -> OperationResult:
    found = _live_server(operation, client, SUSPENSION_KINDS)
    if isinstance(found, OperationResult):
        return found
    deployment, server = found
    server_id = deployment.panel_server_id
    want_suspended = deployment.status == DeploymentStatus.SUSPENDED
    if (server.status == ServerStatus.SUSPENDED) == want_suspended:
        _close(
            operation,
            SUSPENSION_KINDS,
            "gone: the panel already matches (checked before the repair)",
            deployment_id=deployment.pk,
        )
        return OperationResult(outcome="not needed: the panel already matches", skipped=True)
    # Billing is the record: the panel is made to match our status, never the reverse.
    if want_suspended:
        client.suspend_server(server_id)
    else:
        client.unsuspend_server(server_id)
    shown = client.get_server(server_id).status
    verified = (shown == ServerStatus.SUSPENDED) == want_suspended
    action = "suspended" if want_suspended else "unsuspended"
    if verified:
        _close(
            operation,
            SUSPENSION_KINDS,
            f"repaired: {action} on the panel (operation #{operation.pk})",
            deployment_id=deployment.pk,
        )
        deployment_record(
            deployment_id=deployment.pk,
            actor=_actor(operation),
            reason=f"Drift repaired: {action} on the panel to match (operation #{operation.pk})",
        )
    else:
        kind = K.SUSPENDED_HERE_RUNNING_THERE if want_suspended else K.SUSPENDED_THERE_ACTIVE_HERE
        drift_record(
            kind=kind,
            deployment_id=deployment.pk,
            panel_server_id=server_id,
            details={
                "expected": "suspended" if want_suspended else "not suspended",
                "actual": shown or "normal",
                "after_operation": operation.pk,
            },
            source=SOURCE,
        )
        drift_alert_repair_unverified(
            kind=kind,
            detail=f"Deployment #{deployment.pk}: {action} on the panel by operation "
            f"#{operation.pk}, but the panel shows {shown or 'normal'}.",
        )
    return OperationResult(
        outcome=f"{action} on the panel; read back: {shown or 'normal'}", verified=verified
    )


def _reapply_build(operation: PanelOperation, client: PterodactylClient) -> OperationResult:
    kinds = (K.LIMITS_MISMATCH,)
    found = _live_server(operation, client, kinds)
    if isinstance(found, OperationResult):
        return found
    deployment, server = found
    server_id = deployment.panel_server_id
    limits = deployment.spec.get("limits") or {}
    features = deployment.spec.get("feature_limits") or {}
    before = limits_difference(
        spec_limits=limits,
        spec_features=features,
        panel=PanelServerView.from_server(server).limits_dict(),
    )
    if not before:
        _close(
            operation,
            kinds,
            "gone: the panel already matches (checked before the repair)",
            deployment_id=deployment.pk,
        )
        return OperationResult(outcome="not needed: the limits already match", skipped=True)
    # What the spec states is sent; the client fills the rest from the server (the panel wants
    # every limit on a build PATCH).
    saved = client.update_server_build(
        server_id,
        memory=limits.get("memory"),
        swap=limits.get("swap"),
        disk=limits.get("disk"),
        io=limits.get("io"),
        cpu=limits.get("cpu"),
        threads=limits.get("threads", UNSET),
        database_limit=features.get("databases", UNSET),
        allocation_limit=features.get("allocations", UNSET),
        backup_limit=features.get("backups", UNSET),
    )
    after = limits_difference(
        spec_limits=limits,
        spec_features=features,
        panel=PanelServerView.from_server(saved).limits_dict(),
    )
    if not after:
        _close(
            operation,
            kinds,
            f"repaired: limits re-applied (operation #{operation.pk})",
            deployment_id=deployment.pk,
        )
        changed = ", ".join(
            f"{name} {before['actual'][name]} -> {value}"
            for name, value in before["expected"].items()
        )
        deployment_record(
            deployment_id=deployment.pk,
            actor=_actor(operation),
            reason=f"Drift repaired: panel limits re-applied ({changed}; operation "
            f"#{operation.pk})",
        )
    else:
        drift_record(
            kind=K.LIMITS_MISMATCH,
            deployment_id=deployment.pk,
            panel_server_id=server_id,
            details={**after, "after_operation": operation.pk},
            source=SOURCE,
        )
        drift_alert_repair_unverified(
            kind=K.LIMITS_MISMATCH,
            detail=f"Deployment #{deployment.pk}: limits re-applied by operation "
            f"#{operation.pk}, but the panel shows {after['actual']} (expected "
            f"{after['expected']}).",
        )
    return OperationResult(
        outcome="limits re-applied" if not after else f"the panel still differs: {after}",
        verified=not after,
    )


def _delete_orphan_server(operation: PanelOperation, client: PterodactylClient) -> OperationResult:
    server_id = operation.panel_server_id
    try:
        server = client.get_server(server_id)
    except PanelNotFound:
        _close_by_server(operation, "gone: the server is no longer on the panel")
        return OperationResult(outcome="not needed: already deleted", skipped=True)
    reason = _server_is_ours(server.id, server.external_id)
    if reason:
        _close_by_server(operation, f"gone: no longer an orphan ({reason})")
        return OperationResult(outcome=f"not deleted: {reason}", skipped=True)
    client.delete_server(server_id, force=True, missing_ok=True)
    try:
        client.get_server(server_id)
    except PanelNotFound:
        _close_by_server(operation, f"repaired: deleted from the panel (operation #{operation.pk})")
        return OperationResult(outcome="orphan server deleted", verified=True)
    _refresh_by_server(operation, {"still_on_panel_after_operation": operation.pk})
    drift_alert_repair_unverified(
        kind=K.ORPHAN_SERVER,
        detail=f"Panel server #{server_id} is still on the panel after operation "
        f"#{operation.pk} deleted it.",
    )
    return OperationResult(outcome="the server is still on the panel", verified=False)


def _server_is_ours(server_id: int, external_id: str | None) -> str:
    """Why the server is not an orphan to delete ("" when it is one)."""
    if not external_id or not external_id.startswith(SERVER_EXTERNAL_PREFIX):
        return "it no longer carries our external id"
    holding = (*LIVE_STATUSES, DeploymentStatus.PENDING, DeploymentStatus.PROVISIONING)
    if Deployment.objects.filter(panel_server_id=server_id, status__in=holding).exists():
        return "a deployment holds it"  # a terminated one keeps the id as history only
    suffix = external_id[len(SERVER_EXTERNAL_PREFIX) :]
    if not suffix.isdigit():
        return "its external id names no deployment"
    deployment = Deployment.objects.filter(pk=int(suffix)).first()
    if deployment is None:
        return ""
    if deployment.status in (DeploymentStatus.PENDING, DeploymentStatus.PROVISIONING):
        return "its deployment is being provisioned"
    if ProvisioningRun.objects.filter(
        deployment=deployment, status__in=ACTIVE_RUN_STATUSES
    ).exists():
        return "its deployment is being provisioned"
    if deployment.status in LIVE_STATUSES:
        return "its deployment is live (adopt or review it instead)"
    return ""


def _orphan_items(operation: PanelOperation, kind: str, column: str) -> Any:
    # An orphan item targets the panel object; it may also name the deployment of its external
    # id (a terminated one), so it is found by the panel id alone.
    return DriftItem.objects.filter(
        resolved_at__isnull=True, kind=kind, **{column: getattr(operation, column)}
    )


def _close_by_server(operation: PanelOperation, resolution: str) -> None:
    _orphan_items(operation, K.ORPHAN_SERVER, "panel_server_id").update(
        resolved_at=timezone.now(), resolution=resolution[:2000], resolved_by=_by(operation)
    )


def _refresh_by_server(operation: PanelOperation, extra: dict[str, Any]) -> None:
    for item in _orphan_items(operation, K.ORPHAN_SERVER, "panel_server_id"):
        drift_record(
            kind=item.kind,
            deployment_id=item.deployment_id,
            panel_server_id=item.panel_server_id,
            details={**item.details, **extra},
            source=SOURCE,
        )


def _delete_orphan_user(operation: PanelOperation, client: PterodactylClient) -> OperationResult:
    user_id = operation.panel_user_id
    items = _orphan_items(operation, K.ORPHAN_USER, "panel_user_id")

    def close(resolution: str) -> None:
        items.update(
            resolved_at=timezone.now(), resolution=resolution[:2000], resolved_by=_by(operation)
        )

    try:
        user = client.get_user(user_id)
    except PanelNotFound:
        close("gone: the user is no longer on the panel")
        return OperationResult(outcome="not needed: already deleted", skipped=True)
    external_id = user.external_id or ""
    reason = ""
    if user.root_admin:
        reason = "a panel administrator"
    elif not external_id.startswith(USER_EXTERNAL_PREFIX):
        reason = "it no longer carries our external id"
    else:
        account = PanelAccount.objects.filter(external_id=external_id).first()
        if account is not None and account.panel_user_id in (None, user.id):
            reason = "a portal account owns it"
    if reason:
        close(f"gone: no longer an orphan ({reason})")
        return OperationResult(outcome=f"not deleted: {reason}", skipped=True)
    # The panel refuses (400, raised) while the user owns servers: staff look at it.
    client.delete_user(user_id, missing_ok=True)
    try:
        client.get_user(user_id)
    except PanelNotFound:
        close(f"repaired: deleted from the panel (operation #{operation.pk})")
        return OperationResult(outcome="orphan user deleted", verified=True)
    for item in items:
        drift_record(
            kind=item.kind,
            panel_user_id=user_id,
            details={**item.details, "still_on_panel_after_operation": operation.pk},
            source=SOURCE,
        )
    drift_alert_repair_unverified(
        kind=K.ORPHAN_USER,
        detail=f"Panel user #{user_id} is still on the panel after operation "
        f"#{operation.pk} deleted it.",
    )
    return OperationResult(outcome="the user is still on the panel", verified=False)


def _actor(operation: PanelOperation) -> Actor:
    return Actor(label=_by(operation))
