"""The panel's wire format: requests and responses, PHP-style JSON, HTML error pages,
Laravel's query-string parsing and input trimming."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

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


def reject_constant(name: str) -> Any:
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
