"""Template tags of the account pages: the "Bill to" block of an invoice."""

from typing import Any

from django import template

from billing.invoice_documents import invoice_bill_to
from billing.invoice_pdf import Party

register = template.Library()


@register.simple_tag
def bill_to(invoice: Any) -> Party:
    """`{% bill_to invoice as party %}`: the billing details in effect at the invoice's issue."""
    return invoice_bill_to(invoice=invoice)
