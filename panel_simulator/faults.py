"""Fault injection: make the simulated panel slow, failing, throttled or silent on purpose.

A fault matches requests by method and a regex on the path (``re.search``) and applies to the
next ``times`` matching requests (None = until cleared). Kinds:

- ``latency``: wait ``seconds`` before handling the request normally.
- ``status``: answer ``status`` without doing anything. ``body`` is ``"json"`` (the panel's
  error shape) or ``"html"`` (what nginx sends for a 502/503/504).
- ``rate_limit``: answer the panel's exact 429 (Retry-After = ``retry_after``) without doing
  anything.
- ``connect_timeout``: the request never reaches the panel. The ``responses`` helper raises
  ``requests.ConnectTimeout``; the socket server waits ``seconds`` and then answers 504.
- ``connection_error``: like connect_timeout, but ``requests.ConnectionError``.
- ``read_timeout``: the panel handles the request (``commit=True``, the default) but the reply
  never comes: ``requests.ReadTimeout`` from the helper, a ``seconds`` long stall from the
  socket server.
- ``lost_reply``: the panel handles the request (a create commits) but the caller gets
  ``status`` (default 504) with nginx's HTML page, as when a proxy gives up waiting.

Wings being down is not a fault here but node state: ``Panel.set_wings_failure(node_id, ...)``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_KINDS = (
    "latency",
    "status",
    "rate_limit",
    "connect_timeout",
    "connection_error",
    "read_timeout",
    "lost_reply",
)


@dataclass
class Fault:
    kind: str
    method: str = "*"
    path: str = ".*"
    times: int | None = 1
    status: int = 500
    seconds: float = 0.0
    retry_after: int = 60
    body: str = "json"
    commit: bool = True
    hits: int = field(default=0)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {FAULT_KINDS}")
        if self.kind == "lost_reply" and self.status == 500:
            self.status = 504
        if self.kind in ("connect_timeout", "read_timeout") and not self.seconds:
            self.seconds = 35.0  # past the client's default 30 s read timeout
        self.method = self.method.upper()
        self._pattern = re.compile(self.path)

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method not in ("*", method.upper()):
            return False
        return bool(self._pattern.search(path))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_pattern", None)
        return data


class FaultInjector:
    """Thread-safe list of active faults; the first match per request is consumed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, kind: str, **options: Any) -> Fault:
        fault = Fault(kind=kind, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if f.times is None or f.hits < f.times]

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None
