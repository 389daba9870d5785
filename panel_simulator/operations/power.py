"""The Client API's view of a server: conflicts, power signals and resource stats."""

from __future__ import annotations

from typing import Any

from panel_simulator.state import (
    STATUS_INSTALL_FAILED,
    STATUS_INSTALLING,
    STATUS_RESTORING_BACKUP,
    STATUS_SUSPENDED,
    ServerRow,
)
from panel_simulator.tables import (
    PanelTables,
)
from panel_simulator.validation import (
    validate,
)


class PowerOperations(PanelTables):
    def state_conflict(self, server: ServerRow) -> str | None:
        """ServerStateConflictException's message for this server, or None when usable."""
        node = self.nodes.get(server.node_id)
        if server.status == STATUS_SUSPENDED:
            return (
                "This server is currently suspended and the functionality requested is unavailable."
            )
        if node is not None and node.maintenance_mode:
            return (
                "The node of this server is currently under maintenance and the functionality "
                "requested is unavailable."
            )
        if server.status in (STATUS_INSTALLING, STATUS_INSTALL_FAILED):
            return (
                "This server has not yet completed its installation process, please try again "
                "later."
            )
        if server.status == STATUS_RESTORING_BACKUP:
            return "This server is currently restoring from a backup, please try again later."
        if server.transferring:
            return (
                "This server is currently being transferred to a new machine, please try again "
                "later."
            )
        return None

    def power(self, server: ServerRow, signal: str) -> None:
        validate({"signal": signal}, {"signal": "required|string|in:start,stop,restart,kill"})
        self._wings(server.node_id)
        if signal in ("start", "restart"):
            if signal == "restart" or server.power_state == "offline":
                server.started_at = self.now()
            server.power_state = "running"
        else:
            server.power_state, server.started_at = "offline", None

    def resources(self, server: ServerRow) -> dict[str, Any]:
        """Wings' stats, cached per server like the panel does."""
        now = self.now()
        cached = self._stats_cache.get(server.id)
        if cached is not None and cached[0] > now:
            return cached[1]
        self._wings(server.node_id)
        running = server.power_state == "running"
        uptime_ms = int((now - (server.started_at or now)) * 1000) if running else 0
        memory_limit = (server.memory or 1024) * 1024 * 1024
        stats = {
            "current_state": server.power_state,
            "is_suspended": server.status == STATUS_SUSPENDED,
            "resources": {
                "memory_bytes": int(memory_limit * 0.42) if running else 0,
                "cpu_absolute": round(min(server.cpu or 100, 100) * 0.125, 3) if running else 0,
                "disk_bytes": 157_286_400,
                "network_rx_bytes": (uptime_ms // 1000) * 2048 if running else 0,
                "network_tx_bytes": (uptime_ms // 1000) * 1024 if running else 0,
                "uptime": uptime_ms,
            },
        }
        self._stats_cache[server.id] = (now + self.stats_cache_seconds, stats)
        return stats
