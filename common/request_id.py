"""Request ids and Celery task ids on every log record.

- `RequestIdMiddleware` (first in MIDDLEWARE) takes the caller's `X-Request-ID` when it is
  well-formed (a proxy or load balancer usually sets one), else makes one, keeps it in a
  contextvar for the request's duration and sends it back in the response header.
- `LogContextFilter` (common.logging, on the console handler) copies the contextvars onto each
  record as `request_id` and `task_id`, so every line of one request or task can be grepped.
- `connect_celery_signals` (called by config/celery.py): a task's id is in the contextvar while it
  runs; the id of the request that queued it travels in the message headers, so the task's log
  lines carry both. It also puts our filters (and the JSON formatter, LOG_FORMAT=json) on the
  handlers Celery installs in a worker, which replace Django's LOGGING there.

Contextvars, not thread-locals: each thread (and each asyncio task) sees its own value.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"
# The header Celery messages carry the queuing request's id in.
TASK_REQUEST_ID_HEADER = "portal_request_id"

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
task_id_var: ContextVar[str | None] = ContextVar("task_id", default=None)

# Letters, digits and - _ . : only, 8 to 128 of them: a UUID, a trace id, a proxy's id. Anything
# else (spaces, quotes, newlines: log injection) is replaced by our own id.
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{8,128}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def well_formed_request_id(value: str | None) -> str | None:
    if value and _WELL_FORMED.fullmatch(value):
        return value
    return None


def current_request_id() -> str | None:
    return request_id_var.get()


def current_task_id() -> str | None:
    return task_id_var.get()


class RequestIdMiddleware:
    """Puts the request's id on `request.request_id`, in the log context and on the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = (
            well_formed_request_id(request.headers.get(REQUEST_ID_HEADER)) or new_request_id()
        )
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response


# --- Celery -------------------------------------------------------------------------------------


def _on_before_task_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = request_id_var.get()
    if request_id and headers is not None:
        headers.setdefault(TASK_REQUEST_ID_HEADER, request_id)


# A task's tokens, to restore the context after it (an eager task runs inside a request).
_task_tokens: dict[str, tuple[Any, Any]] = {}


def _on_task_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if not task_id:
        return
    request = getattr(task, "request", None)
    queued_by = getattr(request, TASK_REQUEST_ID_HEADER, None) or (
        (getattr(request, "headers", None) or {}).get(TASK_REQUEST_ID_HEADER)
    )
    request_token = request_id_var.set(
        well_formed_request_id(queued_by) if queued_by else request_id_var.get()
    )
    _task_tokens[task_id] = (task_id_var.set(task_id), request_token)


def _on_task_postrun(task_id: str | None = None, **_: Any) -> None:
    tokens = _task_tokens.pop(task_id or "", None)
    if tokens is None:
        return
    task_token, request_token = tokens
    task_id_var.reset(task_token)
    request_id_var.reset(request_token)


def _on_worker_logging_setup(logger: logging.Logger | None = None, **_: Any) -> None:
    """Celery replaced the root handlers with its own: give them our filters and, with
    LOG_FORMAT=json, our formatter (secrets are masked in workers as on the web)."""
    from django.conf import settings

    from common.logging import JsonFormatter, LogContextFilter, RedactSecretsFilter

    if logger is None:
        return
    json_logs = getattr(settings, "LOG_FORMAT", "text") == "json"
    for handler in logger.handlers:
        if not any(isinstance(f, RedactSecretsFilter) for f in handler.filters):
            handler.addFilter(RedactSecretsFilter())
        if not any(isinstance(f, LogContextFilter) for f in handler.filters):
            handler.addFilter(LogContextFilter())
        if json_logs:
            handler.setFormatter(JsonFormatter())


def connect_celery_signals() -> None:
    """Connect the handlers above (weak=False: they are module functions; dispatch_uid: once)."""
    from celery import signals

    signals.before_task_publish.connect(
        _on_before_task_publish, weak=False, dispatch_uid="portal-request-id-publish"
    )
    signals.task_prerun.connect(_on_task_prerun, weak=False, dispatch_uid="portal-task-id-in")
    signals.task_postrun.connect(_on_task_postrun, weak=False, dispatch_uid="portal-task-id-out")
    signals.after_setup_logger.connect(
        _on_worker_logging_setup, weak=False, dispatch_uid="portal-worker-logging"
    )
    signals.after_setup_task_logger.connect(
        _on_worker_logging_setup, weak=False, dispatch_uid="portal-worker-task-logging"
    )
