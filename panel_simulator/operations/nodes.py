"""Allocations, locations and nodes."""

from __future__ import annotations

import ipaddress
from typing import Any

from panel_simulator.errors import display_error
from panel_simulator.state import (
    AllocationRow,
    LocationRow,
    NodeRow,
)
from panel_simulator.tables import (
    PORT_RANGE,
    PanelTables,
    _as_list,
)
from panel_simulator.validation import (
    Custom,
    is_int_like,
    php_bool,
    php_string,
    to_db_int,
    validate,
)


class NodeOperations(PanelTables):
    def create_allocations(self, node: NodeRow, data: dict[str, Any]) -> None:
        validate(
            data,
            {
                "ip": "required|string",
                "alias": "sometimes|nullable|string|max:191",
                "ports": "required|array",
                "ports.*": "string",
            },
        )
        ip_text = data["ip"]
        parts = ip_text.split("/")
        if len(parts) != 1 and (not parts[1].isdigit() or not 25 <= int(parts[1]) <= 32):
            raise display_error(
                "CIDR notation only allows masks between /25 and /32.", "CidrOutOfRangeException"
            )
        try:
            network = ipaddress.IPv4Network(ip_text, strict=False)
        except ValueError:
            raise display_error(
                f"Could not parse provided allocation IP address ({ip_text}): Invalid IP address "
                "format"
            ) from None
        rows: list[tuple[str, int]] = []
        for ip in network:
            for port in _as_list(data["ports"]):
                port_text = php_string(port)
                match = PORT_RANGE.match(port_text)
                if not port_text.isdigit() and not match:
                    raise display_error(
                        f"The mapping provided for {port_text} was invalid and could not be "
                        "processed.",
                        "InvalidPortMappingException",
                    )
                if match:
                    start, end = int(match.group(1)), int(match.group(2))
                    block = range(start, end + 1) if start <= end else range(start, end - 1, -1)
                    if len(block) > 1000:
                        raise display_error(
                            "Adding more than 1000 ports in a single range at once is not "
                            "supported.",
                            "TooManyPortsInRangeException",
                        )
                    ports = list(block)
                else:
                    ports = [int(port_text)]
                for unit in ports:
                    if unit <= 1024 or unit > 65535:
                        raise display_error(
                            "Ports in an allocation must be greater than 1024 and less than or "
                            "equal to 65535.",
                            "PortOutOfRangeException",
                        )
                    rows.append((str(ip), unit))
        # All or nothing (one transaction); existing (node, ip, port) rows are skipped.
        alias = data.get("alias")
        for ip, port in rows:
            self.add_allocations(node.id, ip, [port], alias)

    def delete_allocation(self, allocation: AllocationRow) -> None:
        if allocation.server_id is not None:
            raise display_error(
                "A server is currently assigned to this allocation. An allocation can only be "
                "deleted if no server is currently assigned.",
                "ServerUsingAllocationException",
            )
        del self.allocations[allocation.id]

    # ================================================================== locations & nodes

    def _location_short_taken(self, value: Any, ignore_id: int | None) -> bool:
        wanted = php_string(value).lower()
        return any(
            loc.short.lower() == wanted for loc in self.locations.values() if loc.id != ignore_id
        )

    def save_location(self, location: LocationRow | None, data: dict[str, Any]) -> LocationRow:
        ignore = location.id if location else None
        short_rules: list[Any] = [
            "required",
            "string",
            "between:1,60",
            Custom.unique(lambda v: not self._location_short_taken(v, ignore)),
        ]
        long_rules = "string|nullable|between:1,191"
        if location is not None:
            short_rules = ["sometimes", *short_rules]
            long_rules = "sometimes|" + long_rules
        validate(data, {"short": short_rules, "long": long_rules})
        if location is None:
            return self.add_location(data["short"], data.get("long"))
        if "short" in data:
            location.short = data["short"]
        if "long" in data:
            location.long = data["long"]
        self._touch(location)
        return location

    def delete_location(self, location: LocationRow) -> None:
        if any(node.location_id == location.id for node in self.nodes.values()):
            raise display_error(
                "Cannot delete a location that has active nodes attached to it.",
                "HasActiveNodesException",
            )
        del self.locations[location.id]

    def save_node(self, node: NodeRow | None, data: dict[str, Any]) -> NodeRow:
        """POST/PATCH /nodes, with the node rules (simplified: see the module docs)."""
        prefix = "sometimes|" if node is not None else ""
        rules = {
            "name": prefix + r"required|regex:/^([\w .-]{1,100})$/",
            "location_id": [
                *(["sometimes"] if node else []),
                "required",
                Custom.exists(lambda v: is_int_like(v) and int(v) in self.locations),
            ],
            "fqdn": prefix + "required|string",
            "scheme": prefix + "required",
            "public": "boolean",
            "behind_proxy": "boolean",
            "maintenance_mode": "boolean",
            "memory": prefix + "required|numeric|min:1",
            "memory_overallocate": "sometimes|numeric|min:-1",
            "disk": prefix + "required|numeric|min:1",
            "disk_overallocate": "sometimes|numeric|min:-1",
            "upload_size": "sometimes|integer|between:1,1024",
            "daemon_listen": "sometimes|numeric|between:1,65535",
            "daemon_sftp": "sometimes|numeric|between:1,65535",
            "daemon_base": r"sometimes|required|regex:/^([\/][\d\w.\-\/]+)$/",
        }
        validate(data, rules)
        ints = (
            "memory",
            "disk",
            "memory_overallocate",
            "disk_overallocate",
            "upload_size",
            "daemon_listen",
            "daemon_sftp",
            "location_id",
        )
        bools = ("public", "behind_proxy", "maintenance_mode")
        fields: dict[str, Any] = {}
        for key in (*ints, *bools, "name", "fqdn", "scheme", "daemon_base"):
            if key in data and data[key] is not None:
                value = data[key]
                fields[key] = (
                    to_db_int(value) if key in ints else php_bool(value) if key in bools else value
                )
        if node is None:
            return self.add_node(**fields)
        for key, value in fields.items():
            setattr(node, key, value)
        if php_bool(data.get("reset_secret")):
            node.daemon_token_id = self.random_string(16)
            node.daemon_token = self.random_string(64)
        self._touch(node)
        return node

    def delete_node(self, node: NodeRow) -> None:
        if any(server.node_id == node.id for server in self.servers.values()):
            raise display_error(
                "A node must have no servers linked to it in order to be deleted.",
                "HasActiveServersException",
            )
        for allocation_id in [a.id for a in self.allocations.values() if a.node_id == node.id]:
            del self.allocations[allocation_id]
        del self.nodes[node.id]
