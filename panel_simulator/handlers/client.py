"""Client API: the servers a user can see, resources, power, the websocket token, backups."""

from __future__ import annotations

import math
from typing import Any

from panel_simulator import transformers as tf
from panel_simulator.errors import ApiError
from panel_simulator.handlers.base import (
    Ctx,
    HandlerBase,
    current_page_of,
    partial_match,
    per_page_of,
    user_of,
)
from panel_simulator.state import ServerRow, UserRow
from panel_simulator.validation import (
    php_string,
    validate,
)
from panel_simulator.wire import SimResponse


class ClientHandlers(HandlerBase):
    def _client_server_payload(self, server: ServerRow, user: UserRow) -> dict[str, Any]:
        panel = self.panel
        node = panel.nodes[server.node_id]
        egg = panel.eggs.get(server.egg_id)
        environment = tf.server_environment(panel, server)
        primary = panel.allocations.get(server.allocation_id)
        invocation = server.startup
        replacements = {
            "SERVER_MEMORY": str(server.memory),
            "SERVER_IP": primary.ip if primary else "",
            "SERVER_PORT": str(primary.port) if primary else "",
            **{k: php_string(v) for k, v in environment.items()},
        }
        for name, value in replacements.items():
            invocation = invocation.replace("{{" + name + "}}", value)
        allocations = [a for a in panel.sorted_allocations() if a.server_id == server.id]
        variables = [v for v in panel.variables_of(server.egg_id) if v.user_viewable]
        return {
            "object": "server",
            "attributes": {
                "server_owner": server.owner_id == user.id,
                "identifier": server.uuid_short,
                "internal_id": server.id,
                "uuid": server.uuid,
                "name": server.name,
                "node": node.name,
                "is_node_under_maintenance": node.maintenance_mode,
                "sftp_details": {"ip": node.fqdn, "port": node.daemon_sftp},
                "description": server.description,
                "limits": {
                    "memory": server.memory,
                    "swap": server.swap,
                    "disk": server.disk,
                    "io": server.io,
                    "cpu": server.cpu,
                    "threads": server.threads,
                    "oom_disabled": server.oom_disabled,
                },
                "invocation": invocation,
                "docker_image": server.image,
                "egg_features": egg.features if egg else None,
                "feature_limits": {
                    "databases": server.database_limit,
                    "allocations": server.allocation_limit,
                    "backups": server.backup_limit,
                },
                "status": server.status,
                "is_suspended": server.status == "suspended",
                "is_installing": server.status in ("installing", "install_failed"),
                "is_transferring": server.transferring,
                "relationships": {
                    "allocations": {
                        "object": "list",
                        "data": [
                            {
                                "object": "allocation",
                                "attributes": {
                                    "id": a.id,
                                    "ip": a.ip,
                                    "ip_alias": a.ip_alias,
                                    "port": a.port,
                                    "notes": a.notes,
                                    "is_default": a.id == server.allocation_id,
                                },
                            }
                            for a in allocations
                        ],
                    },
                    "variables": {
                        "object": "list",
                        "data": [
                            {
                                "object": "egg_variable",
                                "attributes": {
                                    "name": v.name,
                                    "description": v.description,
                                    "env_variable": v.env_variable,
                                    "default_value": v.default_value,
                                    "server_value": server.variables.get(v.id),
                                    "is_editable": v.user_editable,
                                    "rules": v.rules,
                                },
                            }
                            for v in variables
                        ],
                    },
                },
            },
        }

    def _h_client_index(self, ctx: Ctx) -> SimResponse:
        user = user_of(ctx)
        kind = ctx.query.get("type")
        servers = self.panel.sorted_servers()
        if kind in ("admin", "admin-all") and user.root_admin:
            rows = servers if kind == "admin-all" else [s for s in servers if s.owner_id != user.id]
        else:
            rows = [s for s in servers if s.owner_id == user.id]
        rows = self._query(
            ctx,
            rows,
            {
                "uuid": partial_match(lambda s: s.uuid),
                "name": partial_match(lambda s: s.name),
                "description": partial_match(lambda s: s.description),
                "external_id": partial_match(lambda s: s.external_id),
                "*": lambda s, v: any(
                    partial_match(getter)(s, v)
                    for getter in (lambda x: x.name, lambda x: x.uuid, lambda x: x.external_id)
                ),
            },
            None,
        )
        per_page = min(per_page_of(ctx.query.get("per_page"), 50), 100)
        page = current_page_of(ctx.query.get("page"))
        total = len(rows)
        last_page = max(math.ceil(total / per_page), 1)
        items = rows[(page - 1) * per_page : page * per_page]
        links: dict[str, str] = {}
        if page > 1:
            links["previous"] = f"{ctx.url}?page={page - 1}"
        if page < last_page:
            links["next"] = f"{ctx.url}?page={page + 1}"
        return self._json(
            ctx,
            {
                "object": "list",
                "data": [self._client_server_payload(s, user) for s in items],
                "meta": {
                    "pagination": {
                        "total": total,
                        "count": len(items),
                        "per_page": per_page,
                        "current_page": page,
                        "total_pages": last_page,
                        "links": links,
                    }
                },
            },
        )

    def _h_client_server(self, ctx: Ctx, server: ServerRow) -> SimResponse:
        return self._json(ctx, self._client_server_payload(server, user_of(ctx)))

    def _conflict(self, server: ServerRow) -> None:
        message = self.panel.state_conflict(server)
        if message is not None:
            raise ApiError(409, "ServerStateConflictException", message)

    def _h_client_resources(self, ctx: Ctx, server: ServerRow) -> SimResponse:
        self._conflict(server)
        stats = self.panel.resources(server)
        return self._json(ctx, {"object": "stats", "attributes": stats})

    def _h_client_power(self, ctx: Ctx, server: ServerRow) -> SimResponse:
        self._conflict(server)
        validate(ctx.body, {"signal": "required|string|in:start,stop,restart,kill"})
        self.panel.power(server, ctx.body["signal"])
        return self._no_content()

    def _h_client_websocket(self, ctx: Ctx, server: ServerRow) -> SimResponse:
        node = self.panel.nodes[server.node_id]
        if (
            ctx.user is None
            or not ctx.user.root_admin
            or server.status == "suspended"
            or node.maintenance_mode
        ):
            self._conflict(server)
        token = self.panel.random_string(64)
        return self._json(
            ctx,
            {
                "data": {
                    "token": token,
                    "socket": f"wss://{node.fqdn}:{node.daemon_listen}/api/servers/{server.uuid}/ws",
                }
            },
        )

    # ------------------------------------------------------------------ backups
    # Every backup route sits behind AuthenticateServerAccess: a suspended (or installing,
    # restoring, transferring) server answers 409, root admins included.

    def _h_client_backups_index(self, ctx: Ctx, server: ServerRow) -> SimResponse:
        self._conflict(server)
        rows = self.panel.backups_of(server)
        per_page = min(per_page_of(ctx.query.get("per_page"), 20), 50)
        page = current_page_of(ctx.query.get("page"))
        total = len(rows)
        last_page = max(math.ceil(total / per_page), 1)
        items = rows[(page - 1) * per_page : page * per_page]
        links: dict[str, str] = {}
        if page > 1:
            links["previous"] = f"{ctx.url}?page={page - 1}"
        if page < last_page:
            links["next"] = f"{ctx.url}?page={page + 1}"
        return self._json(
            ctx,
            {
                "object": "list",
                "data": [
                    {"object": "backup", "attributes": tf.backup_attributes(b)} for b in items
                ],
                "meta": {
                    "pagination": {
                        "total": total,
                        "count": len(items),
                        "per_page": per_page,
                        "current_page": page,
                        "total_pages": last_page,
                        "links": links,
                    },
                    "backup_count": len(self.panel.non_failed_backups(server)),
                },
            },
        )

    def _h_client_backups_store(self, ctx: Ctx, server: ServerRow) -> SimResponse:
        self._conflict(server)
        backup = self.panel.create_backup(server, ctx.body)
        # The controller returns the fractal array: 200, not 201.
        return self._json(ctx, {"object": "backup", "attributes": tf.backup_attributes(backup)})

    def _h_client_backups_view(self, ctx: Ctx, server: ServerRow, backup: str) -> SimResponse:
        self._conflict(server)
        row = self.panel.backup_of(server, backup)
        return self._json(ctx, {"object": "backup", "attributes": tf.backup_attributes(row)})
