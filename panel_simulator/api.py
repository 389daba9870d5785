"""The simulated panel's HTTP behaviour, independent of any server: ``PanelSimulator.handle``.

A request goes through the panel's pipeline in the documented order (section 11 of the API
notes): route (404/405) -> Sanctum key (401, or a 302 to /auth/login without a JSON Accept
header) -> malformed JSON (400) -> 2FA (400) -> IP allow-list (403) -> throttle (429) ->
route-model binding (404) -> root admin (403) -> key ACL (403) -> validation (422) -> service
errors -> Wings. Errors are JSON only when the request's Accept header asks for JSON; otherwise
the panel renders HTML.

``wsgi.py`` (sockets) and ``testing.py`` (the ``responses`` library) adapt real HTTP to
``SimRequest``/``SimResponse``; tests may also call ``handle`` directly.
"""

from __future__ import annotations

import ipaddress
import json
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote

from panel_simulator import transformers as tf
from panel_simulator.faults import Fault, FaultInjector
from panel_simulator.panel import GENERIC_500, ApiError, Panel, model_not_found
from panel_simulator.seed import SeedInfo, seed_default
from panel_simulator.state import READ, WRITE, ApiKeyRow, ServerRow, UserRow
from panel_simulator.validation import (
    ValidationFailed,
    is_int_like,
    php_string,
    validate,
)

JSON_HEADERS = [("Content-Type", "application/json")]


# =========================================================================== request/response


@dataclass
class SimRequest:
    method: str
    path: str
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    remote_addr: str = "127.0.0.1"
    root_url: str = "http://panel.test"

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


@dataclass
class SimResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    # Set by faults: how the transport should fail instead of delivering this response.
    transport_error: str | None = None  # "connect_timeout" | "read_timeout" | "connection_error"
    stall_seconds: float = 0.0

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body.decode())


def php_json(payload: Any) -> bytes:
    """json_encode() with Laravel's defaults: compact, escaped slashes and non-ASCII."""
    return (
        json.dumps(payload, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()
    )


def html_page(status: int, message: str | None = None) -> bytes:
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n</head>\n<body>\n"
        f'<div class="code">{status}</div>\n<div class="message">{message or title}</div>\n'
        "</body>\n</html>\n"
    ).encode()


def nginx_page(status: int) -> bytes:
    title = (
        f"{status} {HTTPStatus(status).phrase}"
        if status in HTTPStatus._value2member_map_
        else str(status)
    )
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode()


# =========================================================================== query & body


def parse_php_query(query_string: str) -> dict[str, Any]:
    """PHP-style query parsing: ``filter[email]=x`` -> {"filter": {"email": "x"}}, ``a[]=1``."""
    result: dict[str, Any] = {}
    for raw_key, value in parse_qsl(query_string, keep_blank_values=True):
        match = re.match(r"^([^\[\]]+)((?:\[[^\]]*\])*)$", raw_key)
        if not match:
            result[raw_key] = value
            continue
        base, brackets = match.group(1), re.findall(r"\[([^\]]*)\]", match.group(2))
        if not brackets:
            result[base] = value
            continue
        container = result.get(base)
        if not isinstance(container, dict):
            container = {}
            result[base] = container
        for index, name in enumerate(brackets):
            last = index == len(brackets) - 1
            if name == "":
                name = str(len(container))
            if last:
                container[name] = value
            else:
                child = container.get(name)
                if not isinstance(child, dict):
                    child = {}
                    container[name] = child
                container = child
    return _listify(result)


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {k: _listify(v) for k, v in value.items()}
        keys = list(converted)
        if keys and keys == [str(i) for i in range(len(keys))]:
            return [converted[k] for k in keys]
        return converted
    return value


_TRIM = re.compile(r"^[\s\ufeff\u200b\u200e]+|[\s\ufeff\u200b\u200e]+$")


