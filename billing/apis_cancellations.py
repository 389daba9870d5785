"""REST API v1: a server's cancellation (request, read, revoke). Thin: one service call each.

Owner only: another customer's server answers 404, as if it did not exist. Refusals are the
services' ApplicationErrors rendered by common.api (documented by common.openapi): 409 with
`code` cancellation_pending, cancellation_not_allowed or cancellation_not_revocable; bad input
400 with extra.fields.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import Cancellation, CancellationMode, CancellationStatus
from billing.services.cancellations import (
    CancellationNotRevocable,
    cancellation_current_for_customer,
    cancellation_request,
    cancellation_revoke,
)
from common.actors import Actor
from common.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from common.permissions import CUSTOMER


class CancellationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    server_id = serializers.IntegerField(source="deployment_id")
    mode = serializers.CharField()
    status = serializers.CharField()
    effective_on = serializers.DateField()
    reason = serializers.CharField()
    credit_amount = serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, allow_null=True
    )
    currency = serializers.CharField()
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class CancellationInputSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(
        choices=CancellationMode.choices, required=False, default=CancellationMode.END_OF_TERM
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


def _revoke(request: Request, deployment_id: int) -> Response:
    current = cancellation_current_for_customer(deployment_id=deployment_id, customer=request.user)
    if current.status != CancellationStatus.SCHEDULED:
        raise CancellationNotRevocable(
            f"{current} is {current.get_status_display().lower()}; it can no longer be revoked."
        )
    revoked = cancellation_revoke(
        cancellation_id=current.pk, actor=Actor.for_user(request.user), customer=request.user
    )
    return Response(CancellationSerializer(revoked).data)


class ServerCancellationApi(APIView):
    """POST: cancel the server (end of term by default). GET: its scheduled (or completed)
    cancellation. DELETE: revoke the scheduled one (keep the server)."""

    permission_classes = CUSTOMER

    @extend_schema(
        request=CancellationInputSerializer,
        responses={201: CancellationSerializer},
    )
    def post(self, request: Request, deployment_id: int) -> Response:
        payload = CancellationInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        cancellation = cancellation_request(
            deployment_id=deployment_id,
            mode=payload.validated_data["mode"],
            reason=payload.validated_data["reason"],
            actor=Actor.for_user(request.user),
            customer=request.user,
        )
        cancellation = Cancellation.objects.get(pk=cancellation.pk)
        return Response(CancellationSerializer(cancellation).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=CancellationSerializer)
    def get(self, request: Request, deployment_id: int) -> Response:
        cancellation = cancellation_current_for_customer(
            deployment_id=deployment_id, customer=request.user
        )
        return Response(CancellationSerializer(cancellation).data)

    # 200 with the revoked cancellation (not drf-spectacular's default 204 for DELETE).
    @extend_schema(request=None, responses={200: CancellationSerializer})
    def delete(self, request: Request, deployment_id: int) -> Response:
        return _revoke(request, deployment_id)


class ServerCancellationRevokeApi(APIView):
    """The same revoke as DELETE on the cancellation, for clients that only POST."""

    permission_classes = CUSTOMER

    @extend_schema(request=None, responses=CancellationSerializer)
    def post(self, request: Request, deployment_id: int) -> Response:
        return _revoke(request, deployment_id)
