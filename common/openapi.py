"""The OpenAPI schema's common parts (drf-spectacular): every operation documents the error
responses it can give in the API's one error shape `{message, code, extra}` (common.api), and
list views built on common.pagination show their filters and the paginated envelope.

Which errors an operation documents, unless its view's @extend_schema names them itself:
- 400 for writes (bad input, field messages under extra.fields; a business rule refused) and
  for reads with query parameters (an invalid filter);
- 401 for every operation (a missing, unknown, revoked or expired bearer token; also on public
  routes, which still read a token that is sent);
- 403 where a permission is checked (not staff, a token without the scope, CSRF);
- 404 where the path names an object (another customer's is 404 too) and on paginated lists
  (a page past the end);
- 409 and 413 for writes (the object's state does not allow it; a body over the upload limit);
- 429 for every operation (throttled).
"""

from typing import Any

from django.utils.translation import gettext_lazy as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.contrib.django_filters import DjangoFilterExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import permissions, serializers

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

ERROR_DESCRIPTIONS: dict[int, Any] = {
    400: _("Invalid input (field messages under extra.fields) or a refused request."),
    401: _("No valid credentials: a missing, unknown, revoked or expired token."),
    403: _("Not allowed: not staff, a token without the scope this call needs, or CSRF."),
    404: _("No such object (another customer's objects are not found either)."),
    409: _("The object's current state does not allow this."),
    413: _("The request body is too large."),
    422: _("Understood but refused by a business rule."),
    429: _("Too many requests: throttled, retry later."),
    502: _("An outside service (the payment provider) refused the request."),
    503: _("An outside service is unavailable or not configured: retry later."),
}

# Field messages: a list of strings per field, or an object per item/key of a nested field.
_FIELD_MESSAGES_SCHEMA = {
    "type": "object",
    "additionalProperties": {
        "oneOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "additionalProperties": True},
        ]
    },
    "description": "Per input field, its messages (nested fields as objects).",
}


@extend_schema_field(
    {
        "type": "object",
        "properties": {"fields": _FIELD_MESSAGES_SCHEMA},
        "additionalProperties": True,
        "description": "Details: `fields` for input errors; other keys by error code.",
    }
)
class ErrorExtraField(serializers.JSONField):
    pass


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API (common.api.exception_handler)."""

    message = serializers.CharField(help_text="Safe to show to the user.")
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `not_found`.")
    extra = ErrorExtraField()

    class Meta:
        ref_name = "Error"


def error_responses(*status_codes: int) -> dict[int, OpenApiResponse]:
    """For a view's @extend_schema(responses=...): errors beyond the defaults (422, 502...)."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=str(ERROR_DESCRIPTIONS[code]))
        for code in status_codes
    }


class AutoSchema(SpectacularAutoSchema):
    def _is_public(self) -> bool:
        return any(
            isinstance(permission, permissions.AllowAny)
            for permission in self.view.get_permissions()
        )

    def _is_paginated_list(self) -> bool:
        return self._is_list_view() and self._get_paginator() is not None

    def _default_error_codes(self) -> list[int]:
        writes = self.method in WRITE_METHODS
        has_query = self._is_list_view() and (
            self._get_paginator() is not None or getattr(self.view, "filterset_class", None)
        )
        codes = [401, 429]
        if writes or has_query:
            codes.append(400)
        if not (self._is_public() and self.method in permissions.SAFE_METHODS):
            codes.append(403)
        if "{" in self.path or self._is_paginated_list():
            codes.append(404)
        if writes:
            codes += [409, 413]
        return sorted(codes)

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self._default_error_codes():
            responses.setdefault(str(code), {})
        for code, response in list(responses.items()):
            # Error codes named without a body (or added above) get the error shape.
            if code >= "400" and "content" not in response and int(code) in ERROR_DESCRIPTIONS:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(
                        ErrorSerializer,
                        description=response.get("description")
                        or str(ERROR_DESCRIPTIONS[int(code)]),
                    ),
                    code,
                    direction=direction,
                )
        return dict(sorted(responses.items()))

    def _get_filter_parameters(self) -> list[dict[str, Any]]:
        """A plain APIView has no queryset for drf-spectacular to find the FilterSet's model:
        read it from the view's `filterset_class` (what common.pagination.filter_queryset
        applies)."""
        filterset_class = getattr(self.view, "filterset_class", None)
        if filterset_class is None or not self._is_list_view():
            return super()._get_filter_parameters()
        extension = DjangoFilterExtension(DjangoFilterBackend())
        model = filterset_class._meta.model
        parameters: list[dict[str, Any]] = []
        for name, filter_field in filterset_class.base_filters.items():
            parameters += extension.resolve_filter_field(
                self, model, filterset_class, name, filter_field
            )
        return parameters
