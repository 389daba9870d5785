"""django-filter FilterSets of the API's lists (common.pagination.filter_queryset).

Every filter is on an indexed column or narrows an already indexed set (the customer's own
rows, one server's rows): status, created after/before (created_at has an index on every
TimeStampedModel), plan (a foreign key), customer (staff only: an id or an e-mail address).
An invalid value is a 400 with field messages, never an unfiltered list.
"""

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters

from billing.models import (
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    Order,
    OrderStatus,
    Plan,
    PlanCategory,
    PlanChange,
    PlanChangeStatus,
)

# PostgreSQL's bigint: a larger id can match no row (and must not reach the database).
_MAX_ID = 2**63 - 1


class _CreatedRangeFilterSet(filters.FilterSet):
    created_after = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label=_("Created at or after (ISO 8601)")
    )
    created_before = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", label=_("Created before (ISO 8601)")
    )


class _StaffCustomerFilterSet(_CreatedRangeFilterSet):
    """Adds ?customer=<id or e-mail> for staff callers; a customer's list is theirs already,
    so the filter is not offered to them (an unknown parameter is ignored)."""

    customer = filters.CharFilter(
        method="filter_customer",
        max_length=254,
        label=_("Staff only: the customer's user id or e-mail address"),
    )

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        user = getattr(self.request, "user", None)
        if not getattr(user, "is_staff", False):
            self.filters.pop("customer", None)

    def filter_customer(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if value.isascii() and value.isdigit():
            number = int(value)
            return queryset.filter(customer_id=number) if number <= _MAX_ID else queryset.none()
        return queryset.filter(customer__email__iexact=value)


class OrderFilter(_StaffCustomerFilterSet):
    status = filters.ChoiceFilter(choices=OrderStatus.choices)
    plan = filters.CharFilter(field_name="plan__slug", max_length=60, label=_("Plan slug"))

    class Meta:
        model = Order
        fields = ["status", "plan", "created_after", "created_before", "customer"]


class InvoiceFilter(_StaffCustomerFilterSet):
    status = filters.ChoiceFilter(choices=InvoiceStatus.choices)
    kind = filters.ChoiceFilter(choices=InvoiceKind.choices)
    plan = filters.CharFilter(
        field_name="order__plan__slug", max_length=60, label=_("Plan slug of the invoice's order")
    )
    order = filters.NumberFilter(field_name="order_id", min_value=1, max_value=_MAX_ID)
    issued_after = filters.IsoDateTimeFilter(
        field_name="issued_at", lookup_expr="gte", label=_("Issued at or after (ISO 8601)")
    )
    issued_before = filters.IsoDateTimeFilter(
        field_name="issued_at", lookup_expr="lt", label=_("Issued before (ISO 8601)")
    )

    class Meta:
        model = Invoice
        fields = [
            "status",
            "kind",
            "plan",
            "order",
            "issued_after",
            "issued_before",
            "created_after",
            "created_before",
            "customer",
        ]


class PlanChangeFilter(_CreatedRangeFilterSet):
    status = filters.ChoiceFilter(choices=PlanChangeStatus.choices)
    plan = filters.CharFilter(
        method="filter_plan", max_length=60, label=_("Plan slug (moved from or to)")
    )

    class Meta:
        model = PlanChange
        fields = ["status", "plan", "created_after", "created_before"]

    def filter_plan(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(Q(from_plan__slug=value) | Q(to_plan__slug=value))


class PlanFilter(filters.FilterSet):
    category = filters.ChoiceFilter(choices=PlanCategory.choices)

    class Meta:
        model = Plan
        fields = ["category"]
