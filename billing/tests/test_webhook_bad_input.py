"""Stripe webhooks fed hostile or malformed input: a logged 400, never a 500, nothing stored."""

import json
import logging
import time

import pytest
from django.test import Client

from billing.models import InvoiceStatus, Payment, StripeEvent
from billing.tests.test_stripe import SECRET, event, post, sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def quiet_client() -> Client:
    # A 500 must show up as a status code to assert on, not as an exception in the test.
    return Client(raise_request_exception=False)


@pytest.fixture
def invoice(place_order):
    return place_order().invoices.get()


def _assert_nothing_changed(invoice) -> None:
    assert not StripeEvent.objects.exists()
    assert not Payment.objects.exists()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID


@pytest.mark.parametrize(
    "header",
    [
        "t={ts},v1=\u00e9\u00e9\u00e9",
        "t={ts},v1=" + "\u00ff" * 64,
        "t=\u0661\u0662\u0663,v1=abc",  # Arabic-Indic digits: int() would accept them
        "t={ts},v1={mac}\u00e9",
    ],
    ids=["latin1-mac", "latin1-64", "non-ascii-digits", "valid-mac-plus-latin1"],
)
def test_non_ascii_signature_header_is_a_logged_400(quiet_client, invoice, caplog, header):
    payload = event("evt_1", "checkout.session.completed", invoice)
    valid = sign(payload)
    ts, mac = valid.removeprefix("t=").split(",v1=")
    header = header.format(ts=ts, mac=mac)
    with caplog.at_level(logging.WARNING, logger="billing.views.webhooks"):
        response = post(quiet_client, payload, header)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    _assert_nothing_changed(invoice)
    assert "forged" in caplog.text
    assert header not in caplog.text  # never the signature header
    assert SECRET not in caplog.text


def _signed_event(**fields) -> bytes:
    body = {
        "id": "evt_bad",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": {"id": "cs_test_1"}},
    }
    body.update(fields)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    "fields",
    [
        {"created": 10**20},
        {"created": -(10**20)},
        {"created": 253402300800},  # year 10000
        {"created": "yesterday"},
        {"created": True},
        {"id": "evt_" + "x" * 300},
        {"id": "evt_\u0000nul"},
        {"id": ""},
        {"id": 12345},
        {"id": ["evt_1"]},
        {"type": "checkout.session." + "x" * 100},
        {"type": "checkout\u0000session"},
        {"type": {"a": 1}},
        {"livemode": "yes"},
    ],
    ids=[
        "created-huge",
        "created-negative-huge",
        "created-year-10000",
        "created-str",
        "created-bool",
        "id-too-long",
        "id-nul",
        "id-empty",
        "id-int",
        "id-list",
        "type-too-long",
        "type-nul",
        "type-object",
        "livemode-str",
    ],
)
def test_signed_but_malformed_event_is_a_logged_400(quiet_client, invoice, caplog, fields):
    payload = _signed_event(**fields)
    with caplog.at_level(logging.WARNING, logger="billing.views.webhooks"):
        response = post(quiet_client, payload, sign(payload))

    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == "invalid_event"
    _assert_nothing_changed(invoice)
    assert "malformed" in caplog.text


@pytest.mark.parametrize("depth", [100_000, 65])
@pytest.mark.parametrize("bracket", ["[]", "{}"])
def test_deeply_nested_signed_body_is_refused_before_parsing(
    quiet_client, invoice, caplog, depth, bracket
):
    opening, closing = bracket
    inner = (
        opening * depth + closing * depth
        if opening == "["
        else '{"a":' * depth + "1" + closing * depth
    )
    payload = (
        '{"id":"evt_deep","type":"checkout.session.completed","data":' + inner + "}"
    ).encode()
    with caplog.at_level(logging.WARNING, logger="billing.views.webhooks"):
        response = post(quiet_client, payload, sign(payload))

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_event"
    _assert_nothing_changed(invoice)
    assert "malformed" in caplog.text


def test_nesting_within_the_limit_is_accepted(client, invoice):
    deep = {"a": 1}
    for _ in range(40):
        deep = {"n": deep}
    payload = _signed_event(type="customer.created", data={"object": deep})

    response = post(client, payload, sign(payload))

    assert response.status_code == 200
    assert StripeEvent.objects.get().status == "ignored"


@pytest.mark.parametrize(
    "session_fields",
    [
        {"metadata": {"invoice_id": "\u00b2"}, "client_reference_id": None},  # "²".isdigit()
        {"metadata": {"invoice_id": "9" * 40}, "client_reference_id": None},
        {"metadata": "not-an-object", "client_reference_id": "\u0663"},
        {"id": ["cs_test_1"], "metadata": None, "client_reference_id": None},
        {"currency": "usd\u0000", "amount_total": 550},
        {"amount_total": "\u0000" * 10},
    ],
    ids=[
        "superscript-digit",
        "huge-invoice-id",
        "metadata-str",
        "session-id-list",
        "currency-nul",
        "amount-nul",
    ],
)
def test_odd_session_objects_are_stored_not_a_500(quiet_client, invoice, session_fields):
    """Correctly signed events whose object holds odd values: stored and answered 200 (Stripe
    would otherwise retry for days), never applied as a payment."""
    payload = event("evt_odd", "checkout.session.completed", invoice, **session_fields)

    response = post(quiet_client, payload, sign(payload))

    assert response.status_code == 200, response.content[:300]
    stored = StripeEvent.objects.get()
    assert stored.status in {"rejected", "ignored"}
    assert "\u0000" not in stored.message
    assert "\u0000" not in json.dumps(stored.summary)
    assert not Payment.objects.exists()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID


def test_odd_values_in_a_paid_session_are_summarised_by_type(client, invoice):
    """A payment_intent that is not an id falls back to the session id (as when it is
    missing); the summary keeps scalars only."""
    payload = event(
        "evt_odd", "checkout.session.completed", invoice, payment_intent=["pi_1"], status=[1]
    )

    response = post(client, payload, sign(payload))

    assert response.status_code == 200
    stored = StripeEvent.objects.get()
    assert stored.status == "processed"
    assert stored.summary["payment_intent"] == "<list>"
    assert stored.summary["status"] == "<list>"
    assert Payment.objects.get().reference == "cs_test_1"
