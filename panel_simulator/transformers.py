"""Rows -> the panel's API attributes, plus ``include=`` relationships (app/Transformers).

Included relationships go *inside* ``attributes.relationships``; a relationship whose resource
the key cannot READ is rendered as ``{"object": "null_resource", "attributes": null}``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from panel_simulator.state import (
    READ,
    STATUS_INSTALL_FAILED,
    STATUS_INSTALLING,
    STATUS_SUSPENDED,
    AllocationRow,
    ApiKeyRow,
    EggRow,
    EggVariableRow,
    LocationRow,
    NestRow,
    NodeRow,
    ServerRow,
    UserRow,
)

if TYPE_CHECKING:
    from panel_simulator.panel import Panel

NULL_RESOURCE: dict[str, Any] = {"object": "null_resource", "attributes": None}
IncludeTree = dict[str, "IncludeTree"]


class IncludeError(Exception):
    """An include the transformer lists but cannot produce (``transfer``): the panel 500s."""


def ts(epoch: float | None) -> str | None:
    """The API's timestamp format: 2024-01-15T10:26:32+00:00."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(int(epoch), tz=UTC).isoformat()


def native_ts(epoch: float | None) -> str | None:
    """Laravel's native model format: 2024-01-15T10:26:32.000000Z."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(int(epoch), tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def parse_includes(value: Any, depth: int = 2) -> IncludeTree:
    """``include=a,b.c`` (or an array) -> {"a": {}, "b": {"c": {}}}, cut at ``depth`` levels."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        names = [str(item) for item in value if item is not None]
    elif isinstance(value, str):
        names = value.split(",")
    else:
        names = []
    tree: IncludeTree = {}
    for name in names:
        node = tree
        for part in [p.strip() for p in name.split(".") if p.strip()][:depth]:
            node = node.setdefault(part, {})
    return tree


# --------------------------------------------------------------------------- attributes


def user_attributes(panel: Panel, user: UserRow) -> dict[str, Any]:
    return {
        "id": user.id,
        "external_id": user.external_id,
        "uuid": user.uuid,
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "language": user.language,
        "root_admin": user.root_admin,
        "2fa": user.use_totp,
        "created_at": ts(user.created_at),
        "updated_at": ts(user.updated_at),
    }


def server_environment(panel: Panel, server: ServerRow) -> dict[str, Any]:
    environment: dict[str, Any] = {}
    for variable in panel.variables_of(server.egg_id):
        stored = server.variables.get(variable.id)
        environment[variable.env_variable] = (
            stored if stored is not None else variable.default_value
        )
    location = panel.location_of_node(server.node_id)
    environment["STARTUP"] = server.startup
    environment["P_SERVER_LOCATION"] = location.short if location else None
    environment["P_SERVER_UUID"] = server.uuid
    environment["P_SERVER_ALLOCATION_LIMIT"] = server.allocation_limit
    return environment


def server_attributes(panel: Panel, server: ServerRow) -> dict[str, Any]:
    installed = server.status not in (STATUS_INSTALLING, STATUS_INSTALL_FAILED)
    return {
        "id": server.id,
        "external_id": server.external_id,
        "uuid": server.uuid,
        "identifier": server.uuid_short,
        "name": server.name,
        "description": server.description,
        "status": server.status,
        "suspended": server.status == STATUS_SUSPENDED,
        "limits": {
            "memory": server.memory,
            "swap": server.swap,
            "disk": server.disk,
            "io": server.io,
            "cpu": server.cpu,
            "threads": server.threads,
            "oom_disabled": server.oom_disabled,
        },
        "feature_limits": {
            "databases": server.database_limit,
            "allocations": server.allocation_limit,
            "backups": server.backup_limit,
        },
        "user": server.owner_id,
        "node": server.node_id,
        "allocation": server.allocation_id,
        "nest": server.nest_id,
        "egg": server.egg_id,
        "container": {
            "startup_command": server.startup,
            "image": server.image,
            "installed": 1 if installed else 0,
            "environment": server_environment(panel, server),
        },
        "updated_at": ts(server.updated_at),
        "created_at": ts(server.created_at),
    }


def node_attributes(panel: Panel, node: NodeRow) -> dict[str, Any]:
    servers = [s for s in panel.servers.values() if s.node_id == node.id]
    return {
        "id": node.id,
        "uuid": node.uuid,
        "public": node.public,
        "name": node.name,
        "description": node.description,
        "location_id": node.location_id,
        "fqdn": node.fqdn,
        "scheme": node.scheme,
        "behind_proxy": node.behind_proxy,
        "maintenance_mode": node.maintenance_mode,
        "memory": node.memory,
        "memory_overallocate": node.memory_overallocate,
        "disk": node.disk,
        "disk_overallocate": node.disk_overallocate,
        "upload_size": node.upload_size,
        "daemon_listen": node.daemon_listen,
        "daemon_sftp": node.daemon_sftp,
        "daemon_base": node.daemon_base,
        "created_at": ts(node.created_at),
        "updated_at": ts(node.updated_at),
        "allocated_resources": {
            "memory": sum(s.memory for s in servers),
            "disk": sum(s.disk for s in servers),
        },
    }


