"""Every customer route of the API against real bearer tokens: the owner's token works, another
customer's token finds nothing (404), a read-only token cannot write (403), a customer token
never reaches a staff route (403), no token is 401, and a refused call changes nothing.

Routes with their own token tests (the provisioning and servers APIs) are listed in
OWN_TOKEN_TESTS; a new route missing from both lists fails `test_every_route_is_covered`.
"""

import datetime as dt

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from billing.models import (
    Cancellation,
    CreditEntry,
    Invoice,
    Order,
    PlanChange,
    SavedPaymentMethod,
)
from billing.services.plan_changes import plan_change_request
from common.actors import Actor
from servers.models import Deployment, DeploymentStatus, Node

pytestmark = pytest.mark.django_db

ORDER = {"plan": "bronze", "billing_cycle": "monthly", "location": "eu"}

# (method, path, payload): {d} deployment, {o} order, {i} invoice, {c} plan change, {p} card.
CUSTOMER_OBJECT_ROUTES = [
    ("get", "/api/v1/orders/{o}/", None),
    ("post", "/api/v1/orders/{o}/cancel/", {}),
    ("get", "/api/v1/invoices/{i}/", None),
    ("post", "/api/v1/invoices/{i}/checkout/", {}),
    ("get", "/api/v1/servers/{d}/plan-changes/options/", None),
    ("get", "/api/v1/servers/{d}/plan-changes/", None),
    ("post", "/api/v1/servers/{d}/plan-changes/", {"plan": "silver"}),
    ("post", "/api/v1/servers/{d}/plan-changes/{c}/cancel/", {}),
    ("get", "/api/v1/servers/{d}/cancellation/", None),
    ("post", "/api/v1/servers/{d}/cancellation/", {"mode": "end_of_term"}),
    ("delete", "/api/v1/servers/{d}/cancellation/", None),
    ("post", "/api/v1/servers/{d}/cancellation/revoke/", {}),
    ("post", "/api/v1/payment-methods/{p}/default/", {}),
    ("delete", "/api/v1/payment-methods/{p}/", None),
]
CUSTOMER_COLLECTION_ROUTES = [
    ("get", "/api/v1/orders/", None),
    ("post", "/api/v1/orders/", ORDER),
    ("get", "/api/v1/invoices/", None),
    ("get", "/api/v1/credit/", None),
    ("get", "/api/v1/payment-methods/", None),
    ("post", "/api/v1/payment-methods/setup/", {}),
]
PUBLIC_ROUTES = ["/api/v1/plans/", "/api/v1/plans/{s}/", "/api/v1/locations/"]
STAFF_ROUTES = [("post", "/api/v1/invoices/{i}/confirm-payment/", {"reference": "BT-9"})]
PROTECTED_ROUTES = CUSTOMER_OBJECT_ROUTES + CUSTOMER_COLLECTION_ROUTES + STAFF_ROUTES
# Prefixes of routes whose modules test every route against customer, staff and wrong-scope
# tokens themselves.
OWN_TOKEN_TESTS = ("api/v1/provisioning/", "api/v1/servers/")
OWN_TOKEN_TEST_EXCEPTIONS = (
    # The plan-change and cancellation routes under servers/ are tested here.
    "plan-changes",
    "cancellation",
)


@pytest.fixture
def objects(place_order, customer):
    """One of everything, owned by `customer`: an active server with an open plan change,
    its order and invoice, and a saved card."""
    order = place_order()
    deployment = order.deployment
    invoice = order.invoices.get()
    Deployment.objects.filter(pk=deployment.pk).update(
        status=DeploymentStatus.ACTIVE,
        node=Node.objects.filter(location__short_code="eu").first(),
        panel_server_id=5000 + deployment.pk,
        next_due_date=dt.date.today() + dt.timedelta(days=20),
    )
    change = plan_change_request(
        deployment_id=deployment.pk,
        to_plan_slug="silver",
        actor=Actor.customer(customer),
        customer=customer,
    )
    card = SavedPaymentMethod.objects.create(
        customer=customer, stripe_payment_method_id="pm_test_matrix", brand="visa", last4="4242"
    )
    return {
        "d": deployment.pk,
        "o": order.pk,
        "i": invoice.pk,
        "c": change.pk,
        "p": card.pk,
    }


