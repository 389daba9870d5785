"""Client for the Pterodactyl panel API (the only code in the project that talks HTTP to it).

Modules: ``application`` (``PterodactylClient``, the Application API, one module per resource),
``client_api`` (``PterodactylClientAPI``: power signals, live usage and backups),
``transport`` (sending, timeouts, retries, the rate-limiter wiring), ``replies`` (a reply or
the error it maps to), ``errors``, ``ratelimit``, ``types`` (typed results, one module per
resource).
"""

from provisioning.pterodactyl.application import UNSET, PterodactylClient
from provisioning.pterodactyl.client_api import PterodactylClientAPI
from provisioning.pterodactyl.errors import (
    FieldError,
    PanelAuthError,
    PanelBadRequest,
    PanelBadResponse,
    PanelConflict,
    PanelError,
    PanelNotFound,
    PanelNoViableAllocation,
    PanelNoViableNode,
    PanelPermissionError,
    PanelRateLimited,
    PanelUnavailable,
    PanelValidationError,
)
from provisioning.pterodactyl.ratelimit import (
    InProcessRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    build_rate_limiter,
)
from provisioning.pterodactyl.transport import RetryPolicy
from provisioning.pterodactyl.types import (
    AllocatedResources,
    Allocation,
    Backup,
    Container,
    Created,
    CreateOrigin,
    Deploy,
    Egg,
    EggVariable,
    FeatureLimits,
    Limits,
    Location,
    Nest,
    Node,
    Page,
    Server,
    ServerResources,
    ServerStatus,
    User,
)

__all__ = [
    "UNSET",
    "AllocatedResources",
    "Allocation",
    "Backup",
    "Container",
    "CreateOrigin",
    "Created",
    "Deploy",
    "Egg",
    "EggVariable",
    "FeatureLimits",
    "FieldError",
    "InProcessRateLimiter",
    "Limits",
    "Location",
    "Nest",
    "Node",
    "Page",
    "PanelAuthError",
    "PanelBadRequest",
    "PanelBadResponse",
    "PanelConflict",
    "PanelError",
    "PanelNoViableAllocation",
    "PanelNoViableNode",
    "PanelNotFound",
    "PanelPermissionError",
    "PanelRateLimited",
    "PanelUnavailable",
    "PanelValidationError",
    "PterodactylClient",
    "PterodactylClientAPI",
    "RateLimiter",
    "RedisRateLimiter",
    "RetryPolicy",
    "Server",
    "ServerResources",
    "ServerStatus",
    "User",
    "build_rate_limiter",
]
