"""Staff provisioning API (/api/v1/provisioning/): runs ("tasks"), their steps, retry, queue
figures, the failed list. Thin views: validate, call one service or selector, render.

Reads need the token scope "read", writes "provisioning"; every route is staff only. The
order-addressed writes (provision, manual) are billing's (billing.apis_provisioning): only
billing knows orders. Step rows are the admin timeline's (selectors.run_timeline): redacted
summaries and errors, never keys or passwords.
"""

from typing import Any

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.pagination import StandardPagination, filter_queryset, paginated
from common.permissions import STAFF, api_actor
from provisioning import api_selectors
from provisioning.models import ProvisioningRun, RunStatus
from provisioning.saga.steps import STEP_NAMES
from provisioning.selectors import run_timeline
from provisioning.services import provisioning_retry_run, provisioning_runs_dismiss

# PostgreSQL's bigint: a larger id can match no row (and must not reach the database).
_MAX_ID = 2**63 - 1
PROVISIONING_SCOPES = {"POST": "provisioning", "DELETE": "provisioning"}


# --- Filters ---------------------------------------------------------------------------------


class RunFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=RunStatus.choices)
    created_after = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label=_("Created at or after (ISO 8601)")
    )
    created_before = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", label=_("Created before (ISO 8601)")
    )
    started_after = filters.IsoDateTimeFilter(
        field_name="started_at", lookup_expr="gte", label=_("Started at or after (ISO 8601)")
    )
    started_before = filters.IsoDateTimeFilter(
        field_name="started_at", lookup_expr="lt", label=_("Started before (ISO 8601)")
    )
    customer = filters.CharFilter(
        method="filter_customer", max_length=254, label=_("The customer's user id or e-mail")
    )
    plan = filters.CharFilter(
        field_name="deployment__plan_slug", max_length=60, label=_("Plan slug")
    )
    node = filters.CharFilter(
        method="filter_node", max_length=191, label=_("Node: its id, panel id or name")
    )
    deployment = filters.NumberFilter(field_name="deployment_id", min_value=1, max_value=_MAX_ID)

    class Meta:
        model = ProvisioningRun
        fields = [
            "status",
            "created_after",
            "created_before",
            "started_after",
            "started_before",
            "customer",
            "plan",
            "node",
            "deployment",
        ]

    def filter_customer(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if value.isascii() and value.isdigit():
            number = int(value)
            if number > _MAX_ID:
                return queryset.none()
            return queryset.filter(deployment__customer_id=number)
        return queryset.filter(deployment__customer__email__iexact=value)

    def filter_node(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        # The run's chosen node, or the deployment's (a server linked by hand has no run node).
        value = value.strip()
        if value.isascii() and value.isdigit():
            number = int(value)
            if number > _MAX_ID:
                return queryset.none()
            return queryset.filter(
                Q(node_id=number)
                | Q(node__panel_id=number)
                | Q(deployment__node_id=number)
                | Q(deployment__node__panel_id=number)
            )
        return queryset.filter(Q(node__name=value) | Q(deployment__node__name=value))


# --- Serializers -----------------------------------------------------------------------------


class StepAttemptSerializer(serializers.Serializer):
    step = serializers.CharField(help_text="The step's name.")
    direction = serializers.ChoiceField(choices=["forward", "compensate"])
    attempt = serializers.IntegerField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    summary = serializers.DictField(help_text="Redacted: ids, counts, statuses; never secrets.")
    error = serializers.CharField(allow_blank=True, help_text="Redacted error text.")


class RunCustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField(allow_blank=True)


class RunNodeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    panel_id = serializers.IntegerField()
    name = serializers.CharField()


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    deployment_id = serializers.IntegerField()
    deployment_status = serializers.CharField(source="deployment.status")
    order_reference = serializers.CharField(source="request.order_reference")
    customer = serializers.SerializerMethodField()
    plan = serializers.CharField(source="deployment.plan_slug")
    node = serializers.SerializerMethodField()
    step = serializers.SerializerMethodField(help_text="The step it is at (or stopped at).")
    step_index = serializers.IntegerField()
    attempt = serializers.IntegerField()
    triggered_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    waiting_for_capacity_since = serializers.DateTimeField(allow_null=True)
    failed_step = serializers.CharField(allow_blank=True)
    last_error = serializers.CharField(allow_blank=True, help_text="Redacted error text.")
    panel_server_id = serializers.IntegerField(allow_null=True)
    dismissed_at = serializers.DateTimeField(allow_null=True)
    dismissed_by = serializers.CharField(allow_blank=True)

    @extend_schema_field(RunCustomerSerializer)
    def get_customer(self, run: ProvisioningRun) -> dict[str, Any]:
        customer = run.deployment.customer
        return {"id": customer.pk, "email": customer.email}

    @extend_schema_field(RunNodeSerializer(allow_null=True))
    def get_node(self, run: ProvisioningRun) -> dict[str, Any] | None:
        node = run.node or run.deployment.node
        if node is None:
            return None
        return {"id": node.pk, "panel_id": node.panel_id, "name": node.name}

    def get_step(self, run: ProvisioningRun) -> str:
        return STEP_NAMES[min(run.step_index, len(STEP_NAMES) - 1)]


class RunDetailSerializer(RunSerializer):
    steps = serializers.SerializerMethodField()

    @extend_schema_field(StepAttemptSerializer(many=True))
    def get_steps(self, run: ProvisioningRun) -> list[dict[str, Any]]:
        return StepAttemptSerializer(run_timeline(run), many=True).data


class RetryInputSerializer(serializers.Serializer):
    from_step = serializers.CharField(
        required=False,
        max_length=40,
        help_text=f"A step name ({', '.join(STEP_NAMES)}) or its index; default the first.",
    )

    def validate_from_step(self, value: str) -> int:
        value = value.strip()
        if value.isascii() and value.isdigit() and int(value) < len(STEP_NAMES):
            return int(value)
        if value in STEP_NAMES:
            return STEP_NAMES.index(value)
        raise serializers.ValidationError(
            _("Unknown step: use one of %(steps)s or an index from 0 to %(last)s.")
            % {"steps": ", ".join(STEP_NAMES), "last": len(STEP_NAMES) - 1}
        )


class DismissInputSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=_MAX_ID),
        required=False,
        allow_empty=False,
        max_length=1000,
        help_text="Only these runs (default: every failed run on the list).",
    )


