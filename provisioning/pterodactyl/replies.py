"""Reading one reply of the panel: the JSON object of a success, or the error it stands for.

Every status the panel (or a proxy or web server in front of it) can send maps to one of our
error classes (``errors.py``), with ``retryable`` set and a hint where the fix is on our side
(key, URL, permissions). Text from the panel goes through ``redact`` so the key never appears in
a message.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from provisioning.pterodactyl.errors import (
    FieldError,
    PanelAuthError,
    PanelBadRequest,
    PanelBadResponse,
    PanelConflict,
    PanelError,
    PanelNotFound,
    PanelNoViableAllocation,
    PanelNoViableNode,
    PanelPermissionError,
    PanelRateLimited,
    PanelUnavailable,
    PanelValidationError,
)


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _forbidden_hint(detail: str) -> str:
    if detail.startswith("This IP address"):
        return "add this host's public IP address to the key's allowed IPs, or clear the list"
    if "does not have permission to access the API" in detail:
        return (
            "the key's owner is not a root admin (demoting an admin disables their keys): "
            "create the application key while logged in as a root admin"
        )
    if "application API key on an endpoint that requires a client API key" in detail:
        return "the client API needs a ptlc_ key (Account > API Credentials) of a root admin"
    if detail == "This action is unauthorized.":
        return (
            "the application key lacks Read/Write permission for this resource: edit the key "
            "under Admin > Application API"
        )
    return PanelPermissionError.default_hint


def _conflict_is_lasting(detail: str) -> bool:
    # Suspension and maintenance do not end by waiting a few seconds.
    return "suspended" in detail or "under maintenance" in detail


def _is_html(text: str, content_type: str) -> bool:
    head = text.lstrip()[:64].lower()
    return "html" in content_type.lower() or head.startswith(("<!doctype", "<html", "<"))


def read_reply(
    method: str, where: str, response: requests.Response, redact: Callable[[str], str]
) -> Reply:
    """The reply of a 2xx, else raise the error it maps to (``where``: "GET /api/...")."""
    status = response.status_code
    content_type = response.headers.get("Content-Type", "")
    raw = response.content or b""
    text = raw.decode("utf-8", errors="replace")

    if 300 <= status < 400:
        location = response.headers.get("Location", "")
        if "/auth/login" in location:
            raise PanelAuthError(
                f"{where}: the panel redirected to its login page ({status})",
                status=status,
                hint=(
                    "the API key was not accepted and the request was treated as a browser "
                    "(missing 'Accept: application/json' or the URL points at the web UI): "
                    "check PTERODACTYL_ADMIN_API_KEY and PTERODACTYL_URL"
                ),
            )
        raise PanelBadResponse(
            f"{where}: the panel answered with a redirect ({status}) to "
            f"{redact(location) or 'nowhere'}",
            status=status,
            hint="set PTERODACTYL_URL to the panel's final address (https, no path)",
        )

    parsed: Any = None
    json_ok = False
    if raw:
        try:
            parsed = json.loads(text)
            json_ok = True
        except ValueError:
            json_ok = False

    if 200 <= status < 300:
        if status == 204 or not raw.strip():
            return Reply(status, None)
        if not json_ok or not isinstance(parsed, dict):
            if _is_html(text, content_type):
                raise PanelBadResponse(
                    f"{where}: the reply is an HTML page, not JSON: the URL does not look "
                    "like a Pterodactyl panel API",
                    status=status,
                    hint="set PTERODACTYL_URL to the panel's base URL, e.g. "
                    "https://panel.example.com",
                )
            raise PanelBadResponse(
                f"{where}: the panel's reply is not a JSON object ({status}, {len(raw)} bytes)",
                status=status,
            )
        return Reply(status, parsed)

    errors = parsed.get("errors") if json_ok and isinstance(parsed, dict) else None
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        raise _non_panel_error(method, where, status, text, content_type, response)
    raise _panel_error(method, where, status, errors, response, redact)


def _non_panel_error(
    method: str,
    where: str,
    status: int,
    text: str,
    content_type: str,
    response: requests.Response,
) -> PanelError:
    """An error status without the panel's ``{"errors": [...]}`` body (proxy, web server)."""
    body_kind = "an HTML page" if _is_html(text, content_type) else "a non-JSON body"
    if status == 429:
        return PanelRateLimited(
            f"{where}: rate limited (429, {body_kind})",
            status=status,
            retry_after=_parse_retry_after(response.headers.get("Retry-After")),
        )
    if status >= 500:
        return PanelUnavailable(
            f"{where}: {status} with {body_kind} (the web server or a proxy in front of the "
            "panel failed)",
            status=status,
            outcome_unknown=method != "GET",
        )
    if status == 401:
        return PanelAuthError(
            f"{where}: 401 with {body_kind}",
            status=status,
        )
    if status == 403:
        return PanelPermissionError(
            f"{where}: 403 with {body_kind}",
            status=status,
            hint="a proxy or firewall in front of the panel refused the request, or the key "
            "lacks permission",
        )
    return PanelBadResponse(
        f"{where}: {status} with {body_kind}: the URL does not look like a Pterodactyl panel API",
        status=status,
        hint="set PTERODACTYL_URL to the panel's base URL, e.g. https://panel.example.com",
    )


