"""Billing admin, one module per area; importing them registers their ModelAdmins."""

from billing.admin import (
    accounts,
    analytics,
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
    "accounts",
    "analytics",
    "cancellations",
    "catalog",
    "credit",
    "invoices",
    "orders",
    "payment_methods",
    "payments",
    "plan_changes",
]
