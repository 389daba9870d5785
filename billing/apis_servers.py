"""REST API v1: the servers (deployments). Thin views over existing services and selectors.

Customers list and read their own servers, send power signals and ask for their panel login
again (the dashboard's services: provisioning.live, provisioning.operations.credentials_resend);
another customer's server is 404. Staff (the STAFF permission) see every server and suspend,
unsuspend, terminate (scope "provisioning") or change its plan (scope "billing") through the
very services the admin actions call, so the history rows read the same (the actor is
`staff:<username>`, with the token's public prefix when a token made the call). Refusals are
the services' ApplicationErrors in the API's shape `{message, code, extra}` (common.api): 400
bad input, 404 no such server, 409 not in a state that allows it (or rate limited), 422 a plan
the server cannot take, 502 the panel refused.
"""

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _l
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import selectors
from billing.filters import _MAX_ID, _StaffCustomerFilterSet
from billing.selectors_servers import (
    RenewalState,
    ServerBilling,
    credentials_resend_channels,
    server_billing_views,
    server_get_for_user,
    server_list_for_user,
    server_order,
)
from billing.services.plan_changes import PlanChangeNotAllowed, order_plan_change
from common.errors import ApplicationError
from common.models import ApiTokenScope
from common.openapi import error_responses
from common.pagination import StandardPagination, filter_queryset, paginated
from common.permissions import CUSTOMER, STAFF, api_actor
from provisioning import operations
from provisioning.live import (
    CUSTOMER_SIGNALS,
    LiveStatus,
    PendingPower,
    power_pending,
    server_live_status,
    server_power_signal,
)
from provisioning.operations import credentials_resend
from servers.models import Deployment, DeploymentStatus

# ---------------------------------------------------------------------- serializers


# Error responses in the API's shape beyond the defaults common.openapi gives every operation.
_PANEL_ERRORS = error_responses(502)
_PLAN_ERRORS = error_responses(422, 502)


class CustomerRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()


class NodeRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    panel_id = serializers.IntegerField()
    name = serializers.CharField()


class PlanRefSerializer(serializers.Serializer):
    slug = serializers.CharField(source="plan_slug")
    name = serializers.CharField(source="plan_name")


class AddonRefSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField(allow_null=True)


class LimitsSerializer(serializers.Serializer):
    """The panel limits the server was built with (the plan plus its add-ons)."""

    memory_mb = serializers.IntegerField(source="limits.memory", allow_null=True)
    swap_mb = serializers.IntegerField(source="limits.swap", allow_null=True)
    disk_mb = serializers.IntegerField(source="limits.disk", allow_null=True)
    io_weight = serializers.IntegerField(source="limits.io", allow_null=True)
    cpu_percent = serializers.IntegerField(source="limits.cpu", allow_null=True)
    databases = serializers.IntegerField(source="feature_limits.databases", allow_null=True)
    allocations = serializers.IntegerField(source="feature_limits.allocations", allow_null=True)
    backups = serializers.IntegerField(source="feature_limits.backups", allow_null=True)


class SuspensionSerializer(serializers.Serializer):
    cause = serializers.ChoiceField(
        choices=["nonpayment", "staff"],
        help_text="nonpayment: paying the unpaid invoice lifts it; staff: ask support.",
    )
    since = serializers.DateTimeField(allow_null=True)


class InvoiceRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    due_date = serializers.DateField()


class RenewalSerializer(serializers.Serializer):
    state = serializers.ChoiceField(
        source="renewal",
        choices=[
            RenewalState.RENEWS,
            RenewalState.UNPAID,
            RenewalState.CANCELLING,
            RenewalState.ENDED,
            RenewalState.NOT_STARTED,
        ],
        help_text="renews: paid until next_due_date, renews then; unpaid: unpaid_invoice waits "
        "to be paid; cancelling: ends on cancellation_effective_on; ended: terminated or "
        "cancelled; not_started: the paid period starts when the server is ready.",
    )
    next_due_date = serializers.DateField(source="deployment.next_due_date", allow_null=True)
    unpaid_invoice = InvoiceRefSerializer(allow_null=True)
    cancellation_effective_on = serializers.DateField(allow_null=True)


