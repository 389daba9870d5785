"""The customer's view of a running server: live state and usage, and power buttons.

Through the panel's Client API (a root admin's ptlc_ key): the Application API has neither.
"""

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from common.actors import Actor
from common.errors import ApplicationError, ConflictError, NotFoundError
from provisioning.errors import ProvisioningErrorCode as Code
from provisioning.pterodactyl import PanelConflict, PanelError, PterodactylClientAPI
from servers.models import Deployment, DeploymentStatus, PowerAction, PowerSignal
from servers.services import deployment_record

CUSTOMER_SIGNALS = (PowerSignal.START, PowerSignal.STOP, PowerSignal.RESTART)
_PAST = {
    PowerSignal.START: "started",
    PowerSignal.STOP: "stopped",
    PowerSignal.RESTART: "restarted",
}
POWER_LIMIT_PER_MINUTE = 5
_MB = 1024 * 1024


@dataclass(frozen=True)
class LiveStatus:
    state: str = ""
    memory_mb: int = 0
    cpu_percent: float = 0.0
    disk_mb: int = 0
    uptime: str = ""
    error: str = ""


def server_live_status(
    *, deployment: Deployment, client: PterodactylClientAPI | None = None
) -> LiveStatus | None:
    """Live state and usage, or a LiveStatus with a readable `error`; None before provisioning."""
    if deployment.status not in (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED):
        return None
    if not deployment.panel_identifier:
        return None
    try:
        client = client or PterodactylClientAPI.from_settings(max_retries=0)
        stats = client.get_server_resources(deployment.panel_identifier)
    except ImproperlyConfigured:
        return LiveStatus(error="Live status is not available (the panel's client key is not set).")
    except PanelConflict:
        return LiveStatus(
            state="suspended" if deployment.status == DeploymentStatus.SUSPENDED else "busy",
            error="The server is busy (installing or suspended).",
        )
    except PanelError:
        return LiveStatus(error="The panel is not answering right now; try again in a minute.")
    uptime = dt.timedelta(seconds=stats.uptime_ms // 1000)
    return LiveStatus(
        state="suspended" if stats.is_suspended else stats.current_state,
        memory_mb=stats.memory_bytes // _MB,
        cpu_percent=round(stats.cpu_absolute, 1),
        disk_mb=stats.disk_bytes // _MB,
        uptime=str(uptime) if stats.uptime_ms else "",
    )


def server_power_signal(
    *, deployment_id: int, user: object, signal: str, client: PterodactylClientAPI | None = None
) -> None:
    """Start, stop or restart the customer's own active server (audited, rate limited)."""
    deployment = Deployment.objects.filter(pk=deployment_id, customer=user).first()
    if deployment is None:
        raise NotFoundError("No such server.")
    if signal not in CUSTOMER_SIGNALS:
        raise ApplicationError.for_fields({"signal": f"Choose {', '.join(CUSTOMER_SIGNALS)}."})
    if deployment.status != DeploymentStatus.ACTIVE or not deployment.panel_identifier:
        raise ConflictError(
            f"The server is {deployment.get_status_display().lower()}; it cannot be "
            f"{_PAST[signal]} now.",
            code=Code.INVALID_STATE,
        )
    recent = PowerAction.objects.filter(
        deployment=deployment, created_at__gte=timezone.now() - dt.timedelta(minutes=1)
    ).count()
    if recent >= POWER_LIMIT_PER_MINUTE:
        raise ConflictError("Too many power actions; wait a minute.", code=Code.RATE_LIMITED)
    try:
        client = client or PterodactylClientAPI.from_settings(max_retries=0)
        client.send_power_signal(deployment.panel_identifier, signal)  # type: ignore[arg-type]
    except ImproperlyConfigured as exc:
        raise ConflictError("Power buttons are not available right now.") from exc
    except PanelConflict as exc:
        raise ConflictError("The server is busy (installing or suspended); try later.") from exc
    except PanelError as exc:
        raise ApplicationError("The panel did not accept the request; try again.") from exc
    PowerAction.objects.create(deployment=deployment, signal=signal, actor=user)
    deployment_record(
        deployment_id=deployment.pk, actor=Actor.customer(user), reason=f"Power: {signal}"
    )
