"""What billing tells customers. Called inside the transaction that records the event."""

import functools
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from django.conf import settings
from django.urls import reverse

from billing.models import BillingCycle, CreditEntry, Invoice, Order, Payment, PaymentProvider
from notifications.services import notification_send


def _url(name: str, pk: int) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + reverse(name, args=[pk])


@functools.lru_cache(maxsize=32)
def _url_parts(name: str, base_url: str, urlconf: str) -> tuple[str, str]:
    """The text before and after an object's id in its URL (one resolver call per name)."""
    marker = 987654321
    head, tail = (base_url.rstrip("/") + reverse(name, args=[marker])).split(str(marker))
    return head, tail


def _url_builder(name: str) -> Callable[[int], str]:
    head, tail = _url_parts(name, settings.PORTAL_BASE_URL, str(settings.ROOT_URLCONF))
    return lambda pk: f"{head}{pk}{tail}"


def notify_order_placed(order: Order, invoice: Invoice) -> None:
    package, duration = order.plan.name, BillingCycle(order.billing_cycle).label
    notification_send(
        event="order_received",
        user=order.customer,
        context={
            "order_id": order.pk,
            "package": package,
            "duration": duration,
            "amount": str(invoice.total),
            "currency": invoice.currency,
            "server_name": order.server_name,
            "location": str(order.location),
            "order_url": _url("order-detail", order.pk),
        },
        event_key=f"order_received:order-{order.pk}",
    )
    notification_send(
        event="invoice_created",
        user=order.customer,
        context=invoice_message_context(invoice) | {"order_id": order.pk, "package": package},
        event_key=f"invoice_created:{invoice.number}",
    )


def notify_payment_review(
    *, provider: str, reference: str, reason: str, invoice: Invoice | None, event_key: str
) -> None:
    """Staff: money arrived that was not applied (mismatch, cancelled or already paid)."""
    context: dict[str, object] = {
        "provider": provider,
        "reference": reference,
        "reason": reason,
        "admin_url": settings.PORTAL_BASE_URL.rstrip("/")
        + reverse("admin:billing_stripeevent_changelist"),
    }
    if invoice is not None:
        context |= {
            "invoice_number": invoice.number,
            "amount": f"{invoice.total} {invoice.currency}",
            "customer_email": invoice.customer.email,
        }
    notification_send(
        event="payment_review_staff", staff=True, context=context, event_key=event_key
    )


def notify_payment_received(invoice: Invoice, payment: Payment | None) -> None:
    notification_send(
        event="payment_received",
        user=invoice.customer,
        context={
            "invoice_number": invoice.number,
            "amount": str(invoice.total),
            "currency": invoice.currency,
            "payment_reference": payment.reference if payment else "",
            "paid_at": invoice.paid_at.isoformat() if invoice.paid_at else "",
            "order_id": invoice.order_id or "",
        },
        event_key=f"payment_received:{invoice.number}",
    )


class RefundLine(Protocol):
    """What the message reads of each refund (read-only: a frozen dataclass fits)."""

    @property
    def amount(self) -> str: ...

    @property
    def currency(self) -> str: ...

    @property
    def provider(self) -> str: ...

    @property
    def reference(self) -> str: ...


# RefundLine.provider of an invoice that was paid without money (a 100% coupon).
NOTHING_CHARGED = "none"
# Payment provider -> the code the order_refunded templates word in the customer's language.
REFUND_METHODS = {
    PaymentProvider.STRIPE: "card",
    PaymentProvider.MANUAL: "bank_transfer",
    NOTHING_CHARGED: "none",
}


def notify_order_refunded(order: Order, *, refunds: Sequence[RefundLine], reason: str) -> None:
    """The customer: the order is cancelled and how much comes back, how."""
    total = sum((Decimal(r.amount) for r in refunds), Decimal("0"))
    currency = refunds[0].currency if refunds else order.currency
    providers = sorted({r.provider for r in refunds} - {NOTHING_CHARGED}) or [NOTHING_CHARGED]
    context: dict[str, object] = {
        "order_id": order.pk,
        "package": order.plan.name,
        "server_name": order.server_name,
        "amount": f"{total:.2f}",
        "currency": currency,
        "reason": reason[:500],
        "refund_method": REFUND_METHODS[providers[0]],
    }
    references = [
        r.reference for r in refunds if r.provider == PaymentProvider.STRIPE and r.reference
    ]
    if references:
        context["refund_reference"] = ", ".join(references)
    notification_send(
        event="order_refunded",
        user=order.customer,
        context=context,
        event_key=f"order_refunded:order-{order.pk}",
    )


def notify_credit_added(entry: CreditEntry) -> None:
    """The customer: credit was added to their account (a downgrade, a cancellation, a refund
    to credit, staff), with the new balance. Once per ledger row."""
    context: dict[str, object] = {
        "amount": str(entry.amount),
        "currency": entry.currency,
        "balance": str(entry.balance_after),
        "kind": entry.kind,
        "description": entry.description,
        "credit_url": settings.PORTAL_BASE_URL.rstrip("/") + reverse("account-credit"),
    }
    if entry.invoice_id:
        context["invoice_number"] = entry.invoice.number
    notification_send(
        event="credit_added",
        user=entry.customer,
        context=context,
        event_key=f"credit_added:{entry.pk}",
    )


def invoice_url_builder() -> Callable[[int], str]:
    """invoice id -> its page, without a URL resolver call per invoice (fleet jobs)."""
    return _url_builder("invoice-detail")


def invoice_message_context(
    invoice: Invoice | Mapping[str, Any],
    *,
    server_name: str = "",
    suspension_date: object = None,
    url: Callable[[int], str] | None = None,
) -> dict[str, object]:
    """What invoice_created, invoice_reminder, invoice_overdue and suspension_warning show
    (from an Invoice, or a dict of its fields: the fleet jobs build no model instances).

    `amount` is what is left to pay (the invoice's total after any account credit);
    `credit_applied` is set when credit paid part of it. `invoice_pdf_url` links the PDF."""
    get = (lambda name: getattr(invoice, name)) if isinstance(invoice, Invoice) else invoice.get
    invoice_id = invoice.pk if isinstance(invoice, Invoice) else invoice.get("id")
    context: dict[str, object] = {
        "invoice_number": get("number"),
        "amount": str(get("total")),
        "currency": get("currency"),
        "due_date": get("due_date").isoformat(),
        "invoice_url": url(invoice_id) if url else _url("invoice-detail", invoice_id),
        "invoice_pdf_url": _url_builder("invoice-pdf")(invoice_id),
    }
    credit = get("credit_applied")
    if credit:
        context["credit_applied"] = str(credit)
    if server_name:
        context["server_name"] = server_name
    if suspension_date is not None:
        context["suspension_date"] = str(suspension_date)
    return context
