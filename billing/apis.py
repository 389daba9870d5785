"""REST API v1: thin views that validate input, call one service or selector, and render."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import selectors
from billing.filters import InvoiceFilter, OrderFilter, PlanFilter
from billing.models import BillingCycle, Invoice, Order
from billing.selectors_lists import invoice_list_visible_to, order_list_visible_to
from billing.services.orders import order_cancel, order_place
from billing.services.payments import payment_record_manual
from billing.services.stripe_payments import checkout_session_start
from common.actors import Actor
from common.errors import NotFoundError
from common.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from common.openapi import error_responses
from common.pagination import StandardPagination, filter_queryset, paginated
from common.permissions import CUSTOMER, PUBLIC, STAFF
from servers.selectors import location_list_active


class PriceSerializer(serializers.Serializer):
    billing_cycle = serializers.CharField()
    currency = serializers.CharField()
    amount = serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, coerce_to_string=True
    )
    setup_fee = serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, coerce_to_string=True
    )


class AddonPriceSerializer(serializers.Serializer):
    billing_cycle = serializers.CharField()
    currency = serializers.CharField()
    amount = serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, coerce_to_string=True
    )


class AddonSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    memory_mb = serializers.IntegerField()
    cpu_percent = serializers.IntegerField()
    disk_mb = serializers.IntegerField()
    prices = AddonPriceSerializer(many=True)


class LocationAvailabilitySerializer(serializers.Serializer):
    location = serializers.CharField()
    available = serializers.BooleanField()
    sold_out = serializers.BooleanField()


class PlanSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    category = serializers.CharField()
    resources = serializers.SerializerMethodField()
    prices = PriceSerializer(many=True)
    locations = serializers.SerializerMethodField()
    availability = serializers.SerializerMethodField()
    addons = serializers.SerializerMethodField()

    def get_resources(self, plan: Any) -> dict[str, Any]:
        return {
            "memory_mb": plan.memory_mb,
            "swap_mb": plan.swap_mb,
            "disk_mb": plan.disk_mb,
            "io_weight": plan.io_weight,
            "cpu_percent": plan.cpu_percent,
            "threads": plan.threads or None,
            "databases": plan.databases,
            "allocations": plan.allocations,
            "backups": plan.backups,
        }

    def get_locations(self, plan: Any) -> list[str]:
        return [offer.location.short_code for offer in self._offer(plan).locations]

    @extend_schema_field(LocationAvailabilitySerializer(many=True))
    def get_availability(self, plan: Any) -> list[dict[str, Any]]:
        """Per location: a new order would find room there now (live capacity)."""
        return [
            {
                "location": offer.location.short_code,
                "available": offer.available,
                "sold_out": offer.sold_out,
            }
            for offer in self._offer(plan).locations
        ]

    def _offer(self, plan: Any) -> selectors.PlanOffer:
        offers = self.context.setdefault("offers", {})
        if plan.pk not in offers:  # a single plan (the detail view); the list passes them all
            offers[plan.pk] = selectors.plan_offers([plan])[0]
        return offers[plan.pk]

    def get_addons(self, plan: Any) -> list[dict[str, Any]]:
        pairs = selectors.addon_list_for_plan(
            plan=plan,
            currency=settings.BILLING_DEFAULT_CURRENCY,
            catalog=self.context.get("addon_catalog"),
        )
        return [
            {**AddonSerializer(addon).data, "prices": AddonPriceSerializer(prices, many=True).data}
            for addon, prices in pairs
        ]


class InvoiceLineSerializer(serializers.Serializer):
    kind = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_amount = serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES
    )
    amount = serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES
    )


class PaymentSerializer(serializers.Serializer):
    provider = serializers.CharField()
    amount = serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES
    )
    currency = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class InvoiceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    order_id = serializers.IntegerField(allow_null=True)
    kind = serializers.CharField()
    status = serializers.CharField()
    currency = serializers.CharField()
    subtotal = serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES
    )
    discount_total = serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES
    )
    # Account credit spent on it at issue; `total` is what is left to pay.
    credit_applied = serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES
    )
    total = serializers.DecimalField(
        max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES
    )
    issued_at = serializers.DateTimeField()
    due_date = serializers.DateField()
    paid_at = serializers.DateTimeField(allow_null=True)
    lines = InvoiceLineSerializer(many=True)
    payments = PaymentSerializer(many=True)


class OrderSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    plan = serializers.CharField(source="plan.slug")
    billing_cycle = serializers.CharField()
    location = serializers.CharField(source="location.short_code")
    currency = serializers.CharField()
    server_name = serializers.CharField()
    addons = serializers.SerializerMethodField()
    coupon = serializers.CharField(source="coupon.code", allow_null=True, default=None)
    variables = serializers.DictField(child=serializers.CharField())
    deployment = serializers.SerializerMethodField()
    invoices = InvoiceSerializer(many=True)
    created_at = serializers.DateTimeField()
    confirmed_at = serializers.DateTimeField(allow_null=True)

    def get_addons(self, order: Order) -> list[str]:
        return [item.addon.slug for item in order.order_addons.all()]

    def get_deployment(self, order: Order) -> dict[str, Any]:
        deployment = order.deployment
        return {
            "id": deployment.pk,
            "status": deployment.status,
            "next_due_date": deployment.next_due_date,
            "address": deployment.connection_address or None,
        }


class OrderCreateInputSerializer(serializers.Serializer):
    plan = serializers.SlugField(max_length=60)
    billing_cycle = serializers.ChoiceField(choices=BillingCycle.choices)
    location = serializers.SlugField(max_length=60)
    addons = serializers.ListField(
        child=serializers.SlugField(max_length=60), required=False, default=list, max_length=20
    )
    coupon = serializers.CharField(required=False, allow_blank=True, default="", max_length=40)
    variables = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=1024),
        required=False,
        default=dict,
    )
    server_name = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=191
    )


class PlanListApi(APIView):
    permission_classes = PUBLIC
    pagination_class = StandardPagination
    filterset_class = PlanFilter

    @extend_schema(responses=PlanSerializer(many=True))
    def get(self, request: Request) -> Response:
        currency = settings.BILLING_DEFAULT_CURRENCY
        plans = filter_queryset(
            request,
            PlanFilter,
            selectors.plan_list_active(currency=currency).order_by("display_order", "name", "id"),
        )
        return paginated(
            request,
            self,
            plans,
            PlanSerializer,
            context={"addon_catalog": selectors.addon_catalog(currency=currency)},
            # Locations and live availability of the page's plans in a constant number of
            # queries.
            context_for_page=lambda page: {
                "offers": {offer.plan.pk: offer for offer in selectors.plan_offers(list(page))}
            },
        )


class PlanDetailApi(APIView):
    permission_classes = PUBLIC

    @extend_schema(responses=PlanSerializer)
    def get(self, request: Request, slug: str) -> Response:
        return Response(PlanSerializer(selectors.plan_get_active(slug=slug)).data)


class LocationSerializer(serializers.Serializer):
    short_code = serializers.CharField()
    name = serializers.CharField(source="long_name")


class LocationListApi(APIView):
    permission_classes = PUBLIC
    pagination_class = StandardPagination

    @extend_schema(responses=LocationSerializer(many=True))
    def get(self, request: Request) -> Response:
        locations = location_list_active().order_by("short_code", "id")
        return paginated(request, self, locations, LocationSerializer)


class OrderListCreateApi(APIView):
    """GET: a customer's orders, newest first; staff see every customer's (?customer=<id or
    e-mail> narrows it). POST: place an order (Idempotency-Key makes a retry return it)."""

    permission_classes = CUSTOMER
    pagination_class = StandardPagination
    filterset_class = OrderFilter

    @extend_schema(responses=OrderSerializer(many=True))
    def get(self, request: Request) -> Response:
        orders = filter_queryset(request, OrderFilter, order_list_visible_to(user=request.user))
        return paginated(request, self, orders, OrderSerializer)

    @extend_schema(request=OrderCreateInputSerializer, responses={201: OrderSerializer})
    def post(self, request: Request) -> Response:
        payload = OrderCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        order = order_place(
            customer=request.user,
            plan_slug=data["plan"],
            billing_cycle=data["billing_cycle"],
            location_code=data["location"],
            addon_slugs=data["addons"],
            coupon_code=data["coupon"],
            variables=data["variables"],
            server_name=data["server_name"],
            idempotency_key=request.headers.get("Idempotency-Key", "")[:100],
            actor=Actor.for_user(request.user),
        )
        order = selectors.order_get_for_customer(order_id=order.pk, customer=request.user)
        return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED)


class OrderDetailApi(APIView):
    permission_classes = CUSTOMER

    @extend_schema(responses=OrderSerializer)
    def get(self, request: Request, order_id: int) -> Response:
        # Staff read any order (as they list them); a customer only their own.
        order = order_list_visible_to(user=request.user).filter(pk=order_id).first()
        if order is None:
            raise NotFoundError("No such order.")
        return Response(OrderSerializer(order).data)


class OrderCancelApi(APIView):
    permission_classes = CUSTOMER

    @extend_schema(request=None, responses=OrderSerializer)
    def post(self, request: Request, order_id: int) -> Response:
        order = selectors.order_get_for_customer(order_id=order_id, customer=request.user)
        order_cancel(order_id=order.pk, actor=Actor.for_user(request.user), reason="By customer")
        order = selectors.order_get_for_customer(order_id=order_id, customer=request.user)
        return Response(OrderSerializer(order).data)


class InvoiceListApi(APIView):
    """A customer's invoices, newest first; staff see every customer's (?customer=<id or
    e-mail> narrows it)."""

    permission_classes = CUSTOMER
    pagination_class = StandardPagination
    filterset_class = InvoiceFilter

    @extend_schema(responses=InvoiceSerializer(many=True))
    def get(self, request: Request) -> Response:
        invoices = filter_queryset(
            request, InvoiceFilter, invoice_list_visible_to(user=request.user)
        )
        return paginated(request, self, invoices, InvoiceSerializer)


class InvoiceDetailApi(APIView):
    permission_classes = CUSTOMER

    @extend_schema(responses=InvoiceSerializer)
    def get(self, request: Request, invoice_id: int) -> Response:
        # Staff read any invoice (as they list them); a customer only their own.
        invoice = invoice_list_visible_to(user=request.user).filter(pk=invoice_id).first()
        if invoice is None:
            raise NotFoundError("No such invoice.")
        return Response(InvoiceSerializer(invoice).data)


class InvoiceCheckoutApi(APIView):
    """Start (or reuse) a Stripe Checkout session; the client redirects the customer to `url`."""

    permission_classes = CUSTOMER

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "CheckoutSession",
                {"session_id": serializers.CharField(), "url": serializers.URLField()},
            ),
            **error_responses(502, 503),
        },
    )
    def post(self, request: Request, invoice_id: int) -> Response:
        base = settings.PORTAL_BASE_URL.rstrip("/")
        session = checkout_session_start(
            invoice_id=invoice_id,
            customer=request.user,
            success_url=f"{base}/invoices/{invoice_id}/?paid=1",
            cancel_url=f"{base}/invoices/{invoice_id}/",
        )
        return Response({"session_id": session.stripe_session_id, "url": session.url})


class InvoiceConfirmPaymentInputSerializer(serializers.Serializer):
    reference = serializers.CharField(max_length=255, allow_blank=False)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class InvoiceConfirmPaymentApi(APIView):
    """Staff: a manual transfer arrived for this invoice (the guides' "order confirm")."""

    permission_classes = STAFF
    required_perms = {"POST": ("billing.change_invoice",)}
    required_scopes = {"POST": "billing"}

    @extend_schema(request=InvoiceConfirmPaymentInputSerializer, responses=InvoiceSerializer)
    def post(self, request: Request, invoice_id: int) -> Response:
        payload = InvoiceConfirmPaymentInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        if not Invoice.objects.filter(pk=invoice_id).exists():
            raise NotFoundError("No such invoice.")
        payment_record_manual(
            invoice_id=invoice_id,
            reference=payload.validated_data["reference"],
            note=payload.validated_data["note"],
            actor=Actor.staff(request.user),
        )
        invoice = Invoice.objects.prefetch_related("lines", "payments").get(pk=invoice_id)
        return Response(InvoiceSerializer(invoice).data)
