"""The errors the panel renders as ``{"errors": [{code, status, detail}]}``."""

from __future__ import annotations

from typing import Any

GENERIC_500 = "An unexpected error was encountered while processing this request, please try again."
MODEL_NOT_FOUND = "The requested resource could not be found on the server."


class ApiError(Exception):
    """An error the panel renders as ``{"errors": [{code, status, detail}]}``."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        debug_detail: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        # What APP_DEBUG=true shows instead of the production detail.
        self.debug_detail = debug_detail or detail


def display_error(detail: str, code: str = "DisplayException") -> ApiError:
    return ApiError(400, code, detail)


def model_not_found(model: str, ident: Any) -> ApiError:
    return ApiError(
        404,
        "NotFoundHttpException",
        MODEL_NOT_FOUND,
        debug_detail=f"No query results for model [Pterodactyl\\Models\\{model}] {ident}",
    )