class ServerSerializer(serializers.Serializer):
    """A server as its page shows it (no live figures: those are on the detail)."""

    id = serializers.IntegerField(source="deployment.pk")
    name = serializers.CharField(source="deployment.name")
    status = serializers.ChoiceField(choices=DeploymentStatus.choices, source="deployment.status")
    suspension = SuspensionSerializer(allow_null=True)
    customer = CustomerRefSerializer(source="deployment.customer")
    plan = PlanRefSerializer(source="deployment")
    billing_cycle = serializers.CharField(source="deployment.billing_cycle")
    addons = AddonRefSerializer(source="deployment.addons", many=True)
    limits = LimitsSerializer(source="deployment.spec")
    location = serializers.CharField(source="deployment.location.short_code")
    node = NodeRefSerializer(source="deployment.node", allow_null=True)
    address = serializers.CharField(
        help_text="IP:port, only while the server is active or suspended; else empty."
    )
    panel_identifier = serializers.CharField(source="deployment.panel_identifier")
    next_due_date = serializers.DateField(source="deployment.next_due_date", allow_null=True)
    renewal = RenewalSerializer(source="*")
    created_at = serializers.DateTimeField(source="deployment.created_at")
    activated_at = serializers.DateTimeField(source="deployment.activated_at", allow_null=True)
    terminated_at = serializers.DateTimeField(source="deployment.terminated_at", allow_null=True)


class LiveSerializer(serializers.Serializer):
    """What the panel reports now. `state` is "updating" while a power signal sent less than a
    minute ago does not show in the panel's (cached, ~20 s) figures yet."""

    state = serializers.CharField(
        help_text="running, offline, starting, stopping, suspended, busy, updating, or empty "
        "when the panel could not be read (see error)."
    )
    panel_state = serializers.CharField(help_text="The state the panel reports.")
    pending_signal = serializers.CharField(allow_null=True)
    expected_state = serializers.CharField(allow_null=True)
    memory_mb = serializers.IntegerField()
    cpu_percent = serializers.FloatField()
    disk_mb = serializers.IntegerField()
    uptime_seconds = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()


class ServerDetailSerializer(ServerSerializer):
    live = LiveSerializer(allow_null=True, help_text="Null unless the server is live.")


class StaffActionResultSerializer(ServerSerializer):
    panel_verified = serializers.BooleanField(
        allow_null=True,
        help_text="The panel read back as intended (false: a drift item was raised for the "
        "reconcile job; null: the panel did not answer the read-back).",
    )


class PowerInputSerializer(serializers.Serializer):
    signal = serializers.ChoiceField(choices=list(CUSTOMER_SIGNALS))


class PowerResultSerializer(serializers.Serializer):
    signal = serializers.CharField()
    live = LiveSerializer(allow_null=True)


class LoginResultSerializer(serializers.Serializer):
    sent = serializers.BooleanField()
    channels = serializers.ListField(
        child=serializers.CharField(),
        help_text="Where the message with a one-time login link went (email, whatsapp). The "
        "password itself is never in an API response.",
    )


class SuspendInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, default="Suspended by staff")


class UnsuspendInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, default="Unsuspended by staff")


class TerminateInputSerializer(serializers.Serializer):
    """Whether the panel server is deleted at once or kept suspended for the restore window
    and/or a final backup is the deployment's setting (TERMINATION_RESTORE_WINDOW_DAYS,
    TERMINATION_FINAL_BACKUP), as in the admin's action."""

    reason = serializers.CharField(max_length=500, default="Terminated by staff")


class ChangePlanInputSerializer(serializers.Serializer):
    plan = serializers.SlugField(max_length=60, help_text="An active plan of the same kind.")


# ---------------------------------------------------------------------- filters