class DismissResultSerializer(serializers.Serializer):
    dismissed = serializers.IntegerField()


class PercentilesSerializer(serializers.Serializer):
    p50_seconds = serializers.FloatField(allow_null=True)
    p95_seconds = serializers.FloatField(allow_null=True)


class TimeToActiveSerializer(serializers.Serializer):
    from_run_start = PercentilesSerializer()
    from_paid = PercentilesSerializer()


class PeriodSerializer(serializers.Serializer):
    started = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    needs_attention = serializers.IntegerField()
    time_to_active = TimeToActiveSerializer()


class QueueSerializer(serializers.Serializer):
    depth = serializers.IntegerField(source="queue_depth", help_text="Queued + waiting for room.")
    queued = serializers.IntegerField()
    waiting_capacity = serializers.IntegerField()
    waiting_manual = serializers.IntegerField()
    running = serializers.IntegerField()
    compensating = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    queue = QueueSerializer(source="*")
    failed = serializers.IntegerField(help_text="On the failed list (not dismissed).")
    needs_attention = serializers.IntegerField()
    last_24h = PeriodSerializer(source="periods.last_24h")
    last_7d = PeriodSerializer(source="periods.last_7d")
    generated_at = serializers.DateTimeField()


# --- Views -----------------------------------------------------------------------------------


