"""Stripe Checkout and webhooks, with no network: payloads are signed here, the API is faked."""

import hashlib
import hmac
import json
import logging
import time
from decimal import Decimal

import pytest
import responses
from django.urls import reverse

from billing.models import (
    CheckoutSession,
    CheckoutSessionStatus,
    InvoiceStatus,
    OrderStatus,
    Payment,
    StripeEvent,
    StripeEventStatus,
)
from billing.services.payments import payment_record_manual
from billing.services.stripe_payments import checkout_session_start
from common.actors import Actor
from provisioning.models import ProvisioningRequest

pytestmark = pytest.mark.django_db

SECRET = "whsec_test_secret_one"


def sign(payload: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def event(event_id: str, event_type: str, invoice, **session_fields) -> bytes:
    obj = {
        "id": session_fields.pop("session_id", "cs_test_1"),
        "object": "checkout.session",
        "amount_total": 550,
        "currency": "usd",
        "payment_status": "paid",
        "payment_intent": "pi_test_1",
        "client_reference_id": str(invoice.pk),
        "metadata": {"invoice_id": str(invoice.pk), "invoice_number": invoice.number},
        **session_fields,
    }
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": obj},
        }
    ).encode()


def post(client, payload: bytes, signature: str | None):
    headers = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}
    return client.post(
        reverse("stripe-webhook"), data=payload, content_type="application/json", **headers
    )


@pytest.fixture
def invoice(place_order):
    return place_order().invoices.get()


def test_completed_session_pays_invoice_and_confirms_order(client, invoice):
    response = post(
        client,
        event("evt_1", "checkout.session.completed", invoice),
        sign(event("evt_1", "checkout.session.completed", invoice)),
    )

    assert response.status_code == 200
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.order.status == OrderStatus.PROVISIONING
    payment = Payment.objects.get()
    assert (payment.provider, payment.amount, payment.reference) == (
        "stripe",
        Decimal("5.50"),
        "pi_test_1",
    )
    assert payment.actor_label == "stripe:pi_test_1"
    stored = StripeEvent.objects.get(event_id="evt_1")
    assert stored.status == StripeEventStatus.PROCESSED
    assert stored.summary["amount_total"] == 550
    assert ProvisioningRequest.objects.count() == 1


def test_replayed_event_changes_nothing(client, invoice):
    payload = event("evt_1", "checkout.session.completed", invoice)
    assert post(client, payload, sign(payload)).status_code == 200
    invoice.refresh_from_db()
    paid_at = invoice.paid_at

    again = post(client, payload, sign(payload))

    assert again.status_code == 200
    assert Payment.objects.count() == 1
    assert StripeEvent.objects.count() == 1
    assert ProvisioningRequest.objects.count() == 1
    invoice.refresh_from_db()
    assert invoice.paid_at == paid_at
    assert invoice.order.events.count() == 3


def test_second_event_for_same_payment_is_ignored(client, invoice):
    first = event("evt_1", "checkout.session.completed", invoice)
    second = event("evt_2", "checkout.session.async_payment_succeeded", invoice)
    post(client, first, sign(first))

    post(client, second, sign(second))

    assert StripeEvent.objects.get(event_id="evt_2").status == StripeEventStatus.IGNORED
    assert Payment.objects.count() == 1


def test_expired_after_completed_keeps_session_complete(client, invoice):
    CheckoutSession.objects.create(
        invoice=invoice, stripe_session_id="cs_test_1", amount_minor=550, currency="USD"
    )
    completed = event("evt_1", "checkout.session.completed", invoice)
    expired = event("evt_2", "checkout.session.expired", invoice, payment_status="unpaid")
    post(client, completed, sign(completed))
    post(client, expired, sign(expired))

    assert CheckoutSession.objects.get().status == CheckoutSessionStatus.COMPLETE
    assert StripeEvent.objects.get(event_id="evt_2").status == StripeEventStatus.IGNORED
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID


def test_expired_open_session_is_marked_expired(client, invoice):
    CheckoutSession.objects.create(
        invoice=invoice, stripe_session_id="cs_test_1", amount_minor=550, currency="USD"
    )
    expired = event("evt_9", "checkout.session.expired", invoice, payment_status="unpaid")
    post(client, expired, sign(expired))
    assert CheckoutSession.objects.get().status == CheckoutSessionStatus.EXPIRED
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID


def test_unpaid_async_session_waits(client, invoice):
    payload = event("evt_1", "checkout.session.completed", invoice, payment_status="unpaid")
    post(client, payload, sign(payload))
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID
    assert StripeEvent.objects.get().status == StripeEventStatus.IGNORED


@pytest.mark.parametrize(
    "fields", [{"amount_total": 549}, {"currency": "eur"}, {"amount_total": "550"}]
)
def test_amount_or_currency_mismatch_is_rejected_and_logged(client, invoice, caplog, fields):
    payload = event("evt_1", "checkout.session.completed", invoice, **fields)
    with caplog.at_level(logging.ERROR, logger="billing.services.stripe_payments"):
        response = post(client, payload, sign(payload))

    assert response.status_code == 200  # stored; Stripe must not retry it
    assert StripeEvent.objects.get().status == StripeEventStatus.REJECTED
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID
    assert not Payment.objects.exists()
    assert "mismatch" in caplog.text.lower()


