"""Provisioning's models, one module per responsibility; import them from here.

- requests: the hand-off from billing (ProvisioningRequest), its table and history;
- accounts: the customer's panel login (PanelAccount);
- runs: saga runs, their transition table, step attempts and port claims;
- operations: the queue of panel work fleet jobs decide (PanelOperation);
- drift: differences between billing and the panel (DriftItem).
"""

from provisioning.models.accounts import PanelAccount
from provisioning.models.drift import DriftItem, DriftKind
from provisioning.models.operations import (
    OPEN_OPERATION_STATUSES,
    OPERATION_PRIORITY,
    PanelOperation,
    PanelOperationKind,
    PanelOperationStatus,
)
from provisioning.models.requests import (
    PROVISIONING_REQUEST_STATES,
    PROVISIONING_REQUEST_TRANSITIONS,
    ProvisioningRequest,
    ProvisioningRequestEvent,
    ProvisioningRequestStatus,
)
from provisioning.models.runs import (
    ACTIVE_RUN_STATUSES,
    FAILED_RUN_STATUSES,
    RUN_TRANSITIONS,
    AllocationClaim,
    ProvisioningRun,
    ProvisioningStepAttempt,
    RunStatus,
    StepAttemptStatus,
    StepDirection,
    run_move,
)

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "FAILED_RUN_STATUSES",
    "OPEN_OPERATION_STATUSES",
    "OPERATION_PRIORITY",
    "PROVISIONING_REQUEST_STATES",
    "PROVISIONING_REQUEST_TRANSITIONS",
    "RUN_TRANSITIONS",
    "AllocationClaim",
    "DriftItem",
    "DriftKind",
    "PanelAccount",
    "PanelOperation",
    "PanelOperationKind",
    "PanelOperationStatus",
    "ProvisioningRequest",
    "ProvisioningRequestEvent",
    "ProvisioningRequestStatus",
    "ProvisioningRun",
    "ProvisioningStepAttempt",
    "RunStatus",
    "StepAttemptStatus",
    "StepDirection",
    "run_move",
]
