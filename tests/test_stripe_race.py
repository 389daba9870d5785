"""Two Stripe events for one payment at the same moment, on PostgreSQL with real connections.

Stripe sends `checkout.session.completed` and, for delayed methods, also
`checkout.session.async_payment_succeeded`: two event ids for the same PaymentIntent. When they
race, the money must be applied once and the second event recorded as a duplicate, not as a
payment to refund (with a staff alert).
"""

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test import Client

from billing.models import (
    CheckoutSession,
    Invoice,
    InvoiceStatus,
    Payment,
    StripeEvent,
    StripeEventStatus,
)
from billing.tests.test_stripe import event, post, sign
from notifications.models import Delivery
from tests.support import race

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _postgres_only(settings) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks")
    settings.PROVISIONING_ENABLED = False
    settings.ADMINS = [("", "ops@example.com")]  # so a staff alert would be a Delivery row


def _lock_waiters() -> int:
    """Backends of this test database waiting for a lock (row locks included)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


class _InvoiceLockHolder:
    """Holds the invoice row lock in its own connection until released, as a slow concurrent
    writer (staff confirming, a renewal job) would: both webhook deliveries are then surely in
    flight together, whatever the scheduler does, instead of the race depending on luck."""

    def __init__(self, invoice_id: int) -> None:
        self.invoice_id = invoice_id
        self.locked = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        try:
            with transaction.atomic():
                Invoice.objects.select_for_update().get(pk=self.invoice_id)
                self.locked.set()
                self.release.wait(timeout=60)
        finally:
            connections.close_all()

    def __enter__(self) -> "_InvoiceLockHolder":
        self.thread.start()
        assert self.locked.wait(timeout=10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self.thread.join(timeout=60)


def test_two_event_ids_for_one_payment_racing_apply_it_once_without_refund_alert(place_order):
    invoice = place_order().invoices.get()
    CheckoutSession.objects.create(
        invoice=invoice, stripe_session_id="cs_test_1", amount_minor=550, currency="USD"
    )
    completed = event("evt_completed", "checkout.session.completed", invoice)
    succeeded = event("evt_async_succeeded", "checkout.session.async_payment_succeeded", invoice)

    def deliver(payload: bytes):
        return lambda: post(Client(raise_request_exception=False), payload, sign(payload))

    responses: list[object] = []
    with _InvoiceLockHolder(invoice.pk):
        racer = threading.Thread(
            target=lambda: responses.extend(race([deliver(completed), deliver(succeeded)]))
        )
        racer.start()
        deadline = time.monotonic() + 20
        # Both deliveries are past their unlocked reads and queued behind the lock.
        while _lock_waiters() < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _lock_waiters() >= 2, "the deliveries never met at the invoice lock"
    racer.join(timeout=60)

    assert [getattr(r, "status_code", r) for r in responses] == [200, 200]
    assert Payment.objects.count() == 1
    assert Payment.objects.get().reference == "pi_test_1"
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    events = {e.event_id: e for e in StripeEvent.objects.all()}
    assert set(events) == {"evt_completed", "evt_async_succeeded"}
    assert sorted(e.status for e in events.values()) == [
        StripeEventStatus.IGNORED,
        StripeEventStatus.PROCESSED,
    ]
    duplicate = next(e for e in events.values() if e.status == StripeEventStatus.IGNORED)
    assert duplicate.message == "Already applied"
    assert duplicate.invoice_id == invoice.pk
    assert not Delivery.objects.filter(event="payment_review_staff").exists()
