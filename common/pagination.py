"""Paginated, filtered API lists: one shape for every list (count, next, previous, results).

A list view filters its queryset with a django-filter FilterSet (`filter_queryset`: an invalid
filter is a 400 with field messages, never an unfiltered list) and answers `paginated(...)`.
The querysets must be ordered (a stable page boundary); the page is one LIMIT/OFFSET query
plus one COUNT.
"""

from typing import Any

from django.db.models import QuerySet
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


def filter_queryset(
    request: Request, filterset_class: type[FilterSet], queryset: QuerySet
) -> QuerySet:
    filterset = filterset_class(data=request.query_params, queryset=queryset, request=request)
    if not filterset.is_valid():
        raise ApplicationError.for_fields(
            {
                field: [str(message) for message in messages]
                for field, messages in filterset.errors.items()
            }
        )
    return filterset.qs


def paginated(
    request: Request,
    view: Any,
    queryset: QuerySet,
    serializer_class: type[BaseSerializer],
    *,
    context: dict[str, Any] | None = None,
) -> Response:
    paginator = StandardPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    serializer = serializer_class(page, many=True, context={"request": request, **(context or {})})
    return paginator.get_paginated_response(serializer.data)