def clean_input(value: Any, key: str | None = None) -> Any:
    """TrimStrings (except passwords) + ConvertEmptyStringsToNull, recursively."""
    if isinstance(value, dict):
        return {k: clean_input(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_input(v) for v in value]
    if isinstance(value, str):
        if key not in ("password", "password_confirmation", "current_password"):
            value = _TRIM.sub("", value)
        return None if value == "" else value
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON constant {name}")


def wants_json(request: SimRequest) -> bool:
    """Laravel's expectsJson(): the first Accept entry contains /json or +json (or AJAX)."""
    accept = request.header("Accept") or ""
    entries = []
    for position, part in enumerate(accept.split(",")):
        media, *parameters = [p.strip() for p in part.split(";")]
        if not media:
            continue
        quality = 1.0
        for parameter in parameters:
            if parameter.startswith("q="):
                try:
                    quality = float(parameter[2:])
                except ValueError:
                    quality = 0.0
        entries.append((-quality, position, media.lower()))
    entries.sort()
    first = entries[0][2] if entries else ""
    if "/json" in first or "+json" in first:
        return True
    ajax = (request.header("X-Requested-With") or "") == "XMLHttpRequest"
    return ajax and first in ("", "*/*", "*")


# =========================================================================== routing


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: str
    api: str  # "application" | "client"
    resource: str | None = None  # ACL resource for application keys


def _route(method: str, path: str, handler: str, api: str, resource: str | None = None) -> Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return Route(method, re.compile(f"^{regex}$"), handler, api, resource)


A = "/api/application"
ROUTES: list[Route] = [
    # users
    _route("GET", f"{A}/users", "users_index", "application", "users"),
    _route("GET", f"{A}/users/external/{{external_id}}", "users_external", "application", "users"),
    _route("GET", f"{A}/users/{{user}}", "users_view", "application", "users"),
    _route("POST", f"{A}/users", "users_store", "application", "users"),
    _route("PATCH", f"{A}/users/{{user}}", "users_update", "application", "users"),
    _route("DELETE", f"{A}/users/{{user}}", "users_delete", "application", "users"),
    # nodes and allocations
    _route("GET", f"{A}/nodes", "nodes_index", "application", "nodes"),
    _route("GET", f"{A}/nodes/deployable", "nodes_deployable", "application", "nodes"),
    _route("GET", f"{A}/nodes/{{node}}", "nodes_view", "application", "nodes"),
    _route("GET", f"{A}/nodes/{{node}}/configuration", "nodes_config", "application", "nodes"),
    _route("POST", f"{A}/nodes", "nodes_store", "application", "nodes"),
    _route("PATCH", f"{A}/nodes/{{node}}", "nodes_update", "application", "nodes"),
    _route("DELETE", f"{A}/nodes/{{node}}", "nodes_delete", "application", "nodes"),
    _route(
        "GET", f"{A}/nodes/{{node}}/allocations", "allocations_index", "application", "allocations"
    ),
    _route(
        "POST", f"{A}/nodes/{{node}}/allocations", "allocations_store", "application", "allocations"
    ),
    _route(
        "DELETE",
        f"{A}/nodes/{{node}}/allocations/{{allocation}}",
        "allocations_delete",
        "application",
        "allocations",
    ),
    # locations
    _route("GET", f"{A}/locations", "locations_index", "application", "locations"),
    _route("GET", f"{A}/locations/{{location}}", "locations_view", "application", "locations"),
    _route("POST", f"{A}/locations", "locations_store", "application", "locations"),
    _route("PATCH", f"{A}/locations/{{location}}", "locations_update", "application", "locations"),
    _route("DELETE", f"{A}/locations/{{location}}", "locations_delete", "application", "locations"),
    # servers
    _route("GET", f"{A}/servers", "servers_index", "application", "servers"),
    _route(
        "GET", f"{A}/servers/external/{{external_id}}", "servers_external", "application", "servers"
    ),
    _route("GET", f"{A}/servers/{{server}}", "servers_view", "application", "servers"),
    _route("POST", f"{A}/servers", "servers_store", "application", "servers"),
    _route("PATCH", f"{A}/servers/{{server}}/details", "servers_details", "application", "servers"),
    _route("PATCH", f"{A}/servers/{{server}}/build", "servers_build", "application", "servers"),
    _route("PATCH", f"{A}/servers/{{server}}/startup", "servers_startup", "application", "servers"),
    _route("POST", f"{A}/servers/{{server}}/suspend", "servers_suspend", "application", "servers"),
    _route(
        "POST", f"{A}/servers/{{server}}/unsuspend", "servers_unsuspend", "application", "servers"
    ),
    _route(
        "POST", f"{A}/servers/{{server}}/reinstall", "servers_reinstall", "application", "servers"
    ),
    _route(
        "DELETE", f"{A}/servers/{{server}}/{{force}}", "servers_delete", "application", "servers"
    ),
    _route("DELETE", f"{A}/servers/{{server}}", "servers_delete", "application", "servers"),
    # nests and eggs
    _route("GET", f"{A}/nests", "nests_index", "application", "nests"),
    _route("GET", f"{A}/nests/{{nest}}", "nests_view", "application", "nests"),
    _route("GET", f"{A}/nests/{{nest}}/eggs", "eggs_index", "application", "eggs"),
    _route("GET", f"{A}/nests/{{nest}}/eggs/{{egg}}", "eggs_view", "application", "eggs"),
    # client API
    _route("GET", "/api/client", "client_index", "client"),
    _route("GET", "/api/client/servers/{server}", "client_server", "client"),
    _route("GET", "/api/client/servers/{server}/resources", "client_resources", "client"),
    _route("POST", "/api/client/servers/{server}/power", "client_power", "client"),
    _route("GET", "/api/client/servers/{server}/websocket", "client_websocket", "client"),
]


@dataclass
class _Ctx:
    request: SimRequest
    path: str
    json: bool
    query: dict[str, Any]
    body: dict[str, Any] = field(default_factory=dict)
    key: ApiKeyRow | None = None
    user: UserRow | None = None
    extra_headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.request.root_url.rstrip('/')}{self.path}"

    @property
    def includes(self) -> tf.IncludeTree:
        return tf.parse_includes(self.query.get("include"))