def _state() -> dict:
    return {
        "orders": list(Order.objects.values_list("id", "status")),
        "invoices": list(Invoice.objects.values_list("id", "status")),
        "changes": list(PlanChange.objects.values_list("id", "status")),
        "cancellations": Cancellation.objects.count(),
        "cards": list(SavedPaymentMethod.objects.values_list("id", "is_default", "removed_at")),
        "credit": CreditEntry.objects.count(),
        "deployments": list(Deployment.objects.values_list("id", "status")),
    }


def _call(client, method, path, payload):
    if payload is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, payload, format="json")


@pytest.mark.parametrize(("method", "path", "payload"), CUSTOMER_OBJECT_ROUTES)
def test_another_customers_token_finds_nothing(
    token_api, other_customer, objects, method, path, payload
):
    before = _state()

    response = _call(token_api(other_customer, "write"), method, path.format(**objects), payload)

    assert response.status_code == 404, response.content
    assert set(response.json()) == {"message", "code", "extra"}
    assert _state() == before


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [r for r in CUSTOMER_OBJECT_ROUTES + CUSTOMER_COLLECTION_ROUTES if r[0] != "get"],
)
def test_a_read_only_token_cannot_write(token_api, customer, objects, method, path, payload):
    before = _state()

    response = _call(token_api(customer), method, path.format(**objects), payload)

    assert response.status_code == 403, response.content
    assert response.json()["message"] == "This token lacks the 'write' scope this call needs."
    assert _state() == before


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [r for r in CUSTOMER_OBJECT_ROUTES + CUSTOMER_COLLECTION_ROUTES if r[0] == "get"],
)
def test_the_owners_read_only_token_reads(token_api, customer, objects, method, path, payload):
    response = _call(token_api(customer), method, path.format(**objects), payload)

    if path.endswith("/cancellation/"):
        # The owner's server exists; it just has no cancellation (another's "No such server").
        assert response.status_code == 404
        assert response.json()["message"] == "This server has no cancellation."
    else:
        assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    CUSTOMER_OBJECT_ROUTES + CUSTOMER_COLLECTION_ROUTES + STAFF_ROUTES,
)
def test_no_token_is_401(api_client, objects, method, path, payload):
    before = _state()

    response = _call(api_client, method, path.format(**objects), payload)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert _state() == before


@pytest.mark.parametrize(("method", "path", "payload"), STAFF_ROUTES)
def test_a_customer_token_never_reaches_a_staff_route(
    token_api, customer, objects, method, path, payload
):
    before = _state()

    response = _call(token_api(customer, "write"), method, path.format(**objects), payload)

    assert response.status_code == 403
    assert _state() == before


@pytest.mark.parametrize(("method", "path", "payload"), STAFF_ROUTES)
def test_a_staff_read_only_token_cannot_act(token_api, staff, objects, method, path, payload):
    before = _state()

    response = _call(token_api(staff), method, path.format(**objects), payload)

    assert response.status_code == 403
    assert _state() == before


@pytest.mark.parametrize("path", PUBLIC_ROUTES)
def test_public_routes_answer_any_token_and_none(token_api, customer, api_client, catalog, path):
    path = path.format(s="bronze")
    assert api_client.get(path).status_code == 200
    assert token_api(customer).get(path).status_code == 200


def _routes(resolver: URLResolver | None = None, prefix: str = ""):
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/v1/"):
            yield route


def _normalise(path: str) -> str:
    # "/api/v1/orders/{o}/" and "api/v1/orders/<int:order_id>/" both become "api/v1/orders/*/".
    parts = path.strip("/").split("/")
    return "/".join("*" if part.startswith(("{", "<")) else part for part in parts) + "/"


def test_every_route_is_covered():
    listed = {
        _normalise(path)
        for _method, path, _payload in CUSTOMER_OBJECT_ROUTES
        + CUSTOMER_COLLECTION_ROUTES
        + STAFF_ROUTES
    } | {_normalise(path) for path in PUBLIC_ROUTES}
    uncovered = [
        route
        for route in _routes()
        if _normalise(route) not in listed
        and not (
            route.startswith(OWN_TOKEN_TESTS)
            and not any(part in route for part in OWN_TOKEN_TEST_EXCEPTIONS)
        )
    ]

    assert uncovered == []
