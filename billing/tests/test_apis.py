from decimal import Decimal

import pytest

from billing.models import Invoice, Order
from provisioning.models import ProvisioningRequest

pytestmark = pytest.mark.django_db

ORDER = {"plan": "bronze", "billing_cycle": "monthly", "location": "eu"}


def test_plans_are_public_with_prices_resources_and_locations(api_client, catalog):
    response = api_client.get("/api/v1/plans/")

    assert response.status_code == 200
    plans = {plan["slug"]: plan for plan in response.json()["results"]}
    assert list(plans)[:5] == ["bronze", "silver", "gold", "platinum", "diamond"]
    bronze = plans["bronze"]
    assert bronze["resources"]["memory_mb"] == 1024
    assert bronze["resources"]["cpu_percent"] == 100
    assert bronze["resources"]["disk_mb"] == 5120
    assert {p["billing_cycle"]: p["amount"] for p in bronze["prices"]} == {
        "monthly": "4.00",
        "quarterly": "11.40",
        "semiannual": "21.60",
        "annual": "40.80",
    }
    assert bronze["prices"][0]["currency"] == "USD"
    assert sorted(bronze["locations"]) == ["eu", "us"]
    assert plans["diamond"]["resources"]["memory_mb"] == 16384
    assert [a["slug"] for a in plans["starter"]["addons"]] == ["private-instance"]
    assert plans["bronze"]["addons"] == []


def test_create_order_returns_201_with_invoice(customer_api, catalog):
    response = customer_api.post("/api/v1/orders/", ORDER, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "pending"
    assert body["plan"] == "bronze"
    assert body["location"] == "eu"
    assert body["invoices"][0]["total"] == "5.50"
    assert body["invoices"][0]["status"] == "unpaid"
    assert body["deployment"]["status"] == "pending"


def test_create_order_requires_login(api_client, catalog):
    response = api_client.post("/api/v1/orders/", ORDER, format="json")
    assert response.status_code in (401, 403)
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "plan"),
        ({**ORDER, "billing_cycle": "weekly"}, "billing_cycle"),
        ({**ORDER, "location": "mars"}, "location"),
        ({**ORDER, "plan": "ghost"}, "plan"),
        ({**ORDER, "variables": {"SERVER_JARFILE": "x.exe"}}, "variables.SERVER_JARFILE"),
        ({**ORDER, "variables": ["not", "a", "dict"]}, "variables"),
        ({**ORDER, "addons": "private-instance"}, "addons"),
    ],
)
def test_invalid_order_payloads_get_400_with_field_messages(customer_api, catalog, payload, field):
    response = customer_api.post("/api/v1/orders/", payload, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["extra"]["fields"]
    assert body["extra"]["fields"][field]
    assert Order.objects.count() == 0
    assert Invoice.objects.count() == 0


def test_idempotency_key_header_prevents_duplicate_orders(customer_api, catalog):
    first = customer_api.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    second = customer_api.post("/api/v1/orders/", ORDER, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.json()["id"] == second.json()["id"]
    assert Order.objects.count() == 1


def test_orders_are_visible_to_their_owner_only(customer_api, catalog, other_customer):
    from rest_framework.test import APIClient

    order_id = customer_api.post("/api/v1/orders/", ORDER, format="json").json()["id"]
    intruder = APIClient()
    intruder.force_authenticate(other_customer)

    assert customer_api.get(f"/api/v1/orders/{order_id}/").status_code == 200
    assert customer_api.get("/api/v1/orders/").json()["count"] == 1
    denied = intruder.get(f"/api/v1/orders/{order_id}/")
    assert denied.status_code == 404
    assert denied.json() == {"message": "No such order.", "code": "not_found", "extra": {}}
    assert intruder.get("/api/v1/orders/").json()["results"] == []
    assert customer_api.get("/api/v1/orders/999999/").status_code == 404
    invoice_id = customer_api.get("/api/v1/invoices/").json()["results"][0]["id"]
    assert intruder.get(f"/api/v1/invoices/{invoice_id}/").status_code == 404
    assert intruder.post(f"/api/v1/orders/{order_id}/cancel/").status_code == 404


def test_staff_confirm_payment_via_api(customer_api, staff_api, catalog):
    order = customer_api.post("/api/v1/orders/", ORDER, format="json").json()
    invoice_id = order["invoices"][0]["id"]

    response = staff_api.post(
        f"/api/v1/invoices/{invoice_id}/confirm-payment/", {"reference": "TRX-1"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "paid"
    # Confirmed, and the saga has already taken it over.
    assert customer_api.get(f"/api/v1/orders/{order['id']}/").json()["status"] == "provisioning"
    again = staff_api.post(
        f"/api/v1/invoices/{invoice_id}/confirm-payment/", {"reference": "TRX-2"}, format="json"
    )
    assert again.status_code == 409
    assert again.json()["code"] == "already_paid"
    assert ProvisioningRequest.objects.count() == 1


def test_confirm_payment_is_staff_only_and_validates(customer_api, staff_api, catalog):
    order = customer_api.post("/api/v1/orders/", ORDER, format="json").json()
    invoice_id = order["invoices"][0]["id"]

    assert (
        customer_api.post(
            f"/api/v1/invoices/{invoice_id}/confirm-payment/", {"reference": "x"}, format="json"
        ).status_code
        == 403
    )
    missing = staff_api.post(f"/api/v1/invoices/{invoice_id}/confirm-payment/", {}, format="json")
    assert missing.status_code == 400
    assert "reference" in missing.json()["extra"]["fields"]
    assert (
        staff_api.post(
            "/api/v1/invoices/999999/confirm-payment/", {"reference": "x"}, format="json"
        ).status_code
        == 404
    )
    assert Invoice.objects.get(pk=invoice_id).status == "unpaid"


def test_cancel_pending_order_via_api(customer_api, catalog):
    order_id = customer_api.post("/api/v1/orders/", ORDER, format="json").json()["id"]
    response = customer_api.post(f"/api/v1/orders/{order_id}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert customer_api.post(f"/api/v1/orders/{order_id}/cancel/").status_code == 409


def test_malformed_json_gets_400(customer_api, catalog):
    response = customer_api.post(
        "/api/v1/orders/", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_openapi_schema_is_served(api_client):
    response = api_client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/orders/" in response.content


def test_money_is_rendered_as_exact_strings(customer_api, catalog):
    body = customer_api.post(
        "/api/v1/orders/", {**ORDER, "billing_cycle": "annual"}, format="json"
    ).json()
    assert body["invoices"][0]["total"] == str(Decimal("40.80"))


def test_order_list_queries_do_not_grow_with_orders(
    customer_api, catalog, django_assert_max_num_queries
):
    for _ in range(5):
        customer_api.post(
            "/api/v1/orders/",
            {**ORDER, "plan": "starter", "addons": ["private-instance"]},
            format="json",
        )
    with django_assert_max_num_queries(9):  # constant (with the page's COUNT); per order 11+
        response = customer_api.get("/api/v1/orders/")
    assert response.json()["count"] == 5
    assert response.json()["results"][0]["addons"] == ["private-instance"]


def test_plan_list_query_count_does_not_grow_with_plans(
    api_client, catalog, django_assert_max_num_queries
):
    # 8 for the catalog + 3 for live availability (nodes, in-flight runs, capacity holds)
    # + the page's COUNT
    with django_assert_max_num_queries(12):
        response = api_client.get("/api/v1/plans/")
    assert response.json()["count"] == 8