def _panel_error(
    method: str,
    where: str,
    status: int,
    errors: list[dict[str, Any]],
    response: requests.Response,
    redact: Callable[[str], str],
) -> PanelError:
    """The error for a body in the panel's own ``{"errors": [...]}`` format."""
    first = errors[0]
    code = str(first.get("code") or "")
    detail = redact(str(first.get("detail") or ""))
    summary = f"{where}: {status} {code}: {detail}".rstrip(": ")
    common: dict[str, Any] = {"status": status, "code": code, "errors": errors}

    if status == 422:
        field_errors = []
        for item in errors:
            meta = item.get("meta") if isinstance(item.get("meta"), dict) else {}
            field_errors.append(
                FieldError(
                    source_field=str(meta.get("source_field") or ""),
                    rule=str(meta.get("rule") or ""),
                    detail=redact(str(item.get("detail") or "")),
                )
            )
        return PanelValidationError(
            f"{where}: the panel rejected the data (422)", field_errors=field_errors, **common
        )
    if status == 429:
        return PanelRateLimited(
            f"{where}: the panel's rate limit was hit (429 {code})",
            retry_after=_parse_retry_after(response.headers.get("Retry-After")),
            **common,
        )
    if code == "DaemonConnectionException":
        if status >= 500:
            return PanelUnavailable(
                f"{where}: Wings (the daemon on the node) failed: {detail}",
                hint="check that Wings runs on the node and the panel can reach it",
                outcome_unknown=method != "GET",
                **common,
            )
        if status == 409:
            return PanelConflict(summary, **common)
        return PanelBadRequest(f"{where}: Wings refused the request: {detail}", **common)
    if status >= 500:
        return PanelUnavailable(summary, outcome_unknown=method != "GET", **common)
    if status == 400:
        if code == "NoViableNodeException":
            return PanelNoViableNode(summary, **common)
        if code == "NoViableAllocationException":
            return PanelNoViableAllocation(summary, **common)
        if code == "TwoFactorAuthRequiredException":
            return PanelAuthError(
                summary,
                hint="the panel requires 2FA for admins: enable TOTP on the key owner's "
                "account or relax the panel's 2FA requirement",
                **common,
            )
        return PanelBadRequest(summary, **common)
    if status == 401:
        return PanelAuthError(summary, **common)
    if status == 403:
        return PanelPermissionError(summary, hint=_forbidden_hint(detail), **common)
    if status == 404:
        if detail.startswith("The route "):
            return PanelBadResponse(
                summary,
                hint="the panel has no such API route: check PTERODACTYL_URL (base URL of the "
                "panel, no path) and the panel version",
                **common,
            )
        return PanelNotFound(summary, **common)
    if status == 409:
        return PanelConflict(summary, retryable=not _conflict_is_lasting(detail), **common)
    if status == 405:
        return PanelBadResponse(summary, hint="panel version mismatch?", **common)
    return PanelBadRequest(summary, **common)
