"""Signed WhatsApp webhooks with malformed bodies: a logged 400, never a 500, nothing applied.

Each body starts with a valid "delivered" receipt for a sent message and then goes wrong: the
whole body is refused, so the valid part must not have been applied either.
"""

import json
import logging

import pytest
from django.test import Client

from notifications.tests import test_webhook as wh

pytestmark = [pytest.mark.django_db, pytest.mark.urls("notifications.tests.urls")]

sent_whatsapp = wh.sent_whatsapp  # the fixture: one WhatsApp delivery in state "sent"


@pytest.fixture
def quiet_client() -> Client:
    # A 500 must show up as a status code to assert on, not as an exception in the test.
    return Client(raise_request_exception=False)


def _valid_entry() -> dict:
    return json.loads(wh.receipt("delivered"))["entry"][0]


def _with_change(change: object) -> dict:
    entry = _valid_entry()
    entry["changes"].append(change)
    return {"object": "whatsapp_business_account", "entry": [entry]}


def _with_status(status: object) -> dict:
    entry = _valid_entry()
    entry["changes"][0]["value"]["statuses"].append(status)
    return {"object": "whatsapp_business_account", "entry": [entry]}


MALFORMED = {
    "entry-str-item": {"entry": [_valid_entry(), "x"]},
    "entry-int-item": {"entry": [_valid_entry(), 5]},
    "entry-object": {"entry": {"id": "WABA"}},
    "entry-int": {"entry": 5},
    "entry-str": {"entry": "x"},
    "changes-int": {"entry": [_valid_entry(), {"changes": 5}]},
    "changes-str": {"entry": [_valid_entry(), {"changes": "x"}]},
    "change-str": _with_change("x"),
    "change-list": _with_change([1]),
    "value-list": _with_change({"field": "messages", "value": [1]}),
    "value-empty-list": _with_change({"field": "messages", "value": []}),
    "value-str": _with_change({"field": "messages", "value": "x"}),
    "statuses-int": _with_change({"value": {"statuses": 5}}),
    "statuses-str": _with_change({"value": {"statuses": "abc"}}),
    "status-str": _with_status("x"),
    "status-id-object": _with_status({"id": {"a": 1}, "status": "read"}),
    "status-id-nul": _with_status({"id": "wamid.\u0000", "status": "read"}),
    "status-id-too-long": _with_status({"id": "wamid." + "x" * 300, "status": "read"}),
    "status-status-list": _with_status({"id": wh.MESSAGE_ID, "status": ["read"]}),
    "errors-int": _with_status({"id": wh.MESSAGE_ID, "status": "failed", "errors": 5}),
    "errors-item-str": _with_status({"id": wh.MESSAGE_ID, "status": "failed", "errors": ["x"]}),
    "error-data-list": _with_status(
        {"id": wh.MESSAGE_ID, "status": "failed", "errors": [{"code": 1, "error_data": ["x"]}]}
    ),
}


@pytest.mark.parametrize("payload", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_signed_body_is_a_logged_400_and_applies_nothing(
    sent_whatsapp, quiet_client, caplog, payload
):
    body = json.dumps(payload).encode()
    before = wh.snapshot()

    with caplog.at_level(logging.WARNING, logger="notifications.views"):
        response = wh.post(quiet_client, body)

    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == "invalid_payload"
    assert wh.snapshot() == before
    assert "whatsapp webhook rejected" in caplog.text
    assert wh.MESSAGE_ID not in caplog.text  # the payload is never logged


@pytest.mark.parametrize("depth", [100_000, 65])
def test_deeply_nested_signed_body_is_refused_before_parsing(
    sent_whatsapp, quiet_client, caplog, depth
):
    entry = json.dumps(_valid_entry())
    body = ('{"entry": [' + entry + ', {"x": ' + "[" * depth + "]" * depth + "}]}").encode()
    before = wh.snapshot()

    with caplog.at_level(logging.WARNING, logger="notifications.views"):
        response = wh.post(quiet_client, body)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_json"
    assert wh.snapshot() == before
    assert "whatsapp webhook rejected" in caplog.text


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({}, "sent"),
        ({"entry": None}, "sent"),
        ({"entry": []}, "sent"),
        ({"entry": [{"changes": None}]}, "sent"),
        (_with_change({}), "delivered"),  # the valid receipt next to it still applies
        (_with_change({"value": {"statuses": None}}), "delivered"),
    ],
    ids=["no-entry", "entry-null", "entry-empty", "changes-null", "no-value", "statuses-null"],
)
def test_absent_parts_are_empty_not_errors(sent_whatsapp, client, payload, status):
    response = wh.post(client, json.dumps(payload).encode())

    assert response.status_code == 200
    sent_whatsapp.refresh_from_db()
    assert sent_whatsapp.status == status


def test_nul_in_error_text_is_dropped_not_a_500(sent_whatsapp, client):
    body = wh.receipt(
        "failed", errors=[{"code": 131026, "title": "bad\u0000title", "error_data": None}]
    )

    response = wh.post(client, body)

    assert response.status_code == 200
    sent_whatsapp.refresh_from_db()
    assert sent_whatsapp.status == "failed"
    assert "\u0000" not in sent_whatsapp.last_error
    assert "badtitle" in sent_whatsapp.last_error
