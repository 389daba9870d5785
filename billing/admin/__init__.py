"""Billing admin, one module per area; importing them registers their ModelAdmins."""

from billing.admin import catalog, invoices, orders, payments

__all__ = ["catalog", "invoices", "orders", "payments"]
