"""Nodes, their allocations (ip:port pairs), locations, nests and eggs of the Application API."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from provisioning.pterodactyl.application.common import filter_params, include_param
from provisioning.pterodactyl.errors import PanelNotFound
from provisioning.pterodactyl.transport import ClientBase, RetryPolicy
from provisioning.pterodactyl.types import Allocation, Egg, Location, Nest, Node, Page


class NodesAPI(ClientBase):
    """What servers are placed on and built from: nodes and ports, locations, nests and eggs."""

    # ================================================================== nodes & allocations

    def list_nodes(self, *, include: Iterable[str] = (), per_page: int = 100) -> list[Node]:
        return list(
            self._paginate(
                "/nodes", Node.from_api, "nodes", params=include_param(include), per_page=per_page
            )
        )

    def get_node(self, node_id: int, *, include: Iterable[str] = ()) -> Node:
        return Node.from_api(self._get(f"/nodes/{int(node_id)}", include_param(include)))

    def list_allocations(self, node_id: int, *, ip: str | None = None) -> list[Allocation]:
        """Every allocation of a node, free or taken (``ip``: only those on that address)."""
        params: list[tuple[str, Any]] = [] if ip is None else [("filter[ip]", ip)]
        return list(
            self._paginate(
                f"/nodes/{int(node_id)}/allocations",
                Allocation.from_api,
                "allocations",
                params=params,
                per_page=500,
            )
        )

    def list_free_allocations(
        self, node_id: int, *, limit: int | None = None, skip: Iterable[tuple[str, int]] = ()
    ) -> list[Allocation]:
        """The node's free allocations (the panel filters them), lowest ports first in the
        panel's order. ``limit``: at most that many, reading only as many pages as it takes (a
        node with thousands of free ports costs one request, not a walk through all of them).
        ``skip``: (ip, port) pairs the caller cannot use (claimed by others), not counted."""
        unusable = set(skip)
        per_page = 500 if limit is None else min(500, max(10, limit + len(unusable)))
        found: list[Allocation] = []
        for item in self._paginate(
            f"/nodes/{int(node_id)}/allocations",
            Allocation.from_api,
            "allocations",
            params=[("filter[server_id]", "false")],
            per_page=per_page,
        ):
            if item.assigned or (item.ip, item.port) in unusable:
                continue
            found.append(item)
            if limit is not None and len(found) >= limit:
                break
        return found

    def create_allocations(
        self,
        node_id: int,
        *,
        ip: str,
        ports: Iterable[int | str],
        alias: str | None = None,
    ) -> list[Allocation]:
        """POST /nodes/{id}/allocations (ports like 25565 or "25565-25600"), then list them.

        The panel returns 204 without ids and skips rows that already exist, so calling this
        again is harmless; it is still sent once per call (creates are never auto-repeated).
        Returns the node's allocations on ``ip`` whose port was asked for.
        """
        port_strings = [str(port) for port in ports]
        body: dict[str, Any] = {"ip": ip, "ports": port_strings}
        if alias is not None:
            body["alias"] = alias
        self._t.request(
            "POST", f"/nodes/{int(node_id)}/allocations", body=body, retry=RetryPolicy.ONCE
        )
        wanted: set[int] = set()
        for entry in port_strings:
            if "-" in entry:
                start, _, end = entry.partition("-")
                wanted.update(range(int(start), int(end) + 1))
            elif entry.isdigit():
                wanted.add(int(entry))
        return [item for item in self.list_allocations(node_id, ip=ip) if item.port in wanted]

    def delete_allocation(
        self, node_id: int, allocation_id: int, *, missing_ok: bool = False
    ) -> None:
        """400 PanelBadRequest (ServerUsingAllocationException) while a server holds it."""
        try:
            self._t.request("DELETE", f"/nodes/{int(node_id)}/allocations/{int(allocation_id)}")
        except PanelNotFound:
            if not missing_ok:
                raise

    # ================================================================== locations, nests, eggs

    def list_locations(
        self, *, short: str | None = None, long: str | None = None
    ) -> list[Location]:
        params = filter_params(short=short, long=long)
        return list(self._paginate("/locations", Location.from_api, "locations", params=params))

    def list_nests(self) -> list[Nest]:
        return list(self._paginate("/nests", Nest.from_api, "nests"))

    def list_eggs(self, nest_id: int, *, include_variables: bool = True) -> list[Egg]:
        """Eggs of a nest (the panel does not paginate this list)."""
        params = include_param(["variables"] if include_variables else [])
        payload = self._get(f"/nests/{int(nest_id)}/eggs", params)
        return list(Page.from_api(payload, Egg.from_api, "eggs").items)

    def get_egg(self, nest_id: int, egg_id: int) -> Egg:
        """One egg with its variables (for defaults and rules)."""
        payload = self._get(
            f"/nests/{int(nest_id)}/eggs/{int(egg_id)}", include_param(["variables"])
        )
        return Egg.from_api(payload)
