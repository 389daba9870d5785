"""The simulated panel's HTTP behaviour, independent of any server: ``PanelSimulator.handle``.

A request goes through the panel's pipeline in the documented order (section 11 of the API
notes): route (404/405) -> Sanctum key (401, or a 302 to /auth/login without a JSON Accept
header) -> malformed JSON (400) -> 2FA (400) -> IP allow-list (403) -> throttle (429) ->
route-model binding (404) -> root admin (403) -> key ACL (403) -> validation (422) -> service
errors -> Wings. Errors are JSON only when the request's Accept header asks for JSON; otherwise
the panel renders HTML.

This module is the pipeline; the route table is in ``routes.py``, the handlers one module per
resource in ``handlers/`` (users, servers, nodes and allocations, locations/nests/eggs, the
Client API; ``handlers/base.py`` renders), the wire format in ``wire.py`` and the state and its
rules in ``panel.py``. ``wsgi.py`` (sockets) and ``testing.py`` (the ``responses`` library)
adapt real HTTP to ``SimRequest``/``SimResponse``; tests may also call ``handle`` directly.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from panel_simulator import transformers as tf
from panel_simulator.faults import Fault, FaultInjector
from panel_simulator.handlers.base import (
    Ctx,
    Unauthenticated,
    control_json,
    ip_allowed,
    malformed,
)
from panel_simulator.handlers.catalog import CatalogHandlers
from panel_simulator.handlers.client import ClientHandlers
from panel_simulator.handlers.nodes import NodeHandlers
from panel_simulator.handlers.servers import ServerHandlers
from panel_simulator.handlers.users import UserHandlers
from panel_simulator.panel import GENERIC_500, ApiError, Panel, model_not_found
from panel_simulator.routes import ROUTES, Route
from panel_simulator.seed import SeedInfo, seed_default
from panel_simulator.state import READ, WRITE, ServerRow, UserRow
from panel_simulator.validation import (
    ValidationFailed,
)
from panel_simulator.wire import (
    JSON_HEADERS,
    SimRequest,
    SimResponse,
    clean_input,
    html_page,
    nginx_page,
    parse_php_query,
    php_json,
    reject_constant,
    wants_json,
)


class _Window:
    __slots__ = ("hits", "reset_at")

    def __init__(self, reset_at: float) -> None:
        self.reset_at = reset_at
        self.hits = 0


# =========================================================================== the simulator


class PanelSimulator(UserHandlers, ServerHandlers, NodeHandlers, CatalogHandlers, ClientHandlers):
    """An in-memory Pterodactyl panel speaking the Application and Client APIs.

    ``PanelSimulator()`` is seeded (see ``seed.py``; ``self.seed`` has the ids and keys).
    ``install_delay`` seconds after a create/reinstall the install "finishes" (0 = on the next
    request); ``backup_delay`` likewise for a backup (default 0). ``clock``/``sleep`` are
    injectable so tests never wait. Thread-safe.
    """

    def __init__(
        self,
        *,
        seed: bool = True,
        install_delay: float = 2.0,
        backup_delay: float = 0.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng_seed: int | None = None,
        rate_limit_per_minute: int = 240,
        client_rate_limit_per_minute: int = 720,
        latency: float = 0.0,
        debug: bool = False,
    ) -> None:
        self._clock = clock
        self._rng_seed = rng_seed
        self.sleep = sleep
        self.latency = latency
        self.debug = debug
        self.rate_limit_per_minute = rate_limit_per_minute
        self.client_rate_limit_per_minute = client_rate_limit_per_minute
        self.faults = FaultInjector()
        # (method, path, status the caller got; 0 = no reply) of recent requests, for tests.
        self.calls: deque[tuple[str, str, int]] = deque(maxlen=5000)
        self._calls_lock = threading.Lock()
        self._install_delay = install_delay
        self._backup_delay = backup_delay
        # Simulation randomness (uuids, deploy picks), seedable for reproducible tests.
        self.panel = Panel(
            install_delay=install_delay,
            backup_delay=backup_delay,
            clock=clock,
            rng=random.Random(rng_seed),  # noqa: S311 - not security-sensitive
        )
        self._windows: dict[tuple[str, str], _Window] = {}
        self.seed: SeedInfo | None = seed_default(self.panel) if seed else None

    def reset(self, *, seed: bool = True) -> None:
        """Fresh state (re-seeded), no faults, no throttle windows."""
        with self.panel.lock:
            self.panel = Panel(
                install_delay=self._install_delay,
                backup_delay=self._backup_delay,
                clock=self._clock,
                rng=random.Random(self._rng_seed),  # noqa: S311 - simulation only
            )
            self._windows.clear()
            self.faults.clear()
            self.seed = seed_default(self.panel) if seed else None

    # ------------------------------------------------------------------ entry point

    def handle(self, request: SimRequest) -> SimResponse:
        path = "/" + request.path.strip("/")
        if path.startswith("/_simulator"):
            with self.panel.lock:
                return self._control(request, path)
        fault = self.faults.take(request.method, path)
        delay = self.latency + (fault.seconds if fault and fault.kind == "latency" else 0.0)
        if delay > 0:
            self.sleep(delay)
        early = self._fault_before(fault, request, path)
        if early is not None:
            self._record(request.method, path, 0 if early.transport_error else early.status)
            return early
        with self.panel.lock:
            self.panel.tick()
            response = self._dispatch(request, path)
        response = self._fault_after(fault, response)
        self._record(request.method, path, 0 if response.transport_error else response.status)
        return response

    def _record(self, method: str, path: str, status: int) -> None:
        with self._calls_lock:
            self.calls.append((method.upper(), path, status))

    def _fault_before(
        self, fault: Fault | None, request: SimRequest, path: str
    ) -> SimResponse | None:
        if fault is None:
            return None
        if fault.kind in ("connect_timeout", "connection_error"):
            return SimResponse(
                504,
                [("Content-Type", "text/html")],
                nginx_page(504),
                transport_error=fault.kind,
                stall_seconds=fault.seconds,
            )
        if fault.kind == "read_timeout" and not fault.commit:
            return SimResponse(
                504,
                [("Content-Type", "text/html")],
                nginx_page(504),
                transport_error="read_timeout",
                stall_seconds=fault.seconds,
            )
        if fault.kind == "rate_limit":
            now = int(self.panel.now())
            return SimResponse(
                429,
                [
                    *JSON_HEADERS,
                    ("X-RateLimit-Limit", str(self.rate_limit_per_minute)),
                    ("X-RateLimit-Remaining", "0"),
                    ("Retry-After", str(fault.retry_after)),
                    ("X-RateLimit-Reset", str(now + fault.retry_after)),
                ],
                php_json(
                    {
                        "errors": [
                            {
                                "code": "ThrottleRequestsException",
                                "status": "429",
                                "detail": "Too Many Attempts.",
                            }
                        ]
                    }
                ),
            )
        if fault.kind == "status":
            if fault.body == "html":
                return SimResponse(
                    fault.status, [("Content-Type", "text/html")], nginx_page(fault.status)
                )
            detail = GENERIC_500 if fault.status >= 500 else HTTPStatus(fault.status).phrase
            code = "HttpException" if fault.status < 500 else "QueryException"
            return SimResponse(
                fault.status,
                list(JSON_HEADERS),
                php_json(
                    {"errors": [{"code": code, "status": str(fault.status), "detail": detail}]}
                ),
            )
        return None

    @staticmethod
    def _fault_after(fault: Fault | None, response: SimResponse) -> SimResponse:
        if fault is None:
            return response
        if fault.kind == "read_timeout":
            response.transport_error = "read_timeout"
            response.stall_seconds = fault.seconds
            return response
        if fault.kind == "lost_reply":
            return SimResponse(
                fault.status, [("Content-Type", "text/html")], nginx_page(fault.status)
            )
        return response

    # ------------------------------------------------------------------ pipeline

    def _match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        allowed: list[str] = []
        # Laravel answers HEAD with the GET route.
        wanted = "GET" if method.upper() == "HEAD" else method.upper()
        for route in ROUTES:
            match = route.pattern.match(path)
            if not match:
                continue
            if route.method == wanted:
                params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                return route, params, []
            for name in [route.method, "HEAD"] if route.method == "GET" else [route.method]:
                if name not in allowed:
                    allowed.append(name)
        return None, {}, allowed

    def _dispatch(self, request: SimRequest, path: str) -> SimResponse:
        query = clean_input(parse_php_query(request.query_string))
        ctx = Ctx(request=request, path=path, json=wants_json(request), query=query)
        try:
            route, params, allowed = self._match(request.method, path)
            if route is None:
                if allowed:
                    raise ApiError(
                        405,
                        "MethodNotAllowedHttpException",
                        f"The {request.method.upper()} method is not supported for route "
                        f"{path.lstrip('/')}. Supported methods: {', '.join(allowed)}.",
                    )
                raise ApiError(
                    404,
                    "NotFoundHttpException",
                    f"The route {path.lstrip('/')} could not be found.",
                )
            return self._run(route, params, ctx)
        except Unauthenticated:
            if not ctx.json:
                location = f"{request.root_url.rstrip('/')}/auth/login"
                return SimResponse(
                    302,
                    [("Location", location), ("Content-Type", "text/html; charset=UTF-8")],
                    html_page(302, f"Redirecting to {location}"),
                )
            return self._error(ctx, ApiError(401, "AuthenticationException", "Unauthenticated."))
        except ValidationFailed as failed:
            return self._validation_error(ctx, failed)
        except ApiError as error:
            return self._error(ctx, error)
        except tf.IncludeError as error:
            return self._error(
                ctx, ApiError(500, "BadMethodCallException", GENERIC_500, debug_detail=str(error))
            )

    def _run(self, route: Route, params: dict[str, str], ctx: Ctx) -> SimResponse:
        panel = self.panel
        # 1. Sanctum: the first 16 characters pick the key, the rest must match.
        authorization = ctx.request.header("Authorization") or ""
        token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        key = panel.find_api_key(token) if token else None
        user = panel.users.get(key.user_id) if key else None
        if key is None or user is None:
            raise Unauthenticated
        ctx.key, ctx.user = key, user
        key.last_used_at = panel.now()
        # 2. Malformed JSON bodies.
        ctx.body = self._parse_body(ctx.request)
        # 3. 2FA requirement.
        needs_2fa = panel.require_2fa == "all" or (
            panel.require_2fa == "admins" and user.root_admin
        )
        if needs_2fa and not user.use_totp:
            raise ApiError(
                400,
                "TwoFactorAuthRequiredException",
                "Two-factor authentication is required on this account in order to access "
                "this endpoint.",
            )
        # 4. IP allow-list.
        if key.allowed_ips and not ip_allowed(ctx.request.remote_addr, key.allowed_ips):
            raise ApiError(
                403,
                "AccessDeniedHttpException",
                f"This IP address ({ctx.request.remote_addr}) does not have permission to access "
                "the API using these credentials.",
            )
        # 5. Throttle (per key owner, separate buckets per API).
        self._throttle(ctx, route.api, user)
        # 6. Route-model binding (404 before the admin check).
        bound = self._bind(route, params, ctx)
        # 8. An application key on the client API is refused after throttle and binding.
        if route.api == "client" and key.key_type == "application":
            raise ApiError(
                403,
                "AccessDeniedHttpException",
                "You are attempting to use an application API key on an endpoint that requires a "
                "client API key.",
            )
        if route.api == "application":
            # 7. Root admin.
            if not user.root_admin:
                raise ApiError(
                    403,
                    "AccessDeniedHttpException",
                    "This account does not have permission to access the API.",
                )
            # 8. Per-resource ACL of application keys (a root admin's client key passes).
            needed = READ if ctx.request.method.upper() == "GET" else WRITE
            acl_bits = key.acl.get(route.resource, 0) if route.resource else needed
            if key.key_type == "application" and not acl_bits & needed:
                raise ApiError(403, "AccessDeniedHttpException", "This action is unauthorized.")
        handler = getattr(self, f"_h_{route.handler}")
        response: SimResponse = handler(ctx, **bound)
        response.headers.extend(ctx.extra_headers)
        return response

    @staticmethod
    def _parse_body(request: SimRequest) -> dict[str, Any]:
        content_type = (request.header("Content-Type") or "").lower()
        is_json = "/json" in content_type or "+json" in content_type
        if not is_json:
            if "application/x-www-form-urlencoded" in content_type and request.body:
                return clean_input(parse_php_query(request.body.decode("utf-8", "replace")))
            return {}
        if not request.body.strip():
            return {}
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise malformed("Malformed UTF-8 characters, possibly incorrectly encoded") from None
        try:
            data = json.loads(text, parse_constant=reject_constant)
        except ValueError:
            raise malformed("Syntax error") from None
        return clean_input(data) if isinstance(data, dict) else {}

    def _throttle(self, ctx: Ctx, api: str, user: UserRow) -> None:
        limit = (
            self.rate_limit_per_minute
            if api == "application"
            else self.client_rate_limit_per_minute
        )
        now = self.panel.now()
        window = self._windows.get((api, user.uuid))
        if window is None or now >= window.reset_at:
            window = _Window(now + 60)
            self._windows[(api, user.uuid)] = window
        if window.hits >= limit:
            retry_after = max(0, math.ceil(window.reset_at - now))
            raise ApiError(
                429,
                "ThrottleRequestsException",
                "Too Many Attempts.",
                headers={
                    "X-RateLimit-Limit": str(limit),
                    "X-RateLimit-Remaining": "0",
                    "Retry-After": str(retry_after),
                    "X-RateLimit-Reset": str(int(now) + retry_after),
                },
            )
        window.hits += 1
        ctx.extra_headers = [
            ("X-RateLimit-Limit", str(limit)),
            ("X-RateLimit-Remaining", str(limit - window.hits)),
        ]

    def _bind(self, route: Route, params: dict[str, str], ctx: Ctx) -> dict[str, Any]:
        panel = self.panel
        bound: dict[str, Any] = {}
        tables = {
            "user": ("User", panel.users),
            "node": ("Node", panel.nodes),
            "location": ("Location", panel.locations),
            "nest": ("Nest", panel.nests),
        }
        for name, value in params.items():
            if name in tables:
                model, table = tables[name]
                row = table.get(int(value)) if value.isdigit() else None
                if row is None:
                    raise model_not_found(model, value)
                bound[name] = row
            elif name == "server" and route.api == "application":
                row = panel.servers.get(int(value)) if value.isdigit() else None
                if row is None:
                    raise model_not_found("Server", value)
                bound[name] = row
            elif name == "server":
                bound[name] = self._client_server(value, ctx)
            elif name in ("allocation", "egg"):
                bound[name] = value  # scoped to the parent: resolved below
            else:
                bound[name] = value
        if "allocation" in bound:
            value = bound["allocation"]
            row = panel.allocations.get(int(value)) if value.isdigit() else None
            if row is None or row.node_id != bound["node"].id:
                raise model_not_found("Allocation", value)
            bound["allocation"] = row
        if "egg" in bound:
            value = bound["egg"]
            row = panel.eggs.get(int(value)) if value.isdigit() else None
            if row is None or row.nest_id != bound["nest"].id:
                raise model_not_found("Egg", value)
            bound["egg"] = row
        return bound

    def _client_server(self, value: str, ctx: Ctx) -> ServerRow:
        server = next(
            (s for s in self.panel.sorted_servers() if value in (s.uuid_short, s.uuid)), None
        )
        if server is None:
            raise model_not_found("Server", value)
        user = ctx.user
        if user is None or not (user.root_admin or server.owner_id == user.id):
            raise ApiError(
                404,
                "NotFoundHttpException",
                "The requested resource does not exist on this server.",
            )
        return server

    # ------------------------------------------------------------------ control endpoints

    def _control(self, request: SimRequest, path: str) -> SimResponse:
        """Private endpoints for demos and out-of-process tests (no auth: keep it local)."""
        method = request.method.upper()
        try:
            body = json.loads(request.body.decode() or "{}") if request.body else {}
        except ValueError:
            return control_json({"error": "body must be JSON"}, 400)
        panel = self.panel
        try:
            if path == "/_simulator/state" and method == "GET":
                return control_json(self.snapshot())
            if path == "/_simulator/reset" and method == "POST":
                self.reset(seed=body.get("seed", True))
                return control_json({"ok": True, "seed": self.seed_summary()})
            if path == "/_simulator/faults":
                if method == "GET":
                    return control_json([f.to_dict() for f in self.faults.active()])
                if method == "DELETE":
                    self.faults.clear()
                    return control_json({"ok": True})
                if method == "POST":
                    fault = self.faults.add(**body)
                    return control_json(fault.to_dict(), 201)
            if path == "/_simulator/time/advance" and method == "POST":
                panel.advance_time(float(body.get("seconds", 0)))
                panel.tick()
                return control_json({"ok": True, "now": panel.now()})
            if path == "/_simulator/settings" and method == "POST":
                if "install_delay" in body:
                    panel.install_delay = float(body["install_delay"])
                    self._install_delay = panel.install_delay
                if "backup_delay" in body:
                    panel.backup_delay = float(body["backup_delay"])
                    self._backup_delay = panel.backup_delay
                if "rate_limit_per_minute" in body:
                    self.rate_limit_per_minute = int(body["rate_limit_per_minute"])
                if "latency" in body:
                    self.latency = float(body["latency"])
                if "debug" in body:
                    self.debug = bool(body["debug"])
                if "require_2fa" in body:
                    panel.require_2fa = body["require_2fa"]
                return control_json({"ok": True})
            match = re.fullmatch(r"/_simulator/nodes/(\d+)/wings", path)
            if match and method == "POST":
                panel.set_wings_failure(int(match.group(1)), body.get("failure"))
                return control_json({"ok": True})
            match = re.fullmatch(r"/_simulator/nodes/(\d+)", path)
            if match and method == "PATCH":
                node = panel.nodes[int(match.group(1))]
                for name in ("public", "maintenance_mode", "memory", "disk"):
                    if name in body:
                        setattr(node, name, body[name])
                return control_json({"ok": True})
            match = re.fullmatch(r"/_simulator/eggs/(\d+)", path)
            if match and method == "PATCH":
                panel.eggs[int(match.group(1))].fail_install = bool(body.get("fail_install"))
                return control_json({"ok": True})
            match = re.fullmatch(r"/_simulator/servers/(\d+)/(install|transfer)", path)
            if match and method == "POST":
                server = panel.servers[int(match.group(1))]
                if match.group(2) == "install":
                    panel.complete_install(server, success=body.get("success"))
                else:
                    server.transferring = bool(body.get("transferring", True))
                return control_json({"ok": True})
            match = re.fullmatch(r"/_simulator/backups/([0-9a-f-]{36})/complete", path)
            if match and method == "POST":
                backup = next(b for b in panel.backups.values() if b.uuid == match.group(1))
                panel.complete_backup(backup, success=body.get("success"))
                return control_json({"ok": True})
            if path == "/_simulator/keys" and method == "POST":
                token = panel.add_api_key(
                    int(body["user_id"]),
                    key_type=body.get("key_type", "application"),
                    acl=body.get("acl"),
                    allowed_ips=body.get("allowed_ips"),
                )
                return control_json({"token": token}, 201)
        except (KeyError, ValueError, TypeError) as exc:
            return control_json({"error": f"{type(exc).__name__}: {exc}"}, 400)
        return control_json({"error": f"no control endpoint {method} {path}"}, 404)

    def seed_summary(self) -> dict[str, Any] | None:
        return None if self.seed is None else self.seed.as_dict()

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able view of the whole state (for demos and debugging)."""
        panel = self.panel
        key = None
        return {
            "now": panel.now(),
            "seed": self.seed_summary(),
            "users": [tf.user_attributes(panel, u) for u in panel.users.values()],
            "servers": [
                {**tf.server_attributes(panel, s), "power_state": s.power_state}
                for s in panel.sorted_servers()
            ],
            "nodes": [
                {**tf.node_attributes(panel, n), "wings_failure": n.wings_failure}
                for n in panel.sorted_nodes()
            ],
            "allocations": [
                {
                    **tf.allocation_attributes(panel, a),
                    "node_id": a.node_id,
                    "server_id": a.server_id,
                }
                for a in panel.sorted_allocations()
            ],
            "locations": [tf.location_attributes(panel, loc) for loc in panel.locations.values()],
            "eggs": [
                tf.render_item(panel, "egg", e, {"variables": {}}, key)["attributes"]
                for e in panel.sorted_eggs()
            ],
            "faults": [f.to_dict() for f in self.faults.active()],
        }


__all__ = ["PanelSimulator", "SimRequest", "SimResponse", "parse_php_query", "wants_json"]