class _Unauthenticated(Exception):
    pass


class _Window:
    __slots__ = ("hits", "reset_at")

    def __init__(self, reset_at: float) -> None:
        self.reset_at = reset_at
        self.hits = 0


# =========================================================================== the simulator


class PanelSimulator:
    """An in-memory Pterodactyl panel speaking the Application and Client APIs.

    ``PanelSimulator()`` is seeded (see ``seed.py``; ``self.seed`` has the ids and keys).
    ``install_delay`` seconds after a create/reinstall the install "finishes" (0 = on the next
    request). ``clock``/``sleep`` are injectable so tests never wait. Thread-safe.
    """

    def __init__(
        self,
        *,
        seed: bool = True,
        install_delay: float = 2.0,
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
        # Simulation randomness (uuids, deploy picks), seedable for reproducible tests.
        self.panel = Panel(
            install_delay=install_delay,
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
        ctx = _Ctx(request=request, path=path, json=wants_json(request), query=query)
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
        except _Unauthenticated:
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

    def _run(self, route: Route, params: dict[str, str], ctx: _Ctx) -> SimResponse:
        panel = self.panel
        # 1. Sanctum: the first 16 characters pick the key, the rest must match.
        authorization = ctx.request.header("Authorization") or ""
        token = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        key = panel.find_api_key(token) if token else None
        user = panel.users.get(key.user_id) if key else None
        if key is None or user is None:
            raise _Unauthenticated
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
        if key.allowed_ips and not _ip_allowed(ctx.request.remote_addr, key.allowed_ips):
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
            raise _malformed("Malformed UTF-8 characters, possibly incorrectly encoded") from None
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except ValueError:
            raise _malformed("Syntax error") from None
        return clean_input(data) if isinstance(data, dict) else {}

    def _throttle(self, ctx: _Ctx, api: str, user: UserRow) -> None:
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

    def _bind(self, route: Route, params: dict[str, str], ctx: _Ctx) -> dict[str, Any]:
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

    def _client_server(self, value: str, ctx: _Ctx) -> ServerRow:
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

    # ------------------------------------------------------------------ rendering

    def _headers(self, ctx: _Ctx, extra: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
        headers = list(JSON_HEADERS)
        if extra:
            headers.extend(extra.items())
        return headers

    def _json(self, ctx: _Ctx, payload: Any, status: int = 200) -> SimResponse:
        return SimResponse(status, self._headers(ctx), php_json(payload))

    @staticmethod
    def _no_content() -> SimResponse:
        return SimResponse(204, [], b"")

    def _error_element(self, error: ApiError) -> dict[str, Any]:
        element: dict[str, Any] = {
            "code": error.code,
            "status": str(error.status),
            "detail": error.debug_detail if self.debug else error.detail,
        }
        if self.debug:
            element["source"] = {"line": 42, "file": "/app/Http/Controllers/Controller.php"}
            element["meta"] = {"trace": [], "previous": []}
        return element

    def _error(self, ctx: _Ctx, error: ApiError) -> SimResponse:
        headers = list(ctx.extra_headers) if error.status != 429 else []
        headers.extend(error.headers.items())
        if not ctx.json:
            return SimResponse(
                error.status,
                [("Content-Type", "text/html; charset=UTF-8"), *headers],
                html_page(error.status),
            )
        return SimResponse(
            error.status,
            [*JSON_HEADERS, *headers],
            php_json({"errors": [self._error_element(error)]}),
        )

    def _validation_error(self, ctx: _Ctx, failed: ValidationFailed) -> SimResponse:
        if not ctx.json:
            return SimResponse(
                422,
                [("Content-Type", "text/html; charset=UTF-8"), *ctx.extra_headers],
                html_page(422),
            )
        errors = []
        for failure in failed.failures:
            element = failure.to_error()
            if self.debug:
                element["source"] = {"line": 42, "file": "/app/Http/Requests/Request.php"}
                element["meta"] = {"trace": [], "previous": [], **element["meta"]}
            errors.append(element)
        return SimResponse(422, [*JSON_HEADERS, *ctx.extra_headers], php_json({"errors": errors}))

    def _item(
        self, ctx: _Ctx, object_type: str, row: Any, status: int = 200, meta: Any = None
    ) -> SimResponse:
        payload = tf.render_item(self.panel, object_type, row, ctx.includes, ctx.key)
        if meta is not None:
            payload["meta"] = meta
        return self._json(ctx, payload, status)

    def _list(self, ctx: _Ctx, object_type: str, rows: list[Any]) -> SimResponse:
        return self._json(ctx, tf.render_list(self.panel, object_type, rows, ctx.includes, ctx.key))

    def _paginated(
        self, ctx: _Ctx, object_type: str, rows: list[Any], *, max_per_page: int | None = None
    ) -> SimResponse:
        per_page = _per_page(ctx.query.get("per_page"), 50)
        if max_per_page is not None:
            per_page = min(per_page, max_per_page)
        page = _current_page(ctx.query.get("page"))
        total = len(rows)
        last_page = max(math.ceil(total / per_page), 1)
        items = rows[(page - 1) * per_page : page * per_page]
        payload = tf.render_list(self.panel, object_type, items, ctx.includes, ctx.key)
        links: dict[str, str] = {}
        # The panel's links carry only ?page=N: filters, per_page and include are dropped.
        if page > 1:
            links["previous"] = f"{ctx.url}?page={page - 1}"
        if page < last_page:
            links["next"] = f"{ctx.url}?page={page + 1}"
        payload["meta"] = {
            "pagination": {
                "total": total,
                "count": len(items),
                "per_page": per_page,
                "current_page": page,
                "total_pages": last_page,
                "links": links,
            }
        }
        return self._json(ctx, payload)

    def _query(
        self,
        ctx: _Ctx,
        rows: list[Any],
        filters: dict[str, Callable[[Any, Any], bool]] | None,
        sorts: dict[str, Callable[[Any], Any]] | None,
    ) -> list[Any]:
        """spatie/laravel-query-builder: allowed filters (AND) and sorts, else 400."""
        requested = ctx.query.get("filter")
        if filters is not None and isinstance(requested, dict):
            unknown = [name for name in requested if name not in filters]
            if unknown:
                raise ApiError(
                    400,
                    "InvalidFilterQuery",
                    f"Requested filter(s) `{', '.join(unknown)}` are not allowed. Allowed "
                    f"filter(s) are `{', '.join(filters)}`.",
                )
            for name, value in requested.items():
                if value is None:
                    continue
                rows = [row for row in rows if filters[name](row, _filter_value(value))]
        sort = ctx.query.get("sort")
        if sorts is not None and isinstance(sort, str) and sort:
            parts = [p for p in sort.split(",") if p]
            unknown = [p.lstrip("-") for p in parts if p.lstrip("-") not in sorts]
            if unknown:
                raise ApiError(
                    400,
                    "InvalidSortQuery",
                    f"Requested sort(s) `{', '.join(unknown)}` is not allowed. Allowed sort(s) "
                    f"are `{', '.join(sorts)}`.",
                )
            for part in reversed(parts):
                rows = sorted(rows, key=sorts[part.lstrip("-")], reverse=part.startswith("-"))
        return rows

    # ------------------------------------------------------------------ users

    def _h_users_index(self, ctx: _Ctx) -> SimResponse:
        rows = [self.panel.users[i] for i in sorted(self.panel.users)]
        rows = self._query(
            ctx,
            rows,
            {
                "email": _partial(lambda u: u.email),
                "uuid": _partial(lambda u: u.uuid),
                "username": _partial(lambda u: u.username),
                "external_id": _partial(lambda u: u.external_id),
            },
            {"id": lambda u: u.id, "uuid": lambda u: u.uuid},
        )
        return self._paginated(ctx, "user", rows)

    def _h_users_view(self, ctx: _Ctx, user: UserRow) -> SimResponse:
        return self._item(ctx, "user", user)

    def _h_users_external(self, ctx: _Ctx, external_id: str) -> SimResponse:
        row = self.panel.find_user_by_external_id(external_id)
        if row is None:
            raise model_not_found("User", external_id)
        return self._item(ctx, "user", row)

    def _h_users_store(self, ctx: _Ctx) -> SimResponse:
        user = self.panel.create_user(ctx.body)
        meta = {"resource": f"{ctx.request.root_url.rstrip('/')}{A}/users/{user.id}"}
        return self._item(ctx, "user", user, 201, meta)

    def _h_users_update(self, ctx: _Ctx, user: UserRow) -> SimResponse:
        return self._item(ctx, "user", self.panel.update_user(user, ctx.body))

    def _h_users_delete(self, ctx: _Ctx, user: UserRow) -> SimResponse:
        self.panel.delete_user(user)
        return self._no_content()

    # ------------------------------------------------------------------ servers

    def _h_servers_index(self, ctx: _Ctx) -> SimResponse:
        rows = self._query(
            ctx,
            self.panel.sorted_servers(),
            {
                "uuid": _partial(lambda s: s.uuid),
                "uuidShort": _partial(lambda s: s.uuid_short),
                "name": _partial(lambda s: s.name),
                "description": _partial(lambda s: s.description),
                "image": _partial(lambda s: s.image),
                "external_id": _partial(lambda s: s.external_id),
            },
            {"id": lambda s: s.id, "uuid": lambda s: s.uuid},
        )
        return self._paginated(ctx, "server", rows)

    def _h_servers_view(self, ctx: _Ctx, server: ServerRow) -> SimResponse:
        return self._item(ctx, "server", server)

    def _h_servers_external(self, ctx: _Ctx, external_id: str) -> SimResponse:
        row = self.panel.find_server_by_external_id(external_id)
        if row is None:
            raise model_not_found("Server", external_id)
        return self._item(ctx, "server", row)

    def _h_servers_store(self, ctx: _Ctx) -> SimResponse:
        server = self.panel.create_server(ctx.body)
        return self._item(ctx, "server", server, 201)  # no meta on server create

    def _h_servers_details(self, ctx: _Ctx, server: ServerRow) -> SimResponse:
        return self._item(ctx, "server", self.panel.update_details(server, ctx.body))

    def _h_servers_build(self, ctx: _Ctx, server: ServerRow) -> SimResponse:
        return self._item(ctx, "server", self.panel.update_build(server, ctx.body))

    def _h_servers_startup(self, ctx: _Ctx, server: ServerRow) -> SimResponse:
        return self._item(ctx, "server", self.panel.update_startup(server, ctx.body))

    def _h_servers_suspend(self, ctx: _Ctx, server: ServerRow) -> SimResponse:
        self.panel.suspend(server, True)
        return self._no_content()

    def _h_servers_unsuspend(self, ctx: _Ctx, server: ServerRow) -> SimResponse:
        self.panel.suspend(server, False)
        return self._no_content()

    def _h_servers_reinstall(self, ctx: _Ctx, server: ServerRow) -> SimResponse:
        self.panel.reinstall(server)
        return self._no_content()

    def _h_servers_delete(self, ctx: _Ctx, server: ServerRow, force: str = "") -> SimResponse:
        self.panel.delete_server(server, force=force == "force")
        return self._no_content()

    # ------------------------------------------------------------------ nodes & allocations

    def _h_nodes_index(self, ctx: _Ctx) -> SimResponse:
        rows = self._query(
            ctx,
            self.panel.sorted_nodes(),
            {
                "uuid": _partial(lambda n: n.uuid),
                "name": _partial(lambda n: n.name),
                "fqdn": _partial(lambda n: n.fqdn),
                "daemon_token_id": _partial(lambda n: n.daemon_token_id),
            },
            {
                "id": lambda n: n.id,
                "uuid": lambda n: n.uuid,
                "memory": lambda n: n.memory,
                "disk": lambda n: n.disk,
            },
        )
        return self._paginated(ctx, "node", rows)

    def _h_nodes_view(self, ctx: _Ctx, node: Any) -> SimResponse:
        return self._item(ctx, "node", node)

    def _h_nodes_deployable(self, ctx: _Ctx) -> SimResponse:
        validate(
            ctx.query,
            {
                "page": "integer",
                "memory": "required|integer|min:0",
                "disk": "required|integer|min:0",
                "location_ids": "array",
                "location_ids.*": "integer",
            },
        )
        locations = ctx.query.get("location_ids") or []
        if isinstance(locations, dict):
            locations = list(locations.values())
        node_ids = self.panel.viable_nodes(
            memory=ctx.query["memory"],
            disk=ctx.query["disk"],
            locations=[int(x) for x in locations if is_int_like(x)],
        )
        rows = [self.panel.nodes[i] for i in node_ids]
        if ctx.query.get("page") is None:
            return self._list(ctx, "node", rows)
        return self._paginated(ctx, "node", rows)

    def _h_nodes_config(self, ctx: _Ctx, node: Any) -> SimResponse:
        root = ctx.request.root_url.rstrip("/")
        return self._json(
            ctx,
            {
                "debug": False,
                "uuid": node.uuid,
                "token_id": node.daemon_token_id,
                "token": node.daemon_token,
                "api": {
                    "host": "0.0.0.0",  # noqa: S104 - the panel's literal value
                    "port": node.daemon_listen,
                    "ssl": {
                        "enabled": node.scheme == "https" and not node.behind_proxy,
                        "cert": f"/etc/letsencrypt/live/{node.fqdn}/fullchain.pem",
                        "key": f"/etc/letsencrypt/live/{node.fqdn}/privkey.pem",
                    },
                    "upload_limit": node.upload_size,
                },
                "system": {"data": node.daemon_base, "sftp": {"bind_port": node.daemon_sftp}},
                "allowed_mounts": [],
                "remote": root,
            },
        )

    def _h_nodes_store(self, ctx: _Ctx) -> SimResponse:
        node = self.panel.save_node(None, ctx.body)
        meta = {"resource": f"{ctx.request.root_url.rstrip('/')}{A}/nodes/{node.id}"}
        return self._item(ctx, "node", node, 201, meta)

    def _h_nodes_update(self, ctx: _Ctx, node: Any) -> SimResponse:
        return self._item(ctx, "node", self.panel.save_node(node, ctx.body))

    def _h_nodes_delete(self, ctx: _Ctx, node: Any) -> SimResponse:
        self.panel.delete_node(node)
        return self._no_content()

    def _h_allocations_index(self, ctx: _Ctx, node: Any) -> SimResponse:
        rows = [a for a in self.panel.sorted_allocations() if a.node_id == node.id]
        rows = self._query(
            ctx,
            rows,
            {
                "ip": _exact(lambda a: a.ip),
                "port": _exact(lambda a: a.port),
                "ip_alias": _partial(lambda a: a.ip_alias),
                "server_id": _server_id_filter,
            },
            None,
        )
        return self._paginated(ctx, "allocation", rows)

    def _h_allocations_store(self, ctx: _Ctx, node: Any) -> SimResponse:
        self.panel.create_allocations(node, ctx.body)
        return self._no_content()

    def _h_allocations_delete(self, ctx: _Ctx, node: Any, allocation: Any) -> SimResponse:
        self.panel.delete_allocation(allocation)
        return self._no_content()

    # ------------------------------------------------------------------ locations, nests, eggs

    def _h_locations_index(self, ctx: _Ctx) -> SimResponse:
        rows = [self.panel.locations[i] for i in sorted(self.panel.locations)]
        rows = self._query(
            ctx,
            rows,
            {"short": _partial(lambda loc: loc.short), "long": _partial(lambda loc: loc.long)},
            {"id": lambda loc: loc.id},
        )
        return self._paginated(ctx, "location", rows)

    def _h_locations_view(self, ctx: _Ctx, location: Any) -> SimResponse:
        return self._item(ctx, "location", location)

    def _h_locations_store(self, ctx: _Ctx) -> SimResponse:
        location = self.panel.save_location(None, ctx.body)
        meta = {"resource": f"{ctx.request.root_url.rstrip('/')}{A}/locations/{location.id}"}
        return self._item(ctx, "location", location, 201, meta)

    def _h_locations_update(self, ctx: _Ctx, location: Any) -> SimResponse:
        return self._item(ctx, "location", self.panel.save_location(location, ctx.body))

    def _h_locations_delete(self, ctx: _Ctx, location: Any) -> SimResponse:
        self.panel.delete_location(location)
        return self._no_content()

    def _h_nests_index(self, ctx: _Ctx) -> SimResponse:
        rows = [self.panel.nests[i] for i in sorted(self.panel.nests)]
        return self._paginated(ctx, "nest", rows)  # no filters or sorts declared: ignored

    def _h_nests_view(self, ctx: _Ctx, nest: Any) -> SimResponse:
        return self._item(ctx, "nest", nest)

    def _h_eggs_index(self, ctx: _Ctx, nest: Any) -> SimResponse:
        rows = [egg for egg in self.panel.sorted_eggs() if egg.nest_id == nest.id]
        return self._list(ctx, "egg", rows)  # not paginated: no meta

    def _h_eggs_view(self, ctx: _Ctx, nest: Any, egg: Any) -> SimResponse:
        return self._item(ctx, "egg", egg)

    # ------------------------------------------------------------------ client API

    def _client_server_payload(self, server: ServerRow, user: UserRow) -> dict[str, Any]:
        panel = self.panel
        node = panel.nodes[server.node_id]
        egg = panel.eggs.get(server.egg_id)
        environment = tf.server_environment(panel, server)
        primary = panel.allocations.get(server.allocation_id)
        invocation = server.startup
        replacements = {
            "SERVER_MEMORY": str(server.memory),
            "SERVER_IP": primary.ip if primary else "",
            "SERVER_PORT": str(primary.port) if primary else "",
            **{k: php_string(v) for k, v in environment.items()},
        }
        for name, value in replacements.items():
            invocation = invocation.replace("{{" + name + "}}", value)
        allocations = [a for a in panel.sorted_allocations() if a.server_id == server.id]
        variables = [v for v in panel.variables_of(server.egg_id) if v.user_viewable]
        return {
            "object": "server",
            "attributes": {
                "server_owner": server.owner_id == user.id,
                "identifier": server.uuid_short,
                "internal_id": server.id,
                "uuid": server.uuid,
                "name": server.name,
                "node": node.name,
                "is_node_under_maintenance": node.maintenance_mode,
                "sftp_details": {"ip": node.fqdn, "port": node.daemon_sftp},
                "description": server.description,
                "limits": {
                    "memory": server.memory,
                    "swap": server.swap,
                    "disk": server.disk,
                    "io": server.io,
                    "cpu": server.cpu,
                    "threads": server.threads,
                    "oom_disabled": server.oom_disabled,
                },
                "invocation": invocation,
                "docker_image": server.image,
                "egg_features": egg.features if egg else None,
                "feature_limits": {
                    "databases": server.database_limit,
                    "allocations": server.allocation_limit,
                    "backups": server.backup_limit,
                },
                "status": server.status,
                "is_suspended": server.status == "suspended",
                "is_installing": server.status in ("installing", "install_failed"),
                "is_transferring": server.transferring,
                "relationships": {
                    "allocations": {
                        "object": "list",
                        "data": [
                            {
                                "object": "allocation",
                                "attributes": {
                                    "id": a.id,
                                    "ip": a.ip,
                                    "ip_alias": a.ip_alias,
                                    "port": a.port,
                                    "notes": a.notes,
                                    "is_default": a.id == server.allocation_id,
                                },
                            }
                            for a in allocations
                        ],
                    },
                    "variables": {
                        "object": "list",
                        "data": [
                            {
                                "object": "egg_variable",
                                "attributes": {
                                    "name": v.name,
                                    "description": v.description,
                                    "env_variable": v.env_variable,
                                    "default_value": v.default_value,
                                    "server_value": server.variables.get(v.id),
                                    "is_editable": v.user_editable,
                                    "rules": v.rules,
                                },
                            }
                            for v in variables
                        ],
                    },
                },
            },
        }

    def _h_client_index(self, ctx: _Ctx) -> SimResponse:
        user = _user_of(ctx)
        kind = ctx.query.get("type")
        servers = self.panel.sorted_servers()
        if kind in ("admin", "admin-all") and user.root_admin:
            rows = servers if kind == "admin-all" else [s for s in servers if s.owner_id != user.id]
        else:
            rows = [s for s in servers if s.owner_id == user.id]
        rows = self._query(
            ctx,
            rows,
            {
                "uuid": _partial(lambda s: s.uuid),
                "name": _partial(lambda s: s.name),
                "description": _partial(lambda s: s.description),
                "external_id": _partial(lambda s: s.external_id),
                "*": lambda s, v: any(
                    _partial(getter)(s, v)
                    for getter in (lambda x: x.name, lambda x: x.uuid, lambda x: x.external_id)
                ),
            },
            None,
        )
        per_page = min(_per_page(ctx.query.get("per_page"), 50), 100)
        page = _current_page(ctx.query.get("page"))
        total = len(rows)
        last_page = max(math.ceil(total / per_page), 1)
        items = rows[(page - 1) * per_page : page * per_page]
        links: dict[str, str] = {}
        if page > 1:
            links["previous"] = f"{ctx.url}?page={page - 1}"
        if page < last_page:
            links["next"] = f"{ctx.url}?page={page + 1}"
        return self._json(
            ctx,
            {
                "object": "list",
                "data": [self._client_server_payload(s, user) for s in items],
                "meta": {
                    "pagination": {
                        "total": total,
                        "count": len(items),
                        "per_page": per_page,
                        "current_page": page,
                        "total_pages": last_page,
                        "links": links,
                    }
                },
            },
        )

    def _h_client_server(self, ctx: _Ctx, server: ServerRow) -> SimResponse:
        return self._json(ctx, self._client_server_payload(server, _user_of(ctx)))

    def _conflict(self, server: ServerRow) -> None:
        message = self.panel.state_conflict(server)
        if message is not None:
            raise ApiError(409, "ServerStateConflictException", message)

    def _h_client_resources(self, ctx: _Ctx, server: ServerRow) -> SimResponse:
        self._conflict(server)
        stats = self.panel.resources(server)
        return self._json(ctx, {"object": "stats", "attributes": stats})

    def _h_client_power(self, ctx: _Ctx, server: ServerRow) -> SimResponse:
        self._conflict(server)
        validate(ctx.body, {"signal": "required|string|in:start,stop,restart,kill"})
        self.panel.power(server, ctx.body["signal"])
        return self._no_content()

    def _h_client_websocket(self, ctx: _Ctx, server: ServerRow) -> SimResponse:
        node = self.panel.nodes[server.node_id]
        if (
            ctx.user is None
            or not ctx.user.root_admin
            or server.status == "suspended"
            or node.maintenance_mode
        ):
            self._conflict(server)
        token = self.panel.random_string(64)
        return self._json(
            ctx,
            {
                "data": {
                    "token": token,
                    "socket": f"wss://{node.fqdn}:{node.daemon_listen}/api/servers/{server.uuid}/ws",
                }
            },
        )

    # ------------------------------------------------------------------ control endpoints

    def _control(self, request: SimRequest, path: str) -> SimResponse:
        """Private endpoints for demos and out-of-process tests (no auth: keep it local)."""
        method = request.method.upper()
        try:
            body = json.loads(request.body.decode() or "{}") if request.body else {}
        except ValueError:
            return _control_json({"error": "body must be JSON"}, 400)
        panel = self.panel
        try:
            if path == "/_simulator/state" and method == "GET":
                return _control_json(self.snapshot())
            if path == "/_simulator/reset" and method == "POST":
                self.reset(seed=body.get("seed", True))
                return _control_json({"ok": True, "seed": self.seed_summary()})
            if path == "/_simulator/faults":
                if method == "GET":
                    return _control_json([f.to_dict() for f in self.faults.active()])
                if method == "DELETE":
                    self.faults.clear()
                    return _control_json({"ok": True})
                if method == "POST":
                    fault = self.faults.add(**body)
                    return _control_json(fault.to_dict(), 201)
            if path == "/_simulator/time/advance" and method == "POST":
                panel.advance_time(float(body.get("seconds", 0)))
                panel.tick()
                return _control_json({"ok": True, "now": panel.now()})
            if path == "/_simulator/settings" and method == "POST":
                if "install_delay" in body:
                    panel.install_delay = float(body["install_delay"])
                    self._install_delay = panel.install_delay
                if "rate_limit_per_minute" in body:
                    self.rate_limit_per_minute = int(body["rate_limit_per_minute"])
                if "latency" in body:
                    self.latency = float(body["latency"])
                if "debug" in body:
                    self.debug = bool(body["debug"])
                if "require_2fa" in body:
                    panel.require_2fa = body["require_2fa"]
                return _control_json({"ok": True})
            match = re.fullmatch(r"/_simulator/nodes/(\d+)/wings", path)
            if match and method == "POST":
                panel.set_wings_failure(int(match.group(1)), body.get("failure"))
                return _control_json({"ok": True})
            match = re.fullmatch(r"/_simulator/nodes/(\d+)", path)
            if match and method == "PATCH":
                node = panel.nodes[int(match.group(1))]
                for name in ("public", "maintenance_mode", "memory", "disk"):
                    if name in body:
                        setattr(node, name, body[name])
                return _control_json({"ok": True})
            match = re.fullmatch(r"/_simulator/eggs/(\d+)", path)
            if match and method == "PATCH":
                panel.eggs[int(match.group(1))].fail_install = bool(body.get("fail_install"))
                return _control_json({"ok": True})
            match = re.fullmatch(r"/_simulator/servers/(\d+)/(install|transfer)", path)
            if match and method == "POST":
                server = panel.servers[int(match.group(1))]
                if match.group(2) == "install":
                    panel.complete_install(server, success=body.get("success"))
                else:
                    server.transferring = bool(body.get("transferring", True))
                return _control_json({"ok": True})
            if path == "/_simulator/keys" and method == "POST":
                token = panel.add_api_key(
                    int(body["user_id"]),
                    key_type=body.get("key_type", "application"),
                    acl=body.get("acl"),
                    allowed_ips=body.get("allowed_ips"),
                )
                return _control_json({"token": token}, 201)
        except (KeyError, ValueError, TypeError) as exc:
            return _control_json({"error": f"{type(exc).__name__}: {exc}"}, 400)
        return _control_json({"error": f"no control endpoint {method} {path}"}, 404)

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


# =========================================================================== helpers


def _user_of(ctx: _Ctx) -> UserRow:
    if ctx.user is None:  # authentication ran before any handler
        raise _Unauthenticated
    return ctx.user


def _control_json(payload: Any, status: int = 200) -> SimResponse:
    return SimResponse(status, list(JSON_HEADERS), json.dumps(payload).encode())


def _malformed(reason: str) -> ApiError:
    return ApiError(
        400,
        "BadRequestHttpException",
        f"The JSON data passed in the request appears to be malformed: {reason}",
    )


def _ip_allowed(remote: str, ranges: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    for item in ranges:
        try:
            if address in ipaddress.ip_network(item, strict=False):
                return True
        except ValueError:
            continue
    return False


def _per_page(value: Any, default: int) -> int:
    if value is None:
        return default
    text = php_string(value)
    if not text.isdigit():
        # Laravel does arithmetic on it and fails: a 500.
        raise ApiError(500, "TypeError", GENERIC_500, debug_detail="Unsupported operand types")
    return int(text) or 15  # 0 falls back to the model's default of 15


def _current_page(value: Any) -> int:
    if value is not None and is_int_like(value) and int(value) >= 1:
        return int(value)
    return 1


def _filter_value(value: Any) -> Any:
    """spatie: comma-separated values become a list (ORed); "true"/"false" become booleans."""
    if isinstance(value, str):
        if "," in value:
            return value.split(",")
        if value == "true":
            return True
        if value == "false":
            return False
    return value


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _partial(getter: Callable[[Any], Any]) -> Callable[[Any, Any], bool]:
    def predicate(row: Any, value: Any) -> bool:
        field_value = getter(row)
        if field_value is None:
            return False
        haystack = php_string(field_value).lower()
        return any(php_string(v).lower() in haystack for v in _values(value))

    return predicate


def _exact(getter: Callable[[Any], Any]) -> Callable[[Any, Any], bool]:
    def predicate(row: Any, value: Any) -> bool:
        field_value = php_string(getter(row)).lower()
        return any(php_string(v).lower() == field_value for v in _values(value))

    return predicate


def _server_id_filter(row: Any, value: Any) -> bool:
    # AllocationServerFilter: a numeric value selects that server's, anything else the free ones.
    if not isinstance(value, list) and not isinstance(value, bool) and php_string(value).isdigit():
        return row.server_id == int(php_string(value))
    return row.server_id is None


__all__ = ["PanelSimulator", "SimRequest", "SimResponse", "parse_php_query", "wants_json"]
