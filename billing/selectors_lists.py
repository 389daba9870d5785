"""Reads behind the API's paginated lists: ordered querysets (a stable page boundary) with
everything their serializers touch joined or prefetched, so a page costs a constant number of
queries whatever its size. Who sees what is decided here: a customer their own rows, staff
every customer's (narrowed with ?customer= by billing.filters)."""

from django.contrib.auth.models import User
from django.db.models import QuerySet

from billing.models import Invoice, Order, PlanChange, SavedPaymentMethod
from billing.selectors import invoice_list_for_customer, order_list_for_customer


def _sees_every_customer(user: User, permission: str) -> bool:
    """Staff with the model's view permission (as the admin's lists need it)."""
    return user.is_staff and user.has_perm(permission)


def order_list_visible_to(*, user: User) -> QuerySet[Order]:
    """Newest first. Staff: every customer's orders; a customer: their own."""
    if _sees_every_customer(user, "billing.view_order"):
        orders = (
            Order.objects.all()
            .select_related("plan", "location", "deployment", "coupon")
            .prefetch_related("invoices__lines", "invoices__payments", "order_addons__addon")
        )
    else:
        orders = order_list_for_customer(customer=user)
    return orders.order_by("-created_at", "-id")


def invoice_list_visible_to(*, user: User) -> QuerySet[Invoice]:
    """Newest first. Staff: every customer's invoices; a customer: their own."""
    if _sees_every_customer(user, "billing.view_invoice"):
        invoices = Invoice.objects.all().prefetch_related("lines", "payments")
    else:
        invoices = invoice_list_for_customer(customer=user)
    return invoices.order_by("-issued_at", "-id")


def plan_change_list_for_deployment(*, deployment_id: int) -> QuerySet[PlanChange]:
    """The server's plan changes, newest first, with their plans and invoice (one query)."""
    return (
        PlanChange.objects.filter(deployment_id=deployment_id)
        .select_related("from_plan", "to_plan", "invoice")
        .order_by("-id")
    )


def payment_method_list_ordered(
    *, methods: QuerySet[SavedPaymentMethod]
) -> QuerySet[SavedPaymentMethod]:
    """The default card first, then newest; the id breaks ties between equal timestamps."""
    return methods.order_by("-is_default", "-created_at", "-id")
