"""Application API: servers (create, build, startup, suspend, reinstall, delete)."""

from __future__ import annotations

from panel_simulator.errors import model_not_found
from panel_simulator.handlers.base import Ctx, HandlerBase, partial_match
from panel_simulator.state import ServerRow
from panel_simulator.wire import SimResponse


class ServerHandlers(HandlerBase):
    def _h_servers_index(self, ctx: Ctx) -> SimResponse:
        rows = self._query(
            ctx,
            self.panel.sorted_servers(),
            {
                "uuid": partial_match(lambda s: s.uuid),
                "uuidShort": partial_match(lambda s: s.uuid_short),
                "name": partial_match(lambda s: s.name),
                "description": partial_match(lambda s: s.description),
                "image": partial_match(lambda s: s.image),
                "external_id": partial_match(lambda s: s.external_id),
            },
            {"id": lambda s: s.id, "uuid": lambda s: s.uuid},
        )
        return self._paginated(ctx, "server", rows)

    def _h_servers_view(self, ctx: Ctx, server: ServerRow) -> SimResponse:
        return self._item(ctx, "server", server)

    def _h_servers_external(self, ctx: Ctx, external_id: str) -> SimResponse:
        row = self.panel.find_server_by_external_id(external_id)
        if row is None:
            raise model_not_found("Server", external_id)
        return self._item(ctx, "server", row)

    def _h_servers_store(self, ctx: Ctx) -> SimResponse:
        server = self.panel.create_server(ctx.body)
        return self._item(ctx, "server", server, 201)  # no meta on server create

    def _h_servers_details(self, ctx: Ctx, server: ServerRow) -> SimResponse:
        return self._item(ctx, "server", self.panel.update_details(server, ctx.body))

    def _h_servers_build(self, ctx: Ctx, server: ServerRow) -> SimResponse:
        return self._item(ctx, "server", self.panel.update_build(server, ctx.body))

    def _h_servers_startup(self, ctx: Ctx, server: ServerRow) -> SimResponse:
        return self._item(ctx, "server", self.panel.update_startup(server, ctx.body))

    def _h_servers_suspend(self, ctx: Ctx, server: ServerRow) -> SimResponse:
        self.panel.suspend(server, True)
        return self._no_content()

    def _h_servers_unsuspend(self, ctx: Ctx, server: ServerRow) -> SimResponse:
        self.panel.suspend(server, False)
        return self._no_content()

    def _h_servers_reinstall(self, ctx: Ctx, server: ServerRow) -> SimResponse:
        self.panel.reinstall(server)
        return self._no_content()

    def _h_servers_delete(self, ctx: Ctx, server: ServerRow, force: str = "") -> SimResponse:
        self.panel.delete_server(server, force=force == "force")
        return self._no_content()
