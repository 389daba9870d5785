"""The customer's view of a server's setup, read from the same request/run/step rows staff see.

Internal steps map to a few words a customer understands (queued, creating your account,
creating your server, installing, ready) or "delayed: we are on it". Nothing else leaves this
module: no error text, no panel ids, no step summaries. Reads are batched, so a page showing N
servers costs the same three queries whatever N is.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from provisioning.models import (
    ProvisioningRequest,
    ProvisioningRequestStatus,
    ProvisioningRun,
    ProvisioningStepAttempt,
    RunStatus,
    StepAttemptStatus,
    StepDirection,
)
from provisioning.saga.step_base import StepName
from provisioning.saga.steps import STEP_NAMES
from servers.models import Deployment, DeploymentStatus

QUEUED = "queued"
ACCOUNT = "account"
SERVER = "server"
INSTALLING = "installing"
READY = "ready"
DELAYED = "delayed"

STAGES = (QUEUED, ACCOUNT, SERVER, INSTALLING, READY)
STAGE_LABELS = {
    QUEUED: _("Queued"),
    ACCOUNT: _("Creating your account"),
    SERVER: _("Creating your server"),
    INSTALLING: _("Installing"),
    READY: _("Ready"),
    DELAYED: _("Delayed: we are on it"),
}
_STEP_STAGE = {
    StepName.CHECK: ACCOUNT,
    StepName.PANEL_USER: ACCOUNT,
    StepName.RESOURCES: SERVER,
    StepName.PLACEMENT: SERVER,
    StepName.ALLOCATIONS: SERVER,
    StepName.SERVER: SERVER,
    StepName.INSTALL: INSTALLING,
    StepName.ACTIVATE: INSTALLING,
}
_MOVING_DEPLOYMENT = (DeploymentStatus.PENDING, DeploymentStatus.PROVISIONING)


@dataclass(frozen=True)
class ProgressStep:
    key: str
    label: str
    state: str  # "done", "current", "todo"


@dataclass(frozen=True)
class SetupProgress:
    """Where the setup stands for the customer. `stage` is one of STAGES or DELAYED;
    `moving` is True while the page should keep asking (something may change by itself)."""

    stage: str
    delayed: bool
    moving: bool
    steps: tuple[ProgressStep, ...]

    @property
    def label(self) -> str:
        return str(STAGE_LABELS[DELAYED if self.delayed else self.stage])


def _steps(current: str) -> tuple[ProgressStep, ...]:
    index = STAGES.index(current)
    return tuple(
        ProgressStep(
            key=key,
            label=str(STAGE_LABELS[key]),
            state="done" if i < index or current == READY else "current" if i == index else "todo",
        )
        for i, key in enumerate(STAGES)
    )


def _progress(
    deployment: Deployment,
    request: ProvisioningRequest | None,
    run: ProvisioningRun | None,
    last_forward: ProvisioningStepAttempt | None,
) -> SetupProgress | None:
    status = deployment.status
    if status in (DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED):
        return SetupProgress(stage=READY, delayed=False, moving=False, steps=_steps(READY))
    if request is None and run is None:
        # Not handed to provisioning (not paid yet), or terminated/cancelled before it was.
        return None
    stage = QUEUED
    if run is not None and (run.step_index > 0 or last_forward is not None):
        # The step the run stands on (the one running, waiting or to be retried).
        index = min(run.step_index, len(STEP_NAMES) - 1)
        stage = _STEP_STAGE.get(StepName(STEP_NAMES[index]), SERVER)
    delayed = (
        status == DeploymentStatus.FAILED
        or (
            request is not None
            and request.status
            in (ProvisioningRequestStatus.FAILED, ProvisioningRequestStatus.WAITING_CAPACITY)
        )
        or (
            run is not None
            and (
                run.status in (RunStatus.COMPENSATING, RunStatus.FAILED, RunStatus.NEEDS_ATTENTION)
                or run.waiting_for_capacity_since is not None
                or (last_forward is not None and last_forward.status == StepAttemptStatus.RETRYING)
            )
        )
    )
    moving = status in _MOVING_DEPLOYMENT and not (
        request is not None and request.status == ProvisioningRequestStatus.CANCELLED
    )
    if status not in _MOVING_DEPLOYMENT and status != DeploymentStatus.FAILED:
        return None  # terminated or cancelled: no setup to show
    return SetupProgress(stage=stage, delayed=delayed, moving=moving, steps=_steps(stage))


def setup_progress_for(*, deployments: Iterable[Deployment]) -> dict[int, SetupProgress | None]:
    """Each deployment's setup progress by id, in three queries whatever their number."""
    deployments = list(deployments)
    ids = [d.pk for d in deployments if d.status in (*_MOVING_DEPLOYMENT, DeploymentStatus.FAILED)]
    requests: dict[int, ProvisioningRequest] = {}
    latest: dict[int, ProvisioningRun] = {}
    last_forward: dict[int, ProvisioningStepAttempt] = {}
    if ids:
        requests = {
            r.deployment_id: r
            for r in ProvisioningRequest.objects.filter(deployment_id__in=ids).only(
                "id", "deployment_id", "status"
            )
        }
        for run in (
            ProvisioningRun.objects.filter(deployment_id__in=ids)
            .only(
                "id",
                "deployment_id",
                "status",
                "step_index",
                "waiting_for_capacity_since",
                "created_at",
            )
            .order_by("deployment_id", "-created_at", "-id")
        ):
            latest.setdefault(run.deployment_id, run)
        if latest:
            run_ids = {run.pk: run.deployment_id for run in latest.values()}
            for attempt in ProvisioningStepAttempt.objects.filter(
                run_id__in=run_ids, direction=StepDirection.FORWARD
            ).only("id", "run_id", "step", "status", "started_at"):
                last_forward[run_ids[attempt.run_id]] = attempt  # ordered by started_at, id
    return {
        d.pk: _progress(d, requests.get(d.pk), latest.get(d.pk), last_forward.get(d.pk))
        for d in deployments
    }


def setup_progress(*, deployment: Deployment) -> SetupProgress | None:
    return setup_progress_for(deployments=[deployment])[deployment.pk]
