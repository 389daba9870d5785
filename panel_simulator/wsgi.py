"""WSGI adapter and threaded socket server for the simulator (standard library only).

``make_wsgi_app(simulator)`` works with any WSGI server or test driver; ``serve()`` runs it on
``wsgiref`` with one thread per connection until interrupted.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from panel_simulator.api import PanelSimulator, SimRequest, nginx_page

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    302: "Found",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def make_wsgi_app(
    simulator: PanelSimulator, *, sleep: Callable[[float], None] = time.sleep
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """A WSGI application serving ``simulator``. Timeout faults stall for their ``seconds``."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        scheme = environ.get("wsgi.url_scheme", "http")
        host = environ.get("HTTP_HOST") or (
            f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
        )
        request = SimRequest(
            method=environ.get("REQUEST_METHOD", "GET"),
            path=environ.get("PATH_INFO", "/") or "/",
            query_string=environ.get("QUERY_STRING", ""),
            headers=headers,
            body=body,
            remote_addr=environ.get("REMOTE_ADDR", "127.0.0.1"),
            root_url=f"{scheme}://{host}{environ.get('SCRIPT_NAME', '')}",
        )
        response = simulator.handle(request)
        if response.transport_error is not None:
            # A socket server cannot drop a connection before connecting or "lose" a reply the
            # way a mock can: it stalls past the client's timeout, then answers 504.
            sleep(response.stall_seconds)
            start_response("504 Gateway Timeout", [("Content-Type", "text/html")])
            return [nginx_page(504)]
        reason = _REASONS.get(response.status, "Unknown")
        headers_out = list(response.headers)
        if response.status != 204:
            headers_out.append(("Content-Length", str(len(response.body))))
        start_response(f"{response.status} {reason}", headers_out)
        if response.status == 204 or request.method.upper() == "HEAD":
            return []
        return [response.body]

    return app


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    """Access log without headers (never print the Authorization header)."""

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"[panel-simulator] {self.address_string()} {format % args}\n")


def build_server(
    simulator: PanelSimulator, host: str = "127.0.0.1", port: int = 8081
) -> ThreadingWSGIServer:
    """A ready (not yet serving) threaded server; port 0 picks a free port."""
    return make_server(  # type: ignore[return-value]
        host,
        port,
        make_wsgi_app(simulator),
        server_class=ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )


def serve(
    host: str = "127.0.0.1",
    port: int = 8081,
    *,
    install_delay: float = 2.0,
    latency_ms: float = 0.0,
    simulator: PanelSimulator | None = None,
    out: Any = None,
) -> None:
    """Serve a seeded simulator until Ctrl-C, printing the URL and the demo key."""
    out = out or sys.stdout
    simulator = simulator or PanelSimulator(
        install_delay=install_delay, latency=latency_ms / 1000.0
    )
    server = build_server(simulator, host, port)
    seed = simulator.seed
    url = f"http://{host}:{server.server_address[1]}"
    out.write(f"Pterodactyl panel simulator listening on {url}\n")
    if seed is not None:
        out.write(f"  PTERODACTYL_URL={url}\n")
        out.write(f"  PTERODACTYL_ADMIN_API_KEY={seed.admin_api_key}\n")
        out.write(f"  PTERODACTYL_CLIENT_API_KEY={seed.client_api_key}\n")
        out.write(f"  non-admin key (403 on every call): {seed.non_admin_api_key}\n")
        out.write(
            f"  eggs: Paper={seed.paper_egg_id} (nest {seed.minecraft_nest_id}), "
            f"Node.js bot={seed.bot_egg_id} (nest {seed.bot_nest_id}); nodes: "
            f"eu={seed.eu_node_id}, us={seed.us_node_id}\n"
        )
    out.write(
        f"  install delay {install_delay:g} s, latency {latency_ms:g} ms; control endpoints "
        f"under {url}/_simulator/ (state, reset, faults)\n"
    )
    out.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        out.write("stopping the panel simulator\n")
    finally:
        server.server_close()
