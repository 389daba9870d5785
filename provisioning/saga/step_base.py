"""What every saga step is made of: the context it runs with, the outcome it returns, the
exceptions that end or rewind it, and the Step base class (provisioning/saga/steps.py lists
the steps in order)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.utils import timezone

from common.actors import Actor
from provisioning.models import ProvisioningRun
from provisioning.pterodactyl import (
    PterodactylClient,
)
from servers.models import Deployment

logger = logging.getLogger(__name__)


class StepName(StrEnum):
    """The saga's steps, in the order they run (STEPS in provisioning/saga/steps.py).

    Stored as is in ProvisioningStepAttempt.step and ProvisioningRun.failed_step."""

    CHECK = "check"
    PANEL_USER = "panel_user"
    RESOURCES = "resources"
    PLACEMENT = "placement"
    ALLOCATIONS = "allocations"
    SERVER = "server"
    INSTALL = "install"
    ACTIVATE = "activate"


class StepFailed(Exception):
    """A terminal failure of a step; the message is shown to staff as is (no secrets)."""


class StepRewind(Exception):
    """The panel said something an earlier step took from our records has changed (the stored
    panel user is gone, the egg's variables changed): run again from `to_step`, which reads it
    afresh. The engine bounds how often a run may go back."""

    def __init__(self, to_step: StepName, message: str) -> None:
        super().__init__(message)
        self.to_step = to_step


def mark_sent(ctx: StepContext, field_name: str) -> None:
    """Record, fenced and before the call, that a create is about to be sent: if its reply is
    lost, a later try knows the panel may have the object and looks it up first."""
    now = timezone.now()
    ProvisioningRun.objects.filter(pk=ctx.run.pk, fence=ctx.run.fence).update(**{field_name: now})
    setattr(ctx.run, field_name, now)


@dataclass
class StepContext:
    run: ProvisioningRun
    deployment: Deployment
    attempt: int
    client_factory: Callable[[], PterodactylClient]
    _client: PterodactylClient | None = None

    @property
    def client(self) -> PterodactylClient:
        if self._client is None:
            self._client = self.client_factory()
        return self._client


@dataclass
class StepOutcome:
    updates: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    # Not finished: run this step again after this many seconds (install polling).
    poll_after: float | None = None
    # Set (with poll_after) when no node has room: why; the run waits for capacity.
    waiting_for_capacity: str | None = None


class Step:
    name: str = ""
    label: str = ""

    def execute(self, ctx: StepContext) -> StepOutcome:
        raise NotImplementedError

    def compensate(self, ctx: StepContext) -> StepOutcome:
        return StepOutcome(summary={"nothing_to_undo": True})

    def finalize(self, run: ProvisioningRun, outcome: StepOutcome, actor: Actor) -> None:
        """Database work done inside the engine's fenced transaction (no HTTP here)."""
