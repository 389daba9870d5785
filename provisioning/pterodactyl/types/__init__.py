"""Typed results of the panel API: frozen dataclasses built by ``from_api``, one module per
resource (``users``, ``servers``, ``nodes``, ``eggs``; ``base`` holds the reader and the generic
``Page`` and ``Created``).

``from_api`` accepts either an item envelope (``{"object": "server", "attributes": {...}}``) or
the bare attributes, and raises ``PanelBadResponse`` (never KeyError/TypeError) when the shape
is not the one the panel documents. Request-side value objects (``Limits``, ``FeatureLimits``,
``Deploy``) live with the server type, which reuses them.
"""

from provisioning.pterodactyl.types.backups import Backup
from provisioning.pterodactyl.types.base import Created, CreateOrigin, Page
from provisioning.pterodactyl.types.eggs import Egg, EggVariable, Nest
from provisioning.pterodactyl.types.nodes import AllocatedResources, Allocation, Location, Node
from provisioning.pterodactyl.types.servers import (
    Container,
    Deploy,
    FeatureLimits,
    Limits,
    Server,
    ServerResources,
    ServerStatus,
)
from provisioning.pterodactyl.types.users import User

__all__ = [
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
    "Limits",
    "Location",
    "Nest",
    "Node",
    "Page",
    "Server",
    "ServerResources",
    "ServerStatus",
    "User",
]
