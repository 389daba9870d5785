"""The error codes provisioning's services raise (ApplicationError.code), in one place.

Clients and tests match on these strings (the API renders them as `code`), so the values never
change; a StrEnum compares and serializes as its plain string. The panel client's own errors
live in provisioning.pterodactyl.
"""

from enum import StrEnum


class ProvisioningErrorCode(StrEnum):
    # Starting and steering saga runs (provisioning.services).
    INVALID_STEP = "invalid_step"
    PROVISIONING_FINISHED = "provisioning_finished"
    CANNOT_RESUME = "cannot_resume"
    NO_REQUEST = "no_request"
    NEEDS_ATTENTION = "needs_attention"
    RUN_FINISHED = "run_finished"
    # The provisioning API (provisioning.apis): retrying a run that is not the failed latest,
    # linking a panel server by hand (provisioning.manual).
    NOT_RETRYABLE = "not_retryable"
    PANEL_SERVER_LINKED = "panel_server_linked"
    PANEL_UNAVAILABLE = "panel_unavailable"
    # Orders waiting for capacity (provisioning.saga.capacity_wait).
    NOT_WAITING_FOR_CAPACITY = "not_waiting_for_capacity"
    RUN_BUSY = "run_busy"
    SAME_LOCATION = "same_location"
    # Live servers (provisioning.operations, provisioning.live).
    INVALID_STATE = "invalid_state"
    NO_PANEL_SERVER = "no_panel_server"
    NO_PANEL_USER = "no_panel_user"
    NOT_OUR_PANEL_USER = "not_our_panel_user"
    RATE_LIMITED = "rate_limited"
    # A terminated server can no longer be restored (deleted, or its window is over).
    RESTORE_WINDOW_CLOSED = "restore_window_closed"
    # The panel refused or lost a live server (PanelOperationFailed, PanelServerMissing).
    PANEL_OPERATION_FAILED = "panel_operation_failed"
    PANEL_SERVER_MISSING = "panel_server_missing"
    # Raised by common.state's tables (RUN_TRANSITIONS too); the operation drain matches on it.
    INVALID_TRANSITION = "invalid_transition"