class ServerFilter(_StaffCustomerFilterSet):
    """created_after/before and (staff only) customer as every API list has them
    (billing.filters); status may be given more than once (?status=active&status=suspended)."""

    status = filters.MultipleChoiceFilter(choices=DeploymentStatus.choices)
    plan = filters.CharFilter(field_name="plan_slug", max_length=60, label=_l("Plan slug"))
    location = filters.CharFilter(
        field_name="location__short_code", max_length=60, label=_l("Location short code")
    )
    node = filters.NumberFilter(
        field_name="node_id", min_value=1, max_value=_MAX_ID, label=_l("Node id (node.id)")
    )
    next_due_after = filters.DateFilter(
        field_name="next_due_date", lookup_expr="gte", label=_l("Next due on or after")
    )
    next_due_before = filters.DateFilter(
        field_name="next_due_date", lookup_expr="lte", label=_l("Next due on or before")
    )

    class Meta:
        model = Deployment
        fields = [
            "status",
            "plan",
            "location",
            "node",
            "created_after",
            "created_before",
            "next_due_after",
            "next_due_before",
            "customer",
        ]


# ---------------------------------------------------------------------- helpers


def _view_of(deployment: Deployment) -> ServerBilling:
    return server_billing_views(deployments=[deployment])[0]


def _live(deployment: Deployment) -> dict[str, Any] | None:
    live: LiveStatus | None = server_live_status(deployment=deployment)
    if live is None:
        return None
    pending: PendingPower | None = power_pending(deployment=deployment, live=live)
    return {
        "state": "updating" if pending else live.state,
        "panel_state": live.state,
        "pending_signal": pending.signal if pending else None,
        "expected_state": pending.expected_state if pending else None,
        "memory_mb": live.memory_mb,
        "cpu_percent": live.cpu_percent,
        "disk_mb": live.disk_mb,
        "uptime_seconds": live.uptime_seconds,
        "error": live.error,
    }


class _ServerViews(serializers.ListSerializer):
    """Renders a page of deployments with their billing views (a constant query count)."""

    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        views = server_billing_views(deployments=list(data))
        return [self.child.to_representation(view) for view in views]


class ServerPageSerializer(ServerSerializer):
    class Meta:
        list_serializer_class = _ServerViews


# ---------------------------------------------------------------------- views


class ServerListApi(APIView):
    """Your servers (staff: every server, `?customer=` narrows), newest first."""

    permission_classes = CUSTOMER
    pagination_class = StandardPagination
    filterset_class = ServerFilter

    @extend_schema(responses=ServerSerializer(many=True))
    def get(self, request: Request) -> Response:
        servers = filter_queryset(request, ServerFilter, server_list_for_user(user=request.user))
        return paginated(request, self, servers, ServerPageSerializer)


class ServerDetailApi(APIView):
    """One server, with the panel's live state while it is active."""

    permission_classes = CUSTOMER

    @extend_schema(responses=ServerDetailSerializer)
    def get(self, request: Request, deployment_id: int) -> Response:
        deployment = server_get_for_user(user=request.user, deployment_id=deployment_id)
        data = {**ServerSerializer(_view_of(deployment)).data, "live": _live(deployment)}
        return Response(data)


class ServerPowerApi(APIView):
    """Start, stop or restart your active server (5 a minute). The answer's live state says
    "updating" until the panel reports the signal's effect."""

    permission_classes = CUSTOMER

    @extend_schema(
        request=PowerInputSerializer,
        responses={202: PowerResultSerializer},
    )
    def post(self, request: Request, deployment_id: int) -> Response:
        payload = PowerInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        signal = payload.validated_data["signal"]
        deployment = server_get_for_user(user=request.user, deployment_id=deployment_id)
        server_power_signal(deployment_id=deployment.pk, user=request.user, signal=signal)
        return Response(
            {"signal": signal, "live": _live(deployment)}, status=status.HTTP_202_ACCEPTED
        )


