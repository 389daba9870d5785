"""The customer's view of a running server: live state and usage, and power buttons.

Through the panel's Client API (a root admin's ptlc_ key): the Application API has neither.
"""

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from common.actors import Actor
from common.errors import ApplicationError, ConflictError, NotFoundError
from provisioning.errors import ProvisioningErrorCode as Code
from provisioning.pterodactyl import PanelConflict, PanelError, PterodactylClientAPI
from servers.models import Deployment, DeploymentStatus, PowerAction, PowerSignal
from servers.services import deployment_record

CUSTOMER_SIGNALS = (PowerSignal.START, PowerSignal.STOP, PowerSignal.RESTART)
_PAST = {
    PowerSignal.START: gettext_lazy("started"),
    PowerSignal.STOP: gettext_lazy("stopped"),
    PowerSignal.RESTART: gettext_lazy("restarted"),
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
    uptime_seconds: int | None = None


def server_live_status(
    *, deployment: Deployment, client: PterodactylClientAPI | None = None
) -> LiveStatus | None:
    """Live state and usage, or a LiveStatus with a readable `error`; None before provisioning."""
    if deployment.status == DeploymentStatus.SUSPENDED:
        # Our own row says why (see the server page's reason); the panel would only answer 409.
        return LiveStatus(state="suspended")
    if deployment.status != DeploymentStatus.ACTIVE or not deployment.panel_identifier:
        return None
    try:
        client = client or PterodactylClientAPI.from_settings(max_retries=0)
        stats = client.get_server_resources(deployment.panel_identifier)
    except ImproperlyConfigured:
        return LiveStatus(
            error=_("Live status is not available (the panel's client key is not set).")
        )
    except PanelConflict:
        return LiveStatus(
            state="busy",
            error=_("The panel is busy with this server (installing or restoring); try shortly."),
        )
    except PanelError:
        return LiveStatus(error=_("The panel is not answering right now; try again in a minute."))
    uptime = dt.timedelta(seconds=stats.uptime_ms // 1000)
    return LiveStatus(
        state="suspended" if stats.is_suspended else stats.current_state,
        memory_mb=stats.memory_bytes // _MB,
        cpu_percent=round(stats.cpu_absolute, 1),
        disk_mb=stats.disk_bytes // _MB,
        uptime=str(uptime) if stats.uptime_ms else "",
        uptime_seconds=stats.uptime_ms // 1000,
    )


# What the panel should report once a signal has taken effect.
_EXPECTED_STATE = {
    PowerSignal.START: "running",
    PowerSignal.STOP: "offline",
    PowerSignal.RESTART: "running",
}
# How long after a signal the page keeps saying "updating" (the panel caches stats for 20 s).
POWER_SETTLE_SECONDS = 60


@dataclass(frozen=True)
class PendingPower:
    """A power signal sent recently whose effect the panel's (cached) figures do not show yet."""

    signal: str
    expected_state: str
    sent_at: dt.datetime


def power_pending(
    *, deployment: Deployment, live: LiveStatus | None, now: dt.datetime | None = None
) -> PendingPower | None:
    """The last customer power signal, if it was sent less than POWER_SETTLE_SECONDS ago and
    `live` does not show it yet (one query). A restart shows once the uptime is younger than
    the signal."""
    if deployment.status != DeploymentStatus.ACTIVE:
        return None
    now = now or timezone.now()
    action = (
        PowerAction.objects.filter(
            deployment=deployment,
            created_at__gte=now - dt.timedelta(seconds=POWER_SETTLE_SECONDS),
            signal__in=list(_EXPECTED_STATE),
        )
        .order_by("-created_at", "-id")
        .first()
    )
    if action is None:
        return None
    expected = _EXPECTED_STATE[PowerSignal(action.signal)]
    if live is not None and live.state == expected and not live.error:
        since = (now - action.created_at).total_seconds()
        if action.signal != PowerSignal.RESTART or (
            live.uptime_seconds is not None and live.uptime_seconds < since
        ):
            return None
    return PendingPower(signal=action.signal, expected_state=expected, sent_at=action.created_at)


def server_power_signal(
    *, deployment_id: int, user: object, signal: str, client: PterodactylClientAPI | None = None
) -> None:
    """Start, stop or restart the customer's own active server (audited, rate limited)."""
    deployment = Deployment.objects.filter(pk=deployment_id, customer=user).first()
    if deployment is None:
        raise NotFoundError("No such server.")
    if signal not in CUSTOMER_SIGNALS:
        raise ApplicationError.for_fields(
            {"signal": _("Choose %(signals)s.") % {"signals": ", ".join(CUSTOMER_SIGNALS)}}
        )
    if deployment.status != DeploymentStatus.ACTIVE or not deployment.panel_identifier:
        raise ConflictError(
            _("The server is %(status)s; it cannot be %(done)s now.")
            % {"status": deployment.get_status_display().lower(), "done": _PAST[signal]},
            code=Code.INVALID_STATE,
        )
    recent = PowerAction.objects.filter(
        deployment=deployment, created_at__gte=timezone.now() - dt.timedelta(minutes=1)
    ).count()
    if recent >= POWER_LIMIT_PER_MINUTE:
        raise ConflictError(_("Too many power actions; wait a minute."), code=Code.RATE_LIMITED)
    try:
        client = client or PterodactylClientAPI.from_settings(max_retries=0)
        client.send_power_signal(deployment.panel_identifier, signal)  # type: ignore[arg-type]
    except ImproperlyConfigured as exc:
        raise ConflictError(_("Power buttons are not available right now.")) from exc
    except PanelConflict as exc:
        raise ConflictError(_("The server is busy (installing or restoring); try later.")) from exc
    except PanelError as exc:
        raise ApplicationError(_("The panel did not accept the request; try again.")) from exc
    PowerAction.objects.create(deployment=deployment, signal=signal, actor=user)
    deployment_record(
        deployment_id=deployment.pk, actor=Actor.customer(user), reason=f"Power: {signal}"
    )
