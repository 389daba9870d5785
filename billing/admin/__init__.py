"""Billing admin, one module per area; importing them registers their ModelAdmins."""

from billing.admin import (
    cancellations,
    catalog,
    credit,
    invoices,
    orders,
    payment_methods,
    payments,
    plan_changes,
)

__all__ = [
    "cancellations",
    "catalog",
    "credit",
    "invoices",
    "orders",
    "payment_methods",
    "payments",
    "plan_changes",
]
