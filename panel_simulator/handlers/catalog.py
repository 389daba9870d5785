"""Application API: locations, nests and eggs."""

from __future__ import annotations

from typing import Any

from panel_simulator.handlers.base import Ctx, HandlerBase, partial_match
from panel_simulator.routes import A
from panel_simulator.wire import SimResponse


class CatalogHandlers(HandlerBase):
    def _h_locations_index(self, ctx: Ctx) -> SimResponse:
        rows = [self.panel.locations[i] for i in sorted(self.panel.locations)]
        rows = self._query(
            ctx,
            rows,
            {
                "short": partial_match(lambda loc: loc.short),
                "long": partial_match(lambda loc: loc.long),
            },
            {"id": lambda loc: loc.id},
        )
        return self._paginated(ctx, "location", rows)

    def _h_locations_view(self, ctx: Ctx, location: Any) -> SimResponse:
        return self._item(ctx, "location", location)

    def _h_locations_store(self, ctx: Ctx) -> SimResponse:
        location = self.panel.save_location(None, ctx.body)
        meta = {"resource": f"{ctx.request.root_url.rstrip('/')}{A}/locations/{location.id}"}
        return self._item(ctx, "location", location, 201, meta)

    def _h_locations_update(self, ctx: Ctx, location: Any) -> SimResponse:
        return self._item(ctx, "location", self.panel.save_location(location, ctx.body))

    def _h_locations_delete(self, ctx: Ctx, location: Any) -> SimResponse:
        self.panel.delete_location(location)
        return self._no_content()

    def _h_nests_index(self, ctx: Ctx) -> SimResponse:
        rows = [self.panel.nests[i] for i in sorted(self.panel.nests)]
        return self._paginated(ctx, "nest", rows)  # no filters or sorts declared: ignored

    def _h_nests_view(self, ctx: Ctx, nest: Any) -> SimResponse:
        return self._item(ctx, "nest", nest)

    def _h_eggs_index(self, ctx: Ctx, nest: Any) -> SimResponse:
        rows = [egg for egg in self.panel.sorted_eggs() if egg.nest_id == nest.id]
        return self._list(ctx, "egg", rows)  # not paginated: no meta

    def _h_eggs_view(self, ctx: Ctx, nest: Any, egg: Any) -> SimResponse:
        return self._item(ctx, "egg", egg)