def test_payment_for_already_manually_paid_invoice_is_flagged_for_refund(client, invoice, staff):
    payment_record_manual(invoice_id=invoice.pk, reference="BANK", actor=Actor.staff(staff))
    payload = event("evt_1", "checkout.session.completed", invoice)

    post(client, payload, sign(payload))

    stored = StripeEvent.objects.get()
    assert stored.status == StripeEventStatus.REJECTED
    assert "refunded" in stored.message
    assert Payment.objects.count() == 1


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "garbage",
        sign(b"other body"),
        sign(b"", secret="whsec_wrong"),
        "t=1,v1=deadbeef",
    ],
    # Fixed ids: the signed values hold the time, and xdist workers must collect the same ids.
    ids=["missing", "garbage", "other-body", "wrong-secret", "stale-forged"],
)
def test_forged_webhooks_are_rejected_and_change_nothing(client, invoice, caplog, signature):
    payload = event("evt_1", "checkout.session.completed", invoice)
    if signature and signature.startswith("t=") and "deadbeef" not in signature:
        signature = sign(payload, secret="whsec_wrong")
    with caplog.at_level(logging.WARNING):
        response = post(client, payload, signature)

    assert response.status_code == 400
    assert not StripeEvent.objects.exists()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID
    assert "rejected" in caplog.text
    assert "pi_test_1" not in caplog.text  # the payload is not logged
    assert SECRET not in caplog.text


def test_stale_signature_is_rejected(client, invoice):
    payload = event("evt_1", "checkout.session.completed", invoice)
    response = post(client, payload, sign(payload, timestamp=int(time.time()) - 3600))
    assert response.status_code == 400
    assert "tolerance" in response.json()["message"].lower()
    assert not StripeEvent.objects.exists()


def test_rotated_secret_is_accepted(client, invoice, settings):
    settings.STRIPE_WEBHOOK_SECRETS = ["whsec_new_secret", SECRET]
    payload = event("evt_1", "checkout.session.completed", invoice)
    assert post(client, payload, sign(payload, secret="whsec_new_secret")).status_code == 200
    assert Payment.objects.count() == 1


@responses.activate
def test_checkout_session_is_created_once_and_reused(invoice, customer):
    responses.post(
        "https://api.stripe.com/v1/checkout/sessions",
        json={
            "id": "cs_test_abc",
            "object": "checkout.session",
            "url": "https://checkout.stripe.test/abc",
            "amount_total": 550,
            "currency": "usd",
            "expires_at": int(time.time()) + 86400,
        },
    )
    first = checkout_session_start(
        invoice_id=invoice.pk,
        customer=customer,
        success_url="https://p/s",
        cancel_url="https://p/c",
    )
    again = checkout_session_start(
        invoice_id=invoice.pk,
        customer=customer,
        success_url="https://p/s",
        cancel_url="https://p/c",
    )

    assert first.pk == again.pk
    assert len(responses.calls) == 1
    request = responses.calls[0].request
    assert "line_items[0][price_data][unit_amount]=550" in request.body
    assert "line_items[0][price_data][currency]=usd" in request.body
    assert f"metadata[invoice_id]={invoice.pk}" in request.body
    assert request.headers["Idempotency-Key"] == f"invoice-{invoice.pk}-checkout-1"


@responses.activate
def test_checkout_for_someone_elses_or_paid_invoice_is_refused(
    invoice, other_customer, customer, staff
):
    from common.errors import ConflictError, NotFoundError

    with pytest.raises(NotFoundError):
        checkout_session_start(
            invoice_id=invoice.pk,
            customer=other_customer,
            success_url="https://p/s",
            cancel_url="https://p/c",
        )
    payment_record_manual(invoice_id=invoice.pk, reference="X", actor=Actor.staff(staff))
    with pytest.raises(ConflictError):
        checkout_session_start(
            invoice_id=invoice.pk,
            customer=customer,
            success_url="https://p/s",
            cancel_url="https://p/c",
        )
    assert len(responses.calls) == 0


@responses.activate
def test_stripe_outage_is_a_clear_retryable_error(invoice, customer):
    from billing.stripe_client import StripeUnavailable

    responses.post(
        "https://api.stripe.com/v1/checkout/sessions",
        status=503,
        json={"error": {"message": "down", "type": "api_error"}},
    )
    with pytest.raises(StripeUnavailable):
        checkout_session_start(
            invoice_id=invoice.pk,
            customer=customer,
            success_url="https://p/s",
            cancel_url="https://p/c",
        )
    assert not CheckoutSession.objects.exists()


@responses.activate
def test_cancelling_closes_payment_pages_and_a_late_payment_alerts_staff(
    client, invoice, customer, settings, django_capture_on_commit_callbacks
):
    from billing.services.orders import order_cancel
    from config.celery import app
    from notifications.models import Delivery

    settings.ADMINS = [("", "ops@example.com")]
    CheckoutSession.objects.create(
        invoice=invoice,
        stripe_session_id="cs_test_1",
        url="https://checkout.stripe.test/x",
        amount_minor=550,
        currency="USD",
    )
    responses.post(
        "https://api.stripe.com/v1/checkout/sessions/cs_test_1/expire",
        json={"id": "cs_test_1", "object": "checkout.session", "status": "expired"},
    )
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            order_cancel(order_id=invoice.order_id, actor=Actor.customer(customer), reason="x")
    finally:
        app.conf.task_always_eager = False
    assert CheckoutSession.objects.get().status == CheckoutSessionStatus.EXPIRED
    assert len(responses.calls) == 1

    # A payment that was already in flight still arrives: not applied, staff told to refund.
    payload = event("evt_late", "checkout.session.completed", invoice)
    with django_capture_on_commit_callbacks(execute=False):
        assert post(client, payload, sign(payload)).status_code == 200
    assert StripeEvent.objects.get().status == StripeEventStatus.REJECTED
    alert = Delivery.objects.get(event="payment_review_staff")
    assert alert.recipient == "ops@example.com"
    assert alert.context["reference"] == "pi_test_1"
    assert "refunded" in alert.context["reason"]
    assert alert.context["invoice_number"] == invoice.number
    assert not Payment.objects.exists()