def allocation_attributes(panel: Panel, allocation: AllocationRow) -> dict[str, Any]:
    return {
        "id": allocation.id,
        "ip": allocation.ip,
        "alias": allocation.ip_alias,
        "port": allocation.port,
        "notes": allocation.notes,
        "assigned": allocation.server_id is not None,
    }


def location_attributes(panel: Panel, location: LocationRow) -> dict[str, Any]:
    return {
        "id": location.id,
        "short": location.short,
        "long": location.long,
        "updated_at": ts(location.updated_at),
        "created_at": ts(location.created_at),
    }


def nest_attributes(panel: Panel, nest: NestRow) -> dict[str, Any]:
    return {
        "id": nest.id,
        "uuid": nest.uuid,
        "author": nest.author,
        "name": nest.name,
        "description": nest.description,
        "created_at": ts(nest.created_at),
        "updated_at": ts(nest.updated_at),
    }


def egg_attributes(panel: Panel, egg: EggRow) -> dict[str, Any]:
    images = dict(egg.docker_images)
    return {
        "id": egg.id,
        "uuid": egg.uuid,
        "name": egg.name,
        "nest": egg.nest_id,
        "author": egg.author,
        "description": egg.description,
        "docker_image": next(iter(images.values()), ""),
        "docker_images": images,
        "config": {
            "files": dict(egg.config_files),
            "startup": dict(egg.config_startup),
            "stop": egg.config_stop,
            "logs": dict(egg.config_logs),
            "file_denylist": list(egg.file_denylist),
            "extends": egg.config_from,
        },
        "startup": egg.startup,
        "script": {
            "privileged": egg.script_is_privileged,
            "install": egg.script_install,
            "entry": egg.script_entry,
            "container": egg.script_container,
            "extends": egg.copy_script_from,
        },
        "created_at": ts(egg.created_at),
        "updated_at": ts(egg.updated_at),
    }


def egg_variable_attributes(panel: Panel, variable: EggVariableRow) -> dict[str, Any]:
    return {
        "id": variable.id,
        "egg_id": variable.egg_id,
        "name": variable.name,
        "description": variable.description,
        "env_variable": variable.env_variable,
        "default_value": variable.default_value,
        "user_viewable": variable.user_viewable,
        "user_editable": variable.user_editable,
        "rules": variable.rules,
        "created_at": native_ts(variable.created_at),
        "updated_at": native_ts(variable.updated_at),
    }


def server_variable_attributes(panel: Panel, pair: tuple[ServerRow, EggVariableRow]) -> dict:
    server, variable = pair
    attributes = egg_variable_attributes(panel, variable)
    attributes["server_value"] = server.variables.get(variable.id)
    return attributes


ATTRIBUTES: dict[str, Callable[[Any, Any], dict[str, Any]]] = {
    "user": user_attributes,
    "server": server_attributes,
    "node": node_attributes,
    "allocation": allocation_attributes,
    "location": location_attributes,
    "nest": nest_attributes,
    "egg": egg_attributes,
    "egg_variable": egg_variable_attributes,
    "server_variable": server_variable_attributes,
}


# --------------------------------------------------------------------------- relationships

# object type -> include name -> (ACL resource, kind, related object type, getter)
Getter = Callable[[Any, Any], Any]


def _servers_of_user(panel: Panel, user: UserRow) -> list[ServerRow]:
    return [s for s in panel.sorted_servers() if s.owner_id == user.id]


