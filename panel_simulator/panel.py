"""The simulated panel's model and operations (pure Python: no HTTP here).

Each public operation mirrors one panel service in its documented processing order: request
validation (422) first, then the service's own checks (400 DisplayException and friends), then
the database write, then the call to Wings (simulated per node). Operations raise
``ValidationFailed`` or ``ApiError``; the HTTP layer (``api.py``) renders them.

Callers hold ``panel.lock`` around a request (the HTTP layer does); ``tick()`` completes the
installs and backups whose delay has passed and runs before every request.
"""

from __future__ import annotations

from panel_simulator.errors import GENERIC_500, ApiError, display_error, model_not_found
from panel_simulator.operations.backups import BackupOperations
from panel_simulator.operations.nodes import NodeOperations
from panel_simulator.operations.power import PowerOperations
from panel_simulator.operations.server_changes import ServerChanges
from panel_simulator.operations.server_create import ServerCreation
from panel_simulator.operations.users import UserOperations


class Panel(
    UserOperations,
    ServerCreation,
    ServerChanges,
    NodeOperations,
    PowerOperations,
    BackupOperations,
):
    """The panel's tables (``tables.py``) and services (``operations/``, one module per
    resource). Not thread-safe by itself: hold ``lock``."""


__all__ = ["GENERIC_500", "ApiError", "Panel", "display_error", "model_not_found"]