class ServerLoginApi(APIView):
    """Send your panel login again (the dashboard's "send my panel login again"): a message
    with a one-time link, through your notification channels; rate limited."""

    permission_classes = CUSTOMER

    @extend_schema(
        request=None,
        responses={202: LoginResultSerializer},
    )
    def post(self, request: Request, deployment_id: int) -> Response:
        deployment = server_get_for_user(user=request.user, deployment_id=deployment_id)
        credentials_resend(deployment_id=deployment.pk, user=request.user)
        channels = credentials_resend_channels(deployment=deployment)
        return Response({"sent": True, "channels": channels}, status=status.HTTP_202_ACCEPTED)


def _staff_result(deployment: Deployment, verified: bool | None) -> Response:
    return Response({**ServerSerializer(_view_of(deployment)).data, "panel_verified": verified})


class _StaffLifecycleApi(APIView):
    """A staff lifecycle action on the panel: validate `input_serializer`, find the server, run
    the admin's `operation` (same service, same audit) and answer the server with whether the
    panel's state was read back."""

    permission_classes = STAFF
    required_perms = {"POST": ("servers.change_deployment",)}
    required_scopes = {"POST": ApiTokenScope.PROVISIONING}
    input_serializer: type[serializers.Serializer]
    operation: Any

    def post(self, request: Request, deployment_id: int) -> Response:
        payload = self.input_serializer(data=request.data)
        payload.is_valid(raise_exception=True)
        deployment = server_get_for_user(user=request.user, deployment_id=deployment_id)
        changed = type(self).operation(
            deployment_id=deployment.pk,
            actor=api_actor(request),
            reason=payload.validated_data["reason"],
        )
        return _staff_result(changed, getattr(changed, "panel_verified", None))


def _lifecycle_schema(input_serializer: type[serializers.Serializer]) -> Any:
    return extend_schema_view(
        post=extend_schema(
            request=input_serializer,
            responses={200: StaffActionResultSerializer, **_PANEL_ERRORS},
        )
    )


@_lifecycle_schema(SuspendInputSerializer)
class ServerSuspendApi(_StaffLifecycleApi):
    """Staff: suspend an active server on the panel (the admin's "Suspend on the panel")."""

    input_serializer = SuspendInputSerializer
    operation = staticmethod(operations.deployment_suspend)


@_lifecycle_schema(UnsuspendInputSerializer)
class ServerUnsuspendApi(_StaffLifecycleApi):
    """Staff: unsuspend a suspended server (the admin's "Unsuspend on the panel")."""

    input_serializer = UnsuspendInputSerializer
    operation = staticmethod(operations.deployment_unsuspend)


@_lifecycle_schema(TerminateInputSerializer)
class ServerTerminateApi(_StaffLifecycleApi):
    """Staff: terminate an active or suspended server (the admin's "Terminate"): billing-wise
    at once; on the panel deleted at once, or kept suspended for the restore window and/or a
    final backup, as the deployment's settings say."""

    input_serializer = TerminateInputSerializer
    operation = staticmethod(operations.deployment_terminate)


class ServerChangePlanApi(APIView):
    """Staff: move the server to another active plan of the same kind at once, with the add-ons
    it was sold with (the order admin's "Change plan"): new limits applied and read back on the
    panel; no proration (customers' plan changes are under plan-changes/)."""

    permission_classes = STAFF
    required_perms = {"POST": ("billing.change_order", "servers.change_deployment")}
    required_scopes = {"POST": ApiTokenScope.BILLING}

    @extend_schema(
        request=ChangePlanInputSerializer,
        responses={200: ServerSerializer, **_PLAN_ERRORS},
    )
    def post(self, request: Request, deployment_id: int) -> Response:
        payload = ChangePlanInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        deployment = server_get_for_user(user=request.user, deployment_id=deployment_id)
        slug = payload.validated_data["plan"]
        plan = selectors.plan_list_active().filter(slug=slug).first()
        if plan is None:
            raise ApplicationError.for_fields(
                {"plan": _("No active plan '%(plan)s'.") % {"plan": slug}}
            )
        order = server_order(deployment_id=deployment.pk)
        if order is None:
            raise PlanChangeNotAllowed(_("This server has no order; its plan cannot be changed."))
        changed = order_plan_change(order=order, plan=plan, actor=api_actor(request))
        return Response(ServerSerializer(_view_of(changed)).data)
