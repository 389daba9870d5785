"""Test support: route ``requests`` calls to a simulator through the ``responses`` library.

    sim = PanelSimulator(install_delay=0)
    with simulated_panel(sim, "http://panel.test") as rsps:
        client = PterodactylClient("http://panel.test", sim.seed.admin_api_key, ...)

or, with an existing ``responses.RequestsMock``: ``install_responses(rsps, sim, base_url)``
(create that mock with ``assert_all_requests_are_fired=False``: one callback is registered per
HTTP method and most tests use only some). Timeout and connection faults raise the matching
``requests`` exceptions; no socket is opened.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
import responses

from panel_simulator.api import PanelSimulator, SimRequest

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def install_responses(
    rsps: responses.RequestsMock,
    simulator: PanelSimulator,
    base_url: str = "http://panel.test",
    *,
    remote_addr: str = "127.0.0.1",
) -> None:
    """Register a callback for every method under ``base_url`` that asks ``simulator``."""
    base = base_url.rstrip("/")
    prefix_path = urlsplit(base).path
    pattern = re.compile(re.escape(base) + r"(?:[/?#].*)?$")

    def callback(request: requests.PreparedRequest) -> Any:
        parts = urlsplit(request.url or "")
        path = parts.path[len(prefix_path) :] if prefix_path else parts.path
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        sim_request = SimRequest(
            method=request.method or "GET",
            path=path or "/",
            query_string=parts.query,
            headers=dict(request.headers),
            body=body,
            remote_addr=remote_addr,
            root_url=base,
        )
        response = simulator.handle(sim_request)
        if response.transport_error == "connect_timeout":
            return requests.exceptions.ConnectTimeout("simulated connect timeout")
        if response.transport_error == "read_timeout":
            return requests.exceptions.ReadTimeout("simulated read timeout")
        if response.transport_error == "connection_error":
            return requests.exceptions.ConnectionError("simulated connection error")
        return response.status, list(response.headers), response.body

    for method in METHODS:
        rsps.add_callback(method, pattern, callback=callback, content_type=None)


@contextmanager
def simulated_panel(
    simulator: PanelSimulator, base_url: str = "http://panel.test"
) -> Iterator[responses.RequestsMock]:
    """A ``responses`` mock in which ``base_url`` is served by ``simulator``."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install_responses(rsps, simulator, base_url)
        yield rsps
