"""Probes: /healthz (the process answers) and /readyz (it can do its work: database, broker,
panel), and the middleware that serves them and /metrics ahead of everything else.

`OperationsEndpointsMiddleware` sits right after the request id in MIDDLEWARE, so these paths
get no HTTPS redirect (an orchestrator probes plain HTTP), no ALLOWED_HOSTS check (it sends the
pod's IP as Host), no session, CSRF or login: /healthz touches nothing at all, not even the
database. The same views are in config/urls.py too (for reverse() and in case the middleware is
left out).

/readyz runs settings.READINESS_CHECKS (name -> dotted path of a function returning a
CheckResult). It answers 200 when all pass, else 503; either way the body names each check and
its status. Details are short fixed phrases: no URL, key, host name or traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str = ""

    def as_json(self) -> dict[str, str]:
        body = {"status": "ok" if self.ok else "fail"}
        if self.detail:
            body["detail"] = self.detail
        return body


def check_database() -> CheckResult:
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        # A broken connection must not be reused by the next probe.
        connection.close_if_unusable_or_obsolete()
        return CheckResult(ok=False, detail=f"query failed ({type(exc).__name__})")
    return CheckResult(ok=True)


def check_broker() -> CheckResult:
    from common.broker import broker_ping

    status = broker_ping(timeout=settings.OPERATIONS_BROKER_TIMEOUT)
    return CheckResult(ok=status.up, detail=status.detail)


@lru_cache(maxsize=8)
def _checks(items: tuple[tuple[str, str], ...]) -> list[tuple[str, Callable[[], CheckResult]]]:
    return [(name, import_string(path)) for name, path in items]


def run_readiness_checks() -> dict[str, CheckResult]:
    results = {}
    for name, check in _checks(tuple(settings.READINESS_CHECKS.items())):
        try:
            results[name] = check()
        except Exception as exc:  # a probe reports, it does not raise
            logger.warning("readiness check %s raised %s", name, type(exc).__name__)
            results[name] = CheckResult(ok=False, detail=f"check raised {type(exc).__name__}")
    return results


def _probe_response(body: dict, status: int) -> HttpResponse:
    response = JsonResponse(body, status=status)
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    return _probe_response({"status": "ok"}, 200)


def readyz(request: HttpRequest) -> HttpResponse:
    results = run_readiness_checks()
    failing = [name for name, result in results.items() if not result.ok]
    body = {
        "status": "fail" if failing else "ok",
        "checks": {name: result.as_json() for name, result in results.items()},
    }
    if failing:
        body["failing"] = failing
        logger.warning("not ready: %s", ", ".join(failing))
    response = _probe_response(body, 503 if failing else 200)
    # Logged once above, naming the checks; not again as a 5xx ERROR by django.request at
    # every probe (Django's own flag for "already logged").
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _metrics(request: HttpRequest) -> HttpResponse:
    from common.metrics import metrics_view

    return metrics_view(request)


OPERATIONS_ENDPOINTS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": _metrics,
}


class OperationsEndpointsMiddleware:
    """Answers /healthz, /readyz and /metrics before any other middleware runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = OPERATIONS_ENDPOINTS.get(request.path_info.rstrip("/") or "/")
        if view is None:
            return self.get_response(request)
        return view(request)