class RunListApi(APIView):
    """Provisioning runs ("tasks"), newest first, filtered and paginated."""

    permission_classes = STAFF
    required_perms = {"GET": ("provisioning.view_provisioningrun",)}
    pagination_class = StandardPagination
    filterset_class = RunFilter

    @extend_schema(operation_id="provisioning_tasks_list", responses=RunSerializer(many=True))
    def get(self, request: Request) -> Response:
        runs = filter_queryset(request, RunFilter, api_selectors.run_list())
        return paginated(request, self, runs, RunSerializer)


class RunDetailApi(APIView):
    """One run with its step attempts (forward and compensating), as the admin shows them."""

    permission_classes = STAFF
    required_perms = {"GET": ("provisioning.view_provisioningrun",)}

    @extend_schema(operation_id="provisioning_tasks_retrieve", responses=RunDetailSerializer)
    def get(self, request: Request, run_id: int) -> Response:
        run = api_selectors.run_get(run_id=run_id)
        return Response(RunDetailSerializer(run).data)


class RunRetryApi(APIView):
    """Start the run's deployment again (a new run), optionally from a later step (only a run
    left in "needs attention" can be resumed from one)."""

    permission_classes = STAFF
    required_perms = {"POST": ("servers.change_deployment",)}
    required_scopes = PROVISIONING_SCOPES

    @extend_schema(
        operation_id="provisioning_retry_create",
        request=RetryInputSerializer,
        responses={202: RunSerializer},
    )
    def post(self, request: Request, run_id: int) -> Response:
        payload = RetryInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        run = provisioning_retry_run(
            run_id=run_id,
            actor=api_actor(request),
            from_step=payload.validated_data.get("from_step", 0),
        )
        run = api_selectors.run_get(run_id=run.pk)
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class StatsApi(APIView):
    """Queue depth, running and failed runs, 24 h and 7 d outcomes, p50/p95 time to active."""

    permission_classes = STAFF
    required_perms = {"GET": ("provisioning.view_provisioningrun",)}

    @extend_schema(operation_id="provisioning_stats_retrieve", responses=StatsSerializer)
    def get(self, request: Request) -> Response:
        return Response(StatsSerializer(api_selectors.provisioning_api_stats()).data)


class FailedRunsApi(APIView):
    """The failed list: runs rolled back or stuck half way that staff have not dismissed.
    DELETE dismisses them (all, or `ids`); the runs and their history stay."""

    permission_classes = STAFF
    required_perms = {
        "GET": ("provisioning.view_provisioningrun",),
        "DELETE": ("servers.change_deployment",),
    }
    required_scopes = PROVISIONING_SCOPES
    pagination_class = StandardPagination
    filterset_class = RunFilter

    @extend_schema(operation_id="provisioning_failed_list", responses=RunSerializer(many=True))
    def get(self, request: Request) -> Response:
        runs = filter_queryset(request, RunFilter, api_selectors.run_list_failed())
        return paginated(request, self, runs, RunSerializer)

    @extend_schema(
        operation_id="provisioning_failed_dismiss",
        request=DismissInputSerializer,
        responses={200: OpenApiResponse(DismissResultSerializer, description="How many.")},
    )
    def delete(self, request: Request) -> Response:
        data: Any = request.data
        if not data and "ids" in request.query_params:
            # DELETE bodies are dropped by some clients: ?ids=1,2 works too.
            data = {"ids": [i for i in request.query_params["ids"].split(",") if i.strip()]}
        payload = DismissInputSerializer(data=data or {})
        payload.is_valid(raise_exception=True)
        run_ids = payload.validated_data.get("ids")
        if set(request.query_params) & set(RunFilter.base_filters):
            # The list's filters narrow what is dismissed as they narrow what GET shows.
            listed = filter_queryset(request, RunFilter, api_selectors.run_list_failed())
            if run_ids is not None:
                listed = listed.filter(pk__in=run_ids)
            run_ids = list(listed.values_list("pk", flat=True))
        dismissed = provisioning_runs_dismiss(actor=api_actor(request), run_ids=run_ids)
        return Response(DismissResultSerializer({"dismissed": dismissed}).data)
