"""REST API (DRF) and its OpenAPI schema."""

from config.env import env

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # API tokens (common.tokens): hashed, scoped, revocable; first, so an anonymous call's
        # 401 challenges with "Bearer".
        "common.authentication.BearerTokenAuthentication",
        # DRF's session auth + CSRF, for the logged-in browser.
        "common.authentication.SessionAuthentication",
        # No HTTP Basic: a password on every call is a guessing oracle (one hash per try, no
        # lockout, no second factor).
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "common.permissions.TokenScopes",
    ],
    # JSON nested beyond 64 levels is a 400, not a RecursionError (500).
    "DEFAULT_PARSER_CLASSES": [
        "common.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # drf-spectacular's, plus every operation's error responses in the {message, code, extra}
    # shape and the FilterSets of common.pagination lists.
    "DEFAULT_SCHEMA_CLASS": "common.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "common.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "anon": "120/min",
        "user": "600/min",
        "token": env.str("API_TOKEN_THROTTLE_RATE", default="300/min"),
    },
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
        "common.throttling.TokenRateThrottle",
    ],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Game-server hosting portal API",
    "DESCRIPTION": "Plans, orders, invoices and payments of the hosting portal.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Choice sets on fields of one name ("status") need their own component names.
    "ENUM_NAME_OVERRIDES": {
        "ProvisioningRunStatusEnum": "provisioning.models.runs.RunStatus",
        "DeploymentStatusEnum": "servers.models.DeploymentStatus",
        # The ?status= filters of billing.filters.
        "OrderStatusEnum": "billing.models.OrderStatus",
        "InvoiceStatusEnum": "billing.models.InvoiceStatus",
        "PlanChangeStatusEnum": "billing.models.PlanChangeStatus",
    },
}
