"""REST API v1 for upgrades and downgrades of a server: thin views over
billing.services.plan_changes (the owner only; another customer's server is 404).

Refusals come in the API's error shape `{message, code, extra}`: 400 `invalid` (bad input),
422 `plan_change_not_allowed` (not an allowed target or not now; a field error on `plan` for a
plan the server cannot take), 422 `plan_does_not_fit_node`, 409 `plan_change_pending`.
"""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.filters import PlanChangeFilter
from billing.models import PlanChange
from billing.selectors_lists import plan_change_list_for_deployment
from billing.services.plan_changes import (
    PlanChangeNotAllowed,
    plan_change_cancel,
    plan_change_options,
    plan_change_request,
)
from common.actors import Actor
from common.errors import NotFoundError
from common.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from common.openapi import error_responses
from common.pagination import StandardPagination, filter_queryset, paginated
from common.permissions import CUSTOMER
from servers.models import Deployment
from servers.selectors import deployment_list_for_customer


def _money(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        coerce_to_string=True,
        **kwargs,
    )


class PlanChangeOptionSerializer(serializers.Serializer):
    plan = serializers.CharField(source="to_plan.slug")
    name = serializers.CharField(source="to_plan.name")
    direction = serializers.CharField()
    memory_mb = serializers.IntegerField(source="to_plan.memory_mb")
    cpu_percent = serializers.IntegerField(source="to_plan.cpu_percent")
    disk_mb = serializers.IntegerField(source="to_plan.disk_mb")
    # The new plan's price for one billing cycle.
    price = _money(source="proration.to_price")
    currency = serializers.CharField()
    days_in_period = serializers.IntegerField(source="proration.days_in_period")
    days_left = serializers.IntegerField(source="proration.days_left")
    # Charged now (upgrade) or credited now (downgrade); 0.00 for a downgrade at period end.
    amount = _money()
    charge = serializers.BooleanField(source="is_upgrade")
    apply_on = serializers.DateField()
    scheduled = serializers.BooleanField()


class PlanChangeOptionsSerializer(serializers.Serializer):
    current_plan = serializers.CharField()
    allowed = serializers.BooleanField()
    reason = serializers.CharField()
    options = PlanChangeOptionSerializer(many=True)


class PlanChangeInvoiceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    total = _money()
    status = serializers.CharField()


class PlanChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    direction = serializers.CharField()
    from_plan = serializers.CharField(source="from_plan.slug")
    to_plan = serializers.CharField(source="to_plan.slug")
    billing_cycle = serializers.CharField()
    currency = serializers.CharField()
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    days_in_period = serializers.IntegerField()
    days_left = serializers.IntegerField()
    from_price = _money()
    to_price = _money()
    # Charged (upgrade, by the invoice) or credited (downgrade) for the days left.
    amount = _money(source="prorated_amount")
    invoice = PlanChangeInvoiceSerializer(allow_null=True)
    apply_on = serializers.DateField(allow_null=True)
    applied_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class PlanChangeCreateInputSerializer(serializers.Serializer):
    plan = serializers.SlugField(max_length=60)


def _own_deployment(request: Request, deployment_id: int) -> Deployment:
    deployment = (
        deployment_list_for_customer(customer=request.user).filter(pk=deployment_id).first()
    )
    if deployment is None:
        raise NotFoundError("No such server.")
    return deployment


def _change(change_id: int) -> PlanChange:
    return PlanChange.objects.select_related("from_plan", "to_plan", "invoice").get(pk=change_id)


class PlanChangeOptionsApi(APIView):
    """The plans the server can move to now, each with its proration."""

    permission_classes = CUSTOMER

    @extend_schema(responses=PlanChangeOptionsSerializer)
    def get(self, request: Request, deployment_id: int) -> Response:
        deployment = _own_deployment(request, deployment_id)
        try:
            options, reason = plan_change_options(deployment=deployment), ""
        except PlanChangeNotAllowed as exc:
            options, reason = [], exc.message
        data = {
            "current_plan": deployment.plan_slug,
            "allowed": not reason,
            "reason": reason,
            "options": options,
        }
        return Response(PlanChangeOptionsSerializer(data).data)


class PlanChangeListCreateApi(APIView):
    permission_classes = CUSTOMER
    pagination_class = StandardPagination
    filterset_class = PlanChangeFilter

    @extend_schema(responses=PlanChangeSerializer(many=True))
    def get(self, request: Request, deployment_id: int) -> Response:
        deployment = _own_deployment(request, deployment_id)
        changes = filter_queryset(
            request, PlanChangeFilter, plan_change_list_for_deployment(deployment_id=deployment.pk)
        )
        return paginated(request, self, changes, PlanChangeSerializer)

    @extend_schema(
        request=PlanChangeCreateInputSerializer,
        responses={201: PlanChangeSerializer, **error_responses(422)},
    )
    def post(self, request: Request, deployment_id: int) -> Response:
        deployment = _own_deployment(request, deployment_id)
        payload = PlanChangeCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        change = plan_change_request(
            deployment_id=deployment.pk,
            to_plan_slug=payload.validated_data["plan"],
            actor=Actor.for_user(request.user),
            customer=request.user,
        )
        return Response(
            PlanChangeSerializer(_change(change.pk)).data, status=status.HTTP_201_CREATED
        )


class PlanChangeCancelApi(APIView):
    permission_classes = CUSTOMER

    @extend_schema(request=None, responses={200: PlanChangeSerializer, **error_responses(422)})
    def post(self, request: Request, deployment_id: int, change_id: int) -> Response:
        deployment = _own_deployment(request, deployment_id)
        if not PlanChange.objects.filter(pk=change_id, deployment=deployment).exists():
            raise NotFoundError("No such plan change.")
        plan_change_cancel(
            change_id=change_id, actor=Actor.for_user(request.user), customer=request.user
        )
        return Response(PlanChangeSerializer(_change(change_id)).data)
