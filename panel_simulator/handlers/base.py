"""What every handler shares: the request context, rendering (JSON, errors, items, lists,
pagination, filters and sorts) and small parsing helpers."""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from panel_simulator import transformers as tf
from panel_simulator.panel import GENERIC_500, ApiError, Panel
from panel_simulator.state import ApiKeyRow, UserRow
from panel_simulator.validation import (
    ValidationFailed,
    is_int_like,
    php_string,
)
from panel_simulator.wire import JSON_HEADERS, SimRequest, SimResponse, html_page, php_json


@dataclass
class Ctx:
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


class Unauthenticated(Exception):
    pass


class HandlerBase:
    """Rendering for the resource handlers; `PanelSimulator` supplies the state."""

    panel: Panel
    debug: bool

    def _headers(self, ctx: Ctx, extra: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
        headers = list(JSON_HEADERS)
        if extra:
            headers.extend(extra.items())
        return headers

    def _json(self, ctx: Ctx, payload: Any, status: int = 200) -> SimResponse:
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

    def _error(self, ctx: Ctx, error: ApiError) -> SimResponse:
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

    def _validation_error(self, ctx: Ctx, failed: ValidationFailed) -> SimResponse:
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
        self, ctx: Ctx, object_type: str, row: Any, status: int = 200, meta: Any = None
    ) -> SimResponse:
        payload = tf.render_item(self.panel, object_type, row, ctx.includes, ctx.key)
        if meta is not None:
            payload["meta"] = meta
        return self._json(ctx, payload, status)

    def _list(self, ctx: Ctx, object_type: str, rows: list[Any]) -> SimResponse:
        return self._json(ctx, tf.render_list(self.panel, object_type, rows, ctx.includes, ctx.key))

    def _paginated(
        self, ctx: Ctx, object_type: str, rows: list[Any], *, max_per_page: int | None = None
    ) -> SimResponse:
        per_page = per_page_of(ctx.query.get("per_page"), 50)
        if max_per_page is not None:
            per_page = min(per_page, max_per_page)
        page = current_page_of(ctx.query.get("page"))
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
        ctx: Ctx,
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
                rows = [row for row in rows if filters[name](row, filter_value(value))]
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


# =========================================================================== helpers


def user_of(ctx: Ctx) -> UserRow:
    if ctx.user is None:  # authentication ran before any handler
        raise Unauthenticated
    return ctx.user


def control_json(payload: Any, status: int = 200) -> SimResponse:
    return SimResponse(status, list(JSON_HEADERS), json.dumps(payload).encode())


def malformed(reason: str) -> ApiError:
    return ApiError(
        400,
        "BadRequestHttpException",
        f"The JSON data passed in the request appears to be malformed: {reason}",
    )


def ip_allowed(remote: str, ranges: list[str]) -> bool:
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


def per_page_of(value: Any, default: int) -> int:
    if value is None:
        return default
    text = php_string(value)
    if not text.isdigit():
        # Laravel does arithmetic on it and fails: a 500.
        raise ApiError(500, "TypeError", GENERIC_500, debug_detail="Unsupported operand types")
    return int(text) or 15  # 0 falls back to the model's default of 15


def current_page_of(value: Any) -> int:
    if value is not None and is_int_like(value) and int(value) >= 1:
        return int(value)
    return 1


def filter_value(value: Any) -> Any:
    """spatie: comma-separated values become a list (ORed); "true"/"false" become booleans."""
    if isinstance(value, str):
        if "," in value:
            return value.split(",")
        if value == "true":
            return True
        if value == "false":
            return False
    return value


def filter_values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def partial_match(getter: Callable[[Any], Any]) -> Callable[[Any, Any], bool]:
    def predicate(row: Any, value: Any) -> bool:
        field_value = getter(row)
        if field_value is None:
            return False
        haystack = php_string(field_value).lower()
        return any(php_string(v).lower() in haystack for v in filter_values(value))

    return predicate


def exact_match(getter: Callable[[Any], Any]) -> Callable[[Any, Any], bool]:
    def predicate(row: Any, value: Any) -> bool:
        field_value = php_string(getter(row)).lower()
        return any(php_string(v).lower() == field_value for v in filter_values(value))

    return predicate


def server_id_filter(row: Any, value: Any) -> bool:
    # AllocationServerFilter: a numeric value selects that server's, anything else the free ones.
    if not isinstance(value, list) and not isinstance(value, bool) and php_string(value).isdigit():
        return row.server_id == int(php_string(value))
    return row.server_id is None