RELATIONSHIPS: dict[str, dict[str, tuple[str, str, str, Getter]]] = {
    "user": {"servers": ("servers", "list", "server", _servers_of_user)},
    "server": {
        "allocations": (
            "allocations",
            "list",
            "allocation",
            lambda p, s: [a for a in p.sorted_allocations() if a.server_id == s.id],
        ),
        "user": ("users", "item", "user", lambda p, s: p.users.get(s.owner_id)),
        "subusers": ("users", "list", "subuser", lambda p, s: []),
        "nest": ("nests", "item", "nest", lambda p, s: p.nests.get(s.nest_id)),
        "egg": ("eggs", "item", "egg", lambda p, s: p.eggs.get(s.egg_id)),
        "variables": (
            "servers",
            "list",
            "server_variable",
            lambda p, s: [(s, v) for v in p.variables_of(s.egg_id)],
        ),
        "location": ("locations", "item", "location", lambda p, s: p.location_of_node(s.node_id)),
        "node": ("nodes", "item", "node", lambda p, s: p.nodes.get(s.node_id)),
        "databases": ("server_databases", "list", "server_database", lambda p, s: []),
    },
    "node": {
        "allocations": (
            "allocations",
            "list",
            "allocation",
            lambda p, n: [a for a in p.sorted_allocations() if a.node_id == n.id],
        ),
        "location": ("locations", "item", "location", lambda p, n: p.locations.get(n.location_id)),
        "servers": (
            "servers",
            "list",
            "server",
            lambda p, n: [s for s in p.sorted_servers() if s.node_id == n.id],
        ),
    },
    "allocation": {
        "node": ("nodes", "item", "node", lambda p, a: p.nodes.get(a.node_id)),
        "server": (
            "servers",
            "item",
            "server",
            lambda p, a: p.servers.get(a.server_id) if a.server_id else None,
        ),
    },
    "location": {
        "nodes": (
            "nodes",
            "list",
            "node",
            lambda p, loc: [n for n in p.sorted_nodes() if n.location_id == loc.id],
        ),
        "servers": (
            "servers",
            "list",
            "server",
            lambda p, loc: [
                s
                for s in p.sorted_servers()
                if p.nodes.get(s.node_id) and p.nodes[s.node_id].location_id == loc.id
            ],
        ),
    },
    "nest": {
        "eggs": (
            "eggs",
            "list",
            "egg",
            lambda p, n: [e for e in p.sorted_eggs() if e.nest_id == n.id],
        ),
        "servers": (
            "servers",
            "list",
            "server",
            lambda p, n: [s for s in p.sorted_servers() if s.nest_id == n.id],
        ),
    },
    "egg": {
        "nest": ("nests", "item", "nest", lambda p, e: p.nests.get(e.nest_id)),
        "servers": (
            "servers",
            "list",
            "server",
            lambda p, e: [s for s in p.sorted_servers() if s.egg_id == e.id],
        ),
        # Only eggs that extend another egg have an inherited config/script to show.
        "config": ("eggs", "item", "egg", lambda p, e: None),
        "script": ("eggs", "item", "egg", lambda p, e: None),
        "variables": ("eggs", "list", "egg_variable", lambda p, e: p.variables_of(e.id)),
    },
}


def can_read(key: ApiKeyRow | None, resource: str) -> bool:
    if key is None or key.key_type == "client":
        return True  # a root admin's client key passes every ACL check
    return bool(key.acl.get(resource, 0) & READ)


def render_item(
    panel: Panel, object_type: str, row: Any, includes: IncludeTree, key: ApiKeyRow | None
) -> dict[str, Any]:
    attributes = ATTRIBUTES[object_type](panel, row)
    relationships = _relationships(panel, object_type, row, includes, key)
    if relationships:
        attributes["relationships"] = relationships
    return {"object": object_type, "attributes": attributes}


def render_list(
    panel: Panel,
    object_type: str,
    rows: list[Any],
    includes: IncludeTree,
    key: ApiKeyRow | None,
) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [render_item(panel, object_type, row, includes, key) for row in rows],
    }


def _relationships(
    panel: Panel, object_type: str, row: Any, includes: IncludeTree, key: ApiKeyRow | None
) -> dict[str, Any]:
    if object_type == "server" and "transfer" in includes:
        raise IncludeError("Method includeTransfer does not exist")
    available = RELATIONSHIPS.get(object_type, {})
    result: dict[str, Any] = {}
    for name, nested in includes.items():
        if name not in available:
            continue  # unknown includes are silently ignored
        resource, kind, related_type, getter = available[name]
        if not can_read(key, resource):
            result[name] = dict(NULL_RESOURCE)
            continue
        related = getter(panel, row)
        if kind == "list":
            if related_type not in ATTRIBUTES:
                result[name] = {"object": "list", "data": []}
            else:
                result[name] = render_list(panel, related_type, related, nested, key)
        elif related is None:
            result[name] = dict(NULL_RESOURCE)
        else:
            result[name] = render_item(panel, related_type, related, nested, key)
    return result


def backup_attributes(backup: Any) -> dict[str, Any]:
    """app/Transformers/Api/Client/BackupTransformer.php (object "backup")."""
    return {
        "uuid": backup.uuid,
        "is_successful": backup.is_successful,
        "is_locked": backup.is_locked,
        "name": backup.name,
        "ignored_files": list(backup.ignored_files),
        "checksum": backup.checksum,
        "bytes": backup.bytes,
        "created_at": ts(backup.created_at),
        "completed_at": ts(backup.completed_at),
    }
