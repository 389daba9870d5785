"""Application API: nodes, deployable nodes, configuration and allocations."""

from __future__ import annotations

from typing import Any

from panel_simulator.handlers.base import (
    Ctx,
    HandlerBase,
    exact_match,
    partial_match,
    server_id_filter,
)
from panel_simulator.routes import A
from panel_simulator.validation import (
    is_int_like,
    validate,
)
from panel_simulator.wire import SimResponse


class NodeHandlers(HandlerBase):
    def _h_nodes_index(self, ctx: Ctx) -> SimResponse:
        rows = self._query(
            ctx,
            self.panel.sorted_nodes(),
            {
                "uuid": partial_match(lambda n: n.uuid),
                "name": partial_match(lambda n: n.name),
                "fqdn": partial_match(lambda n: n.fqdn),
                "daemon_token_id": partial_match(lambda n: n.daemon_token_id),
            },
            {
                "id": lambda n: n.id,
                "uuid": lambda n: n.uuid,
                "memory": lambda n: n.memory,
                "disk": lambda n: n.disk,
            },
        )
        return self._paginated(ctx, "node", rows)

    def _h_nodes_view(self, ctx: Ctx, node: Any) -> SimResponse:
        return self._item(ctx, "node", node)

    def _h_nodes_deployable(self, ctx: Ctx) -> SimResponse:
        validate(
            ctx.query,
            {
                "page": "integer",
                "memory": "required|integer|min:0",
                "disk": "required|integer|min:0",
                "location_ids": "array",
                "location_ids.*": "integer",
            },
        )
        locations = ctx.query.get("location_ids") or []
        if isinstance(locations, dict):
            locations = list(locations.values())
        node_ids = self.panel.viable_nodes(
            memory=ctx.query["memory"],
            disk=ctx.query["disk"],
            locations=[int(x) for x in locations if is_int_like(x)],
        )
        rows = [self.panel.nodes[i] for i in node_ids]
        if ctx.query.get("page") is None:
            return self._list(ctx, "node", rows)
        return self._paginated(ctx, "node", rows)

    def _h_nodes_config(self, ctx: Ctx, node: Any) -> SimResponse:
        root = ctx.request.root_url.rstrip("/")
        return self._json(
            ctx,
            {
                "debug": False,
                "uuid": node.uuid,
                "token_id": node.daemon_token_id,
                "token": node.daemon_token,
                "api": {
                    "host": "0.0.0.0",  # noqa: S104 - the panel's literal value
                    "port": node.daemon_listen,
                    "ssl": {
                        "enabled": node.scheme == "https" and not node.behind_proxy,
                        "cert": f"/etc/letsencrypt/live/{node.fqdn}/fullchain.pem",
                        "key": f"/etc/letsencrypt/live/{node.fqdn}/privkey.pem",
                    },
                    "upload_limit": node.upload_size,
                },
                "system": {"data": node.daemon_base, "sftp": {"bind_port": node.daemon_sftp}},
                "allowed_mounts": [],
                "remote": root,
            },
        )

    def _h_nodes_store(self, ctx: Ctx) -> SimResponse:
        node = self.panel.save_node(None, ctx.body)
        meta = {"resource": f"{ctx.request.root_url.rstrip('/')}{A}/nodes/{node.id}"}
        return self._item(ctx, "node", node, 201, meta)

    def _h_nodes_update(self, ctx: Ctx, node: Any) -> SimResponse:
        return self._item(ctx, "node", self.panel.save_node(node, ctx.body))

    def _h_nodes_delete(self, ctx: Ctx, node: Any) -> SimResponse:
        self.panel.delete_node(node)
        return self._no_content()

    def _h_allocations_index(self, ctx: Ctx, node: Any) -> SimResponse:
        rows = [a for a in self.panel.sorted_allocations() if a.node_id == node.id]
        rows = self._query(
            ctx,
            rows,
            {
                "ip": exact_match(lambda a: a.ip),
                "port": exact_match(lambda a: a.port),
                "ip_alias": partial_match(lambda a: a.ip_alias),
                "server_id": server_id_filter,
            },
            None,
        )
        return self._paginated(ctx, "allocation", rows)

    def _h_allocations_store(self, ctx: Ctx, node: Any) -> SimResponse:
        self.panel.create_allocations(node, ctx.body)
        return self._no_content()

    def _h_allocations_delete(self, ctx: Ctx, node: Any, allocation: Any) -> SimResponse:
        self.panel.delete_allocation(allocation)
        return self._no_content()
