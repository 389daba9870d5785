"""The panel's routes (method, path pattern, handler name, API, ACL resource)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# =========================================================================== routing


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: str
    api: str  # "application" | "client"
    resource: str | None = None  # ACL resource for application keys


def _route(method: str, path: str, handler: str, api: str, resource: str | None = None) -> Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return Route(method, re.compile(f"^{regex}$"), handler, api, resource)


A = "/api/application"
ROUTES: list[Route] = [
    # users
    _route("GET", f"{A}/users", "users_index", "application", "users"),
    _route("GET", f"{A}/users/external/{{external_id}}", "users_external", "application", "users"),
    _route("GET", f"{A}/users/{{user}}", "users_view", "application", "users"),
    _route("POST", f"{A}/users", "users_store", "application", "users"),
    _route("PATCH", f"{A}/users/{{user}}", "users_update", "application", "users"),
    _route("DELETE", f"{A}/users/{{user}}", "users_delete", "application", "users"),
    # nodes and allocations
    _route("GET", f"{A}/nodes", "nodes_index", "application", "nodes"),
    _route("GET", f"{A}/nodes/deployable", "nodes_deployable", "application", "nodes"),
    _route("GET", f"{A}/nodes/{{node}}", "nodes_view", "application", "nodes"),
    _route("GET", f"{A}/nodes/{{node}}/configuration", "nodes_config", "application", "nodes"),
    _route("POST", f"{A}/nodes", "nodes_store", "application", "nodes"),
    _route("PATCH", f"{A}/nodes/{{node}}", "nodes_update", "application", "nodes"),
    _route("DELETE", f"{A}/nodes/{{node}}", "nodes_delete", "application", "nodes"),
    _route(
        "GET", f"{A}/nodes/{{node}}/allocations", "allocations_index", "application", "allocations"
    ),
    _route(
        "POST", f"{A}/nodes/{{node}}/allocations", "allocations_store", "application", "allocations"
    ),
    _route(
        "DELETE",
        f"{A}/nodes/{{node}}/allocations/{{allocation}}",
        "allocations_delete",
        "application",
        "allocations",
    ),
    # locations
    _route("GET", f"{A}/locations", "locations_index", "application", "locations"),
    _route("GET", f"{A}/locations/{{location}}", "locations_view", "application", "locations"),
    _route("POST", f"{A}/locations", "locations_store", "application", "locations"),
    _route("PATCH", f"{A}/locations/{{location}}", "locations_update", "application", "locations"),
    _route("DELETE", f"{A}/locations/{{location}}", "locations_delete", "application", "locations"),
    # servers
    _route("GET", f"{A}/servers", "servers_index", "application", "servers"),
    _route(
        "GET", f"{A}/servers/external/{{external_id}}", "servers_external", "application", "servers"
    ),
    _route("GET", f"{A}/servers/{{server}}", "servers_view", "application", "servers"),
    _route("POST", f"{A}/servers", "servers_store", "application", "servers"),
    _route("PATCH", f"{A}/servers/{{server}}/details", "servers_details", "application", "servers"),
    _route("PATCH", f"{A}/servers/{{server}}/build", "servers_build", "application", "servers"),
    _route("PATCH", f"{A}/servers/{{server}}/startup", "servers_startup", "application", "servers"),
    _route("POST", f"{A}/servers/{{server}}/suspend", "servers_suspend", "application", "servers"),
    _route(
        "POST", f"{A}/servers/{{server}}/unsuspend", "servers_unsuspend", "application", "servers"
    ),
    _route(
        "POST", f"{A}/servers/{{server}}/reinstall", "servers_reinstall", "application", "servers"
    ),
    _route(
        "DELETE", f"{A}/servers/{{server}}/{{force}}", "servers_delete", "application", "servers"
    ),
    _route("DELETE", f"{A}/servers/{{server}}", "servers_delete", "application", "servers"),
    # nests and eggs
    _route("GET", f"{A}/nests", "nests_index", "application", "nests"),
    _route("GET", f"{A}/nests/{{nest}}", "nests_view", "application", "nests"),
    _route("GET", f"{A}/nests/{{nest}}/eggs", "eggs_index", "application", "eggs"),
    _route("GET", f"{A}/nests/{{nest}}/eggs/{{egg}}", "eggs_view", "application", "eggs"),
    # client API
    _route("GET", "/api/client", "client_index", "client"),
    _route("GET", "/api/client/servers/{server}", "client_server", "client"),
    _route("GET", "/api/client/servers/{server}/resources", "client_resources", "client"),
    _route("POST", "/api/client/servers/{server}/power", "client_power", "client"),
    _route("GET", "/api/client/servers/{server}/websocket", "client_websocket", "client"),
    # backups (routes/api-client.php, prefix /backups)
    _route("GET", "/api/client/servers/{server}/backups", "client_backups_index", "client"),
    _route("POST", "/api/client/servers/{server}/backups", "client_backups_store", "client"),
    _route("GET", "/api/client/servers/{server}/backups/{backup}", "client_backups_view", "client"),
]
