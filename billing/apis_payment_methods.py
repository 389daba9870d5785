"""REST API v1: the customer's saved cards. Stripe keeps the card; these show its brand, last
four digits and expiry, open Stripe's page to add one, choose the default, remove one."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import SavedPaymentMethod
from billing.selectors_lists import payment_method_list_ordered
from billing.services.autocharge import (
    card_label,
    payment_method_list_for_customer,
    payment_method_make_default,
    payment_method_remove,
    payment_method_setup_start,
)
from common.actors import Actor
from common.openapi import error_responses
from common.pagination import StandardPagination, paginated
from common.permissions import CUSTOMER


class PaymentMethodSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.SerializerMethodField()
    brand = serializers.CharField()
    last4 = serializers.CharField()
    exp_month = serializers.IntegerField(allow_null=True)
    exp_year = serializers.IntegerField(allow_null=True)
    is_default = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    def get_label(self, method: SavedPaymentMethod) -> str:
        return card_label(method)


class PaymentMethodListApi(APIView):
    """GET: the signed-in customer's saved cards, the default first."""

    permission_classes = CUSTOMER
    pagination_class = StandardPagination

    @extend_schema(responses=PaymentMethodSerializer(many=True))
    def get(self, request: Request) -> Response:
        methods = payment_method_list_ordered(
            methods=payment_method_list_for_customer(customer=request.user)
        )
        return paginated(request, self, methods, PaymentMethodSerializer)


class PaymentMethodSetupApi(APIView):
    """POST: open Stripe's page to save a card; the client sends the customer to `url`. The
    card appears in the list once Stripe's webhook confirms it."""

    permission_classes = CUSTOMER

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer("PaymentMethodSetup", {"url": serializers.URLField()}),
            **error_responses(502, 503),
        },
    )
    def post(self, request: Request) -> Response:
        url = payment_method_setup_start(customer=request.user, actor=Actor.for_user(request.user))
        return Response({"url": url})


class PaymentMethodDefaultApi(APIView):
    """POST: renewals are charged to this card from now on."""

    permission_classes = CUSTOMER

    @extend_schema(
        request=None, responses={200: PaymentMethodSerializer, **error_responses(502, 503)}
    )
    def post(self, request: Request, payment_method_id: int) -> Response:
        method = payment_method_make_default(
            customer=request.user,
            payment_method_id=payment_method_id,
            actor=Actor.for_user(request.user),
        )
        return Response(PaymentMethodSerializer(method).data)


class PaymentMethodDetailApi(APIView):
    """DELETE: remove the card (detached at Stripe; kept in our records for past charges)."""

    permission_classes = CUSTOMER

    @extend_schema(request=None, responses={204: None, **error_responses(502, 503)})
    def delete(self, request: Request, payment_method_id: int) -> Response:
        payment_method_remove(
            customer=request.user,
            payment_method_id=payment_method_id,
            actor=Actor.for_user(request.user),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
