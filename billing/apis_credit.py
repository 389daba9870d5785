"""REST API v1: the customer's account credit (balances per currency and recent ledger rows)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import selectors
from common.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from common.permissions import CUSTOMER

# How many ledger rows the API returns (newest first).
RECENT_ENTRIES = 50


def _money() -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES
    )


class CreditBalanceSerializer(serializers.Serializer):
    currency = serializers.CharField()
    balance = _money()


class CreditEntrySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    kind = serializers.CharField()
    description = serializers.CharField()
    currency = serializers.CharField()
    amount = _money()
    balance_after = _money()
    invoice_id = serializers.IntegerField(allow_null=True)
    invoice_number = serializers.CharField(source="invoice.number", allow_null=True, default=None)


class CreditSerializer(serializers.Serializer):
    balances = CreditBalanceSerializer(many=True)
    entries = CreditEntrySerializer(many=True)


class CreditApi(APIView):
    """GET: the signed-in customer's credit balances (non-zero, per currency) and newest
    ledger rows."""

    permission_classes = CUSTOMER

    @extend_schema(responses=CreditSerializer)
    def get(self, request: Request) -> Response:
        balances = selectors.credit_balances(customer_id=request.user.pk)
        entries = selectors.credit_history(customer_id=request.user.pk, limit=RECENT_ENTRIES)
        data = {
            "balances": [{"currency": c, "balance": b} for c, b in sorted(balances.items())],
            "entries": entries,
        }
        return Response(CreditSerializer(data).data)
