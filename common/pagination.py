"""Paginated, filtered API lists: one shape for every list (count, next, previous, results).

A list view filters its queryset with a django-filter FilterSet (`filter_queryset`: an invalid
filter is a 400 with field messages, never an unfiltered list) and answers `paginated(...)`.
The querysets must be ordered (a stable page boundary); the page is one LIMIT/OFFSET query
plus one COUNT. A page past the end is a 404 in the API's error shape.

The view also names `pagination_class = StandardPagination` and `filterset_class = ...`:
common.openapi reads them to document the query parameters and the paginated envelope.
"""

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django_filters import FilterSet
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from common.errors import ApplicationError


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def _datetimes_in_utc(cleaned_data: dict[str, Any]) -> dict[str, list[str]]:
    """Aware datetimes to UTC in place. Python accepts offsets up to +-23:59 but PostgreSQL
    only +-15:59 (a DataError, i.e. a 500, found by schemathesis); a date that UTC pushes out of
    Python's range (year 1 with a positive offset) is a field error."""
    errors: dict[str, list[str]] = {}
    for name, value in cleaned_data.items():
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            try:
                cleaned_data[name] = value.astimezone(dt.UTC)
            except OverflowError:
                errors[name] = [str(_("Enter a date and time within years 1 to 9999."))]
    return errors


def filter_queryset(
    request: Request, filterset_class: type[FilterSet], queryset: QuerySet
) -> QuerySet:
    filterset = filterset_class(data=request.query_params, queryset=queryset, request=request)
    errors = (
        {
            field: [str(message) for message in messages]
            for field, messages in filterset.errors.items()
        }
        if not filterset.is_valid()
        else _datetimes_in_utc(filterset.form.cleaned_data)
    )
    if errors:
        raise ApplicationError.for_fields(errors)
    return filterset.qs


def paginated(
    request: Request,
    view: Any,
    queryset: QuerySet,
    serializer_class: type[BaseSerializer],
    *,
    context: dict[str, Any] | None = None,
    context_for_page: Callable[[Sequence[Any]], dict[str, Any]] | None = None,
) -> Response:
    """`context_for_page(rows)` adds serializer context computed from the page's rows (e.g. a
    batch lookup for just these rows, in a constant number of queries)."""
    paginator = StandardPagination()
    page = paginator.paginate_queryset(queryset, request, view=view) or []
    extra = context_for_page(page) if context_for_page else {}
    serializer = serializer_class(
        page, many=True, context={"request": request, **(context or {}), **extra}
    )
    return paginator.get_paginated_response(serializer.data)
