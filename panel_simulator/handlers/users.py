"""Application API: users."""

from __future__ import annotations

from panel_simulator.errors import model_not_found
from panel_simulator.handlers.base import Ctx, HandlerBase, partial_match
from panel_simulator.routes import A
from panel_simulator.state import UserRow
from panel_simulator.wire import SimResponse


class UserHandlers(HandlerBase):
    def _h_users_index(self, ctx: Ctx) -> SimResponse:
        rows = [self.panel.users[i] for i in sorted(self.panel.users)]
        rows = self._query(
            ctx,
            rows,
            {
                "email": partial_match(lambda u: u.email),
                "uuid": partial_match(lambda u: u.uuid),
                "username": partial_match(lambda u: u.username),
                "external_id": partial_match(lambda u: u.external_id),
            },
            {"id": lambda u: u.id, "uuid": lambda u: u.uuid},
        )
        return self._paginated(ctx, "user", rows)

    def _h_users_view(self, ctx: Ctx, user: UserRow) -> SimResponse:
        return self._item(ctx, "user", user)

    def _h_users_external(self, ctx: Ctx, external_id: str) -> SimResponse:
        row = self.panel.find_user_by_external_id(external_id)
        if row is None:
            raise model_not_found("User", external_id)
        return self._item(ctx, "user", row)

    def _h_users_store(self, ctx: Ctx) -> SimResponse:
        user = self.panel.create_user(ctx.body)
        meta = {"resource": f"{ctx.request.root_url.rstrip('/')}{A}/users/{user.id}"}
        return self._item(ctx, "user", user, 201, meta)

    def _h_users_update(self, ctx: Ctx, user: UserRow) -> SimResponse:
        return self._item(ctx, "user", self.panel.update_user(user, ctx.body))

    def _h_users_delete(self, ctx: Ctx, user: UserRow) -> SimResponse:
        self.panel.delete_user(user)
        return self._no_content()
