"""DRF glue: one error shape `{message, code, extra}` with field errors under extra.fields.

Also the error pages of config/urls.py (handler400/403/404/500) and CSRF_FAILURE_VIEW: JSON in
that shape for /api/ paths that no DRF view answers (unknown paths, non-integer ids, oversized
bodies, an unhandled exception), the site's branded HTML pages (templates/4xx.html, 500.html)
elsewhere. The 500 page is rendered without the request and without the database (no context
processors): it must show even when those are what failed.
"""

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseServerError,
    JsonResponse,
)
from django.shortcuts import render
from django.template import loader
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from common.errors import ApplicationError, CommonErrorCode

logger = logging.getLogger(__name__)


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = CommonErrorCode.REQUEST_TOO_LARGE


class BadRequest(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The request could not be read."
    default_code = CommonErrorCode.BAD_REQUEST


def _flatten(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [str(item) for item in detail]
        return [_flatten(item) for item in detail]
    return [str(detail)]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(
            {"message": exc.message, "code": exc.code, "extra": exc.extra},
            status=exc.http_status,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, SuspiciousOperation):
        # Django raises these while reading the body (DATA_UPLOAD_MAX_MEMORY_SIZE, too many
        # fields); handled here they never reach django.security's log, so log them.
        logger.warning("api request refused: %s: %s", type(exc).__name__, exc)
        exc = RequestTooLarge() if isinstance(exc, RequestDataTooBig) else BadRequest()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = (
            _flatten(exc.detail)
            if isinstance(exc.detail, dict)
            else {"non_field_errors": _flatten(exc.detail)}
        )
        first = next(iter(fields.values()), ["Invalid input."])
        message = (
            first[0]
            if isinstance(first, list) and first and isinstance(first[0], str)
            else ("Invalid input.")
        )
        response.data = {
            "message": message,
            "code": CommonErrorCode.INVALID,
            "extra": {"fields": fields},
        }
        response.status_code = status.HTTP_400_BAD_REQUEST
    else:
        detail = getattr(exc, "detail", str(exc))
        code = detail.code if hasattr(detail, "code") else CommonErrorCode.ERROR
        response.data = {"message": str(detail), "code": code, "extra": {}}
    return response


def _error(message: str, code: str, status_code: int) -> JsonResponse:
    return JsonResponse({"message": message, "code": code, "extra": {}}, status=status_code)


def _is_api(request: HttpRequest) -> bool:
    return request.path_info == "/api" or request.path_info.startswith("/api/")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: JSON under /api/ (an unknown path, or an id the <int:> converter refused),
    the site's HTML page elsewhere."""
    if _is_api(request):
        return _error("Not found.", CommonErrorCode.NOT_FOUND, 404)
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: JSON under /api/ (413 for a body over DATA_UPLOAD_MAX_MEMORY_SIZE), the
    site's HTML page elsewhere. Django has already logged the reason (django.security)."""
    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            return _error(RequestTooLarge.default_detail, CommonErrorCode.REQUEST_TOO_LARGE, 413)
        return _error(BadRequest.default_detail, CommonErrorCode.BAD_REQUEST, 400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler403: JSON under /api/, the branded page elsewhere. The exception's text is never
    shown (it is written for us, not for the visitor)."""
    if _is_api(request):
        return _error(
            _("You do not have permission to perform this action."),
            exceptions.PermissionDenied.default_code,
            403,
        )
    return render(request, "403.html", status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the branded "your form expired" page (Django logs the reason to
    django.security.csrf; it is not shown)."""
    if _is_api(request):
        return _error(
            _("The request was refused (CSRF check failed)."),
            exceptions.PermissionDenied.default_code,
            403,
        )
    return render(request, "403_csrf.html", status=403)


_BARE_500 = (
    "<!doctype html><html><head><meta charset=utf-8><title>Server error</title></head>"
    "<body><h1>Server error (500)</h1><p>Please try again in a few minutes.</p></body></html>"
)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: JSON under /api/; elsewhere templates/500.html rendered from settings alone
    (no request context, no database), and a bare page if even that template fails."""
    if _is_api(request):
        return _error(_("A server error occurred."), CommonErrorCode.ERROR, 500)
    context = {"PORTAL_NAME": settings.PORTAL_NAME, "SUPPORT_EMAIL": settings.SUPPORT_EMAIL}
    try:
        body = loader.get_template("500.html").render(context)
    except Exception:
        logger.exception("the 500 page could not be rendered")
        return HttpResponseServerError(_BARE_500)
    return HttpResponseServerError(body)
