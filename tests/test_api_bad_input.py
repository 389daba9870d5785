"""The REST API fed hostile input: JSON errors in the usual `{message, code, extra}` shape,
never a 500 and never Django's HTML error pages."""

import json

import pytest
from django.test import Client

from billing.models import Order

pytestmark = pytest.mark.django_db

ORDER = {"plan": "bronze", "billing_cycle": "monthly", "location": "eu"}


@pytest.fixture
def session_client(customer) -> Client:
    """A logged-in browser session, as the portal's own pages call the API."""
    # A 500 must show up as a status code to assert on, not as an exception in the test.
    client = Client(raise_request_exception=False)
    client.force_login(customer)
    return client


@pytest.fixture
def csrf_session_client(customer) -> Client:
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.force_login(customer)
    return client


def _assert_error_shape(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"message", "code", "extra"}
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "body",
    [
        _nested(100_000),
        '{"plan": ' + _nested(100_000) + "}",
        '{"plan": ' + '{"a": ' * 100_000 + "1" + "}" * 100_000 + "}",
        _nested(65),
    ],
    ids=["lists-100k", "in-object-100k", "objects-100k", "lists-65"],
)
def test_deeply_nested_json_is_a_400_parse_error(session_client, catalog, body):
    response = session_client.post("/api/v1/orders/", data=body, content_type="application/json")

    _assert_error_shape(response, 400, "parse_error")
    assert not Order.objects.exists()


def test_nesting_within_the_limit_is_validated_as_usual(session_client, catalog):
    body = json.dumps({**ORDER, "plan": json.loads(_nested(60))})

    response = session_client.post("/api/v1/orders/", data=body, content_type="application/json")

    _assert_error_shape(response, 400, "invalid")
    assert not Order.objects.exists()


def test_brackets_inside_strings_do_not_count_as_nesting(session_client, catalog):
    body = json.dumps({**ORDER, "plan": "[{" * 500 + '\\"[' * 100})

    response = session_client.post("/api/v1/orders/", data=body, content_type="application/json")

    _assert_error_shape(response, 400, "invalid")  # parsed; the plan is just unknown


def test_a_normal_order_still_works(session_client, catalog):
    response = session_client.post(
        "/api/v1/orders/", data=json.dumps(ORDER), content_type="application/json"
    )
    assert response.status_code == 201, response.content[:300]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orders/abc/",
        "/api/v1/orders/abc/cancel/",
        "/api/v1/invoices/1e3/",
        "/api/v1/invoices/%C2%B2/",  # "²": a digit to str.isdigit(), not to the converter
        "/api/v1/no-such-thing/",
        "/api/nope",
        "/api/v1/orders/99999999999999999999999/",
    ],
)
def test_unknown_api_paths_answer_json_404(session_client, path):
    response = session_client.get(path)

    _assert_error_shape(response, 404, "not_found")


def test_unknown_site_paths_keep_the_html_404(session_client):
    response = session_client.get("/no-such-page/")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", json.dumps({**ORDER, "padding": "x" * 5000})),
        ("application/x-www-form-urlencoded", "plan=bronze&padding=" + "x" * 5000),
    ],
    ids=["json", "form"],
)
def test_oversized_api_body_is_a_json_413(session_client, catalog, settings, content_type, body):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = session_client.post("/api/v1/orders/", data=body, content_type=content_type)

    _assert_error_shape(response, 413, "request_too_large")
    assert not Order.objects.exists()


def test_oversized_body_with_csrf_checks_is_a_json_413(csrf_session_client, catalog, settings):
    """The CSRF check reads the form body for csrfmiddlewaretoken: too big is a 413 there."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    csrf_session_client.cookies["csrftoken"] = "a" * 32

    response = csrf_session_client.post(
        "/api/v1/orders/",
        data="plan=bronze&padding=" + "x" * 5000,
        content_type="application/x-www-form-urlencoded",
    )

    _assert_error_shape(response, 413, "request_too_large")
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/orders/"),
        ("post", "/api/v1/orders/"),
        ("get", "/api/v1/invoices/1/"),
        ("post", "/api/v1/orders/1/cancel/"),
    ],
)
def test_anonymous_calls_answer_401_with_a_challenge(catalog, method, path):
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)

    if method == "get":
        response = client.get(path)
    else:
        response = client.post(path, data=json.dumps(ORDER), content_type="application/json")

    _assert_error_shape(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"]
    assert not Order.objects.exists()


def test_session_calls_still_need_the_csrf_token(csrf_session_client, catalog):
    response = csrf_session_client.post(
        "/api/v1/orders/", data=json.dumps(ORDER), content_type="application/json"
    )

    body = _assert_error_shape(response, 403, "permission_denied")
    assert "csrf" in body["message"].lower()
    assert not Order.objects.exists()


def test_session_calls_with_the_csrf_token_work(csrf_session_client, catalog):
    token = "a" * 32  # a CSRF secret in the cookie; the header may carry it unmasked
    csrf_session_client.cookies["csrftoken"] = token
    response = csrf_session_client.post(
        "/api/v1/orders/",
        data=json.dumps(ORDER),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )

    assert response.status_code == 201, response.content[:300]


def test_public_endpoints_stay_public(catalog):
    response = Client().get("/api/v1/plans/")
    assert response.status_code == 200
