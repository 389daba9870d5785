from decimal import Decimal

import pytest

from billing.models import InvoiceStatus, OrderStatus, Payment
from billing.services.orders import order_cancel
from billing.services.payments import invoice_mark_paid, payment_record_manual
from common.actors import Actor
from common.errors import ConflictError
from provisioning.models import ProvisioningRequest, ProvisioningRequestStatus

pytestmark = pytest.mark.django_db


def test_manual_payment_confirms_order_and_requests_provisioning_once(place_order, staff):
    order = place_order()
    invoice = order.invoices.get()

    payment = payment_record_manual(
        invoice_id=invoice.pk, reference="BCA-2026-11-23-001", actor=Actor.staff(staff)
    )

    assert payment.amount == Decimal("5.50")
    assert payment.provider == "manual"
    assert payment.actor_label == "staff:staff@example.com"
    invoice.refresh_from_db()
    order.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.paid_at is not None
    assert order.status == OrderStatus.PROVISIONING  # confirmed, then taken by the saga
    assert order.confirmed_at is not None
    assert order.deployment.next_due_date is not None
    request = ProvisioningRequest.objects.get(deployment=order.deployment)
    assert request.status == ProvisioningRequestStatus.IN_PROGRESS
    assert request.runs.count() == 1
    assert request.order_reference == f"Order #{order.pk}"
    assert request.requested_by == "staff:staff@example.com"
    assert [(e.from_status, e.to_status, e.actor_label) for e in order.events.all()] == [
        ("", "pending", "customer:alice@example.com"),
        ("pending", "confirmed", "staff:staff@example.com"),
        ("confirmed", "provisioning", "staff:staff@example.com"),
    ]
    assert [e.to_status for e in invoice.events.all()] == ["unpaid", "paid"]


def test_second_confirmation_is_refused_and_creates_nothing(place_order, staff):
    order = place_order()
    invoice = order.invoices.get()
    payment_record_manual(invoice_id=invoice.pk, reference="REF-1", actor=Actor.staff(staff))

    with pytest.raises(ConflictError) as caught:
        payment_record_manual(invoice_id=invoice.pk, reference="REF-2", actor=Actor.staff(staff))

    assert caught.value.code == "already_paid"
    assert Payment.objects.count() == 1
    assert ProvisioningRequest.objects.count() == 1
    assert order.events.count() == 3


def test_paying_a_cancelled_invoice_is_refused(place_order, customer, staff):
    order = place_order()
    order_cancel(order_id=order.pk, actor=Actor.customer(customer), reason="test")

    with pytest.raises(ConflictError) as caught:
        payment_record_manual(
            invoice_id=order.invoices.get().pk, reference="LATE", actor=Actor.staff(staff)
        )

    assert "cancelled" in caught.value.message
    assert not Payment.objects.exists()
    assert not ProvisioningRequest.objects.exists()


@pytest.mark.parametrize(
    ("amount", "currency"), [(Decimal("5.49"), "USD"), (Decimal("5.50"), "EUR")]
)
def test_wrong_amount_or_currency_is_refused(place_order, amount, currency):
    invoice = place_order().invoices.get()
    with pytest.raises(ConflictError) as caught:
        invoice_mark_paid(
            invoice_id=invoice.pk,
            provider="manual",
            amount=amount,
            currency=currency,
            reference="",
            actor=Actor.system(),
        )
    assert caught.value.code == "amount_mismatch"
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID


def test_same_reference_cannot_pay_two_invoices(place_order, staff):
    first = place_order().invoices.get()
    second = place_order().invoices.get()
    payment_record_manual(invoice_id=first.pk, reference="DUP", actor=Actor.staff(staff))

    with pytest.raises(ConflictError) as caught:
        payment_record_manual(invoice_id=second.pk, reference="DUP", actor=Actor.staff(staff))

    assert caught.value.code == "duplicate_payment"
    second.refresh_from_db()
    assert second.status == InvoiceStatus.UNPAID
    assert ProvisioningRequest.objects.count() == 1


def test_provisioning_disabled_still_records_request_for_manual_setup(place_order, staff, settings):
    settings.PROVISIONING_ENABLED = False
    order = place_order()
    payment_record_manual(
        invoice_id=order.invoices.get().pk, reference="R", actor=Actor.staff(staff)
    )
    request = ProvisioningRequest.objects.get()
    assert request.automatic is False
    assert "manual provisioning" in request.events.get().reason


def test_next_due_date_follows_billing_time_zone_and_clamps_month_end(place_order, staff, settings):
    import datetime as dt

    import time_machine

    settings.BILLING_TIME_ZONE = "Asia/Jakarta"
    order = place_order()
    # 2027-01-30 20:00 UTC is already Jan 31 in Jakarta (UTC+7): due Feb 28.
    with time_machine.travel(dt.datetime(2027, 1, 30, 20, 0, tzinfo=dt.UTC), tick=False):
        payment_record_manual(
            invoice_id=order.invoices.get().pk, reference="TZ", actor=Actor.staff(staff)
        )
    order.deployment.refresh_from_db()
    assert order.deployment.next_due_date == dt.date(2027, 2, 28)
