"""The API's lists: one paginated envelope, filters (status, dates, plan, staff's customer),
a constant number of queries per page, and their OpenAPI description (common.openapi)."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from billing.models import Invoice, Order

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders(place_order, customer, other_customer):
    """Three of the customer's orders (bronze, silver, cancelled gold) and one of another's."""
    from billing.services.orders import order_cancel
    from common.actors import Actor

    bronze = place_order()
    silver = place_order(plan_slug="silver")
    gold = place_order(plan_slug="gold")
    order_cancel(order_id=gold.pk, actor=Actor.system("test"), reason="test")
    theirs = place_order(customer=other_customer)
    return {"bronze": bronze, "silver": silver, "gold": gold, "theirs": theirs}


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_order_list_is_a_page_newest_first(customer_api, orders):
    body = customer_api.get("/api/v1/orders/?page_size=2").json()

    assert body["count"] == 3
    assert [row["id"] for row in body["results"]] == [orders["gold"].pk, orders["silver"].pk]
    assert body["previous"] is None
    assert body["next"].endswith("/api/v1/orders/?page=2&page_size=2")
    second = customer_api.get(body["next"])
    assert _ids(second) == [orders["bronze"].pk]
    assert second.json()["next"] is None


def test_a_page_past_the_end_is_404_in_the_error_shape(customer_api, orders):
    response = customer_api.get("/api/v1/orders/?page=9")

    assert response.status_code == 404
    assert set(response.json()) == {"message", "code", "extra"}
    assert response.json()["code"] == "not_found"


def test_order_filters_status_plan_and_dates(customer_api, orders):
    Order.objects.filter(pk=orders["bronze"].pk).update(
        created_at=timezone.now() - dt.timedelta(days=10)
    )
    week_ago = (timezone.now() - dt.timedelta(days=7)).isoformat()

    assert _ids(customer_api.get("/api/v1/orders/?status=cancelled")) == [orders["gold"].pk]
    assert _ids(customer_api.get("/api/v1/orders/?plan=silver")) == [orders["silver"].pk]
    assert _ids(customer_api.get("/api/v1/orders/", {"created_before": week_ago})) == [
        orders["bronze"].pk
    ]
    assert _ids(customer_api.get("/api/v1/orders/", {"created_after": week_ago})) == [
        orders["gold"].pk,
        orders["silver"].pk,
    ]
    assert _ids(customer_api.get("/api/v1/orders/?status=pending&plan=gold")) == []


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=lost", "status"), ("created_after=yesterday", "created_after")],
)
def test_an_invalid_filter_is_400_with_field_messages(customer_api, orders, query, field):
    response = customer_api.get(f"/api/v1/orders/?{query}")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["extra"]["fields"]) == [field]
    assert body["extra"]["fields"][field]


def test_staff_list_every_customers_orders_and_narrow_by_id_or_email(
    staff_api, orders, customer, other_customer
):
    everyone = _ids(staff_api.get("/api/v1/orders/"))
    by_id = _ids(staff_api.get(f"/api/v1/orders/?customer={other_customer.pk}"))
    by_email = _ids(staff_api.get("/api/v1/orders/", {"customer": customer.email.upper()}))

    assert everyone == [orders[k].pk for k in ("theirs", "gold", "silver", "bronze")]
    assert by_id == [orders["theirs"].pk]
    assert by_email == [orders["gold"].pk, orders["silver"].pk, orders["bronze"].pk]
    assert _ids(staff_api.get("/api/v1/orders/?customer=nobody@example.com")) == []
    assert _ids(staff_api.get(f"/api/v1/orders/?customer={2**70}")) == []
    # Staff read the orders they list.
    detail = staff_api.get(f"/api/v1/orders/{orders['theirs'].pk}/")
    assert detail.status_code == 200


def test_a_customer_cannot_widen_their_list_with_the_customer_filter(
    customer_api, orders, other_customer
):
    mine = [orders[k].pk for k in ("gold", "silver", "bronze")]

    assert _ids(customer_api.get(f"/api/v1/orders/?customer={other_customer.pk}")) == mine
    assert customer_api.get(f"/api/v1/orders/{orders['theirs'].pk}/").status_code == 404
    theirs_invoice = Invoice.objects.get(order=orders["theirs"])
    assert _ids(customer_api.get(f"/api/v1/invoices/?customer={other_customer.pk}")) == list(
        Invoice.objects.filter(customer__email="alice@example.com")
        .order_by("-issued_at", "-id")
        .values_list("pk", flat=True)
    )
    assert customer_api.get(f"/api/v1/invoices/{theirs_invoice.pk}/").status_code == 404


def test_invoice_filters(customer_api, staff_api, orders, other_customer):
    gold_invoice = Invoice.objects.get(order=orders["gold"])
    silver_invoice = Invoice.objects.get(order=orders["silver"])

    assert _ids(customer_api.get("/api/v1/invoices/?plan=silver")) == [silver_invoice.pk]
    assert _ids(customer_api.get(f"/api/v1/invoices/?order={orders['gold'].pk}")) == [
        gold_invoice.pk
    ]
    assert _ids(customer_api.get(f"/api/v1/invoices/?status={gold_invoice.status}")) == [
        gold_invoice.pk
    ]
    assert len(_ids(customer_api.get("/api/v1/invoices/?kind=new_order"))) == 3
    assert _ids(staff_api.get(f"/api/v1/invoices/?customer={other_customer.pk}")) == [
        Invoice.objects.get(order=orders["theirs"]).pk
    ]
    assert len(_ids(staff_api.get("/api/v1/invoices/"))) == 4
    bad = customer_api.get("/api/v1/invoices/?order=0")
    assert (bad.status_code, list(bad.json()["extra"]["fields"])) == (400, ["order"])


def test_catalogue_lists_are_pages_too(api_client, catalog):
    locations = api_client.get("/api/v1/locations/").json()
    plans = api_client.get("/api/v1/plans/?category=discord_bot").json()

    assert locations["count"] == 2
    assert [loc["short_code"] for loc in locations["results"]] == ["eu", "us"]
    assert set(locations["results"][0]) == {"short_code", "name"}
    assert plans["count"] >= 1
    assert {plan["category"] for plan in plans["results"]} == {"discord_bot"}
    assert api_client.get("/api/v1/plans/?category=spaceship").status_code == 400


def test_page_query_count_does_not_grow_with_rows(
    place_order, customer, customer_api, staff_api, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count(client, url: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    place_order(plan_slug="starter", addon_slugs=["private-instance"])
    staff_api.get("/api/v1/plans/")  # the token's first use records it (once a minute)
    few = {url: count(api, url) for api, url in _LIST_CALLS(customer_api, staff_api)}
    for _ in range(6):
        place_order(plan_slug="starter", addon_slugs=["private-instance"])
    many = {url: count(api, url) for api, url in _LIST_CALLS(customer_api, staff_api)}

    assert many == few
    assert max(many.values()) <= 10


def _LIST_CALLS(customer_api, staff_api):
    return [
        (customer_api, "/api/v1/orders/"),
        (staff_api, "/api/v1/orders/?status=pending"),
        (customer_api, "/api/v1/invoices/"),
        (staff_api, "/api/v1/invoices/?plan=starter"),
        (customer_api, "/api/v1/payment-methods/"),
    ]


def test_order_page_stays_within_a_fixed_query_budget(
    place_order, customer_api, django_assert_max_num_queries
):
    for _ in range(8):
        place_order(plan_slug="starter", addon_slugs=["private-instance"])
    # session/token + COUNT + page + 4 prefetches (invoices, lines, payments, add-ons)
    with django_assert_max_num_queries(9):
        response = customer_api.get("/api/v1/orders/")
    assert response.json()["count"] == 8


# ---------------------------------------------------------------------- the OpenAPI


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def test_every_operation_documents_its_errors_in_the_error_shape(schema):
    error_ref = {"$ref": "#/components/schemas/Error"}
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        assert {"401", "429"} <= set(responses), (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
        if method != "get":
            assert {"400", "403", "409"} <= set(responses), (method, path)
        for code, response in responses.items():
            if code >= "400":
                assert response["content"]["application/json"]["schema"] == error_ref, (
                    method,
                    path,
                    code,
                )
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["code", "extra", "message"]
    assert "fields" in error["properties"]["extra"]["properties"]


def test_lists_show_the_envelope_and_their_filters(schema):
    lists = {
        "/api/v1/orders/": {"status", "plan", "created_after", "created_before", "customer"},
        "/api/v1/invoices/": {"status", "plan", "created_after", "customer", "issued_after"},
        "/api/v1/servers/{deployment_id}/plan-changes/": {"status", "plan", "created_after"},
        "/api/v1/payment-methods/": set(),
        "/api/v1/plans/": {"category"},
        "/api/v1/locations/": set(),
    }
    for path, filters in lists.items():
        operation = schema["paths"][path]["get"]
        names = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
        assert {"page", "page_size", *filters} <= names, path
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        envelope = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert set(envelope["properties"]) == {"count", "next", "previous", "results"}, path
    security = schema["components"]["securitySchemes"]
    assert security["BearerToken"]["scheme"] == "bearer"
    assert security["cookieAuth"]["in"] == "cookie"


def test_the_schema_validates_without_warnings(tmp_path):
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )


def test_a_date_filter_with_an_offset_postgres_refuses_is_not_a_500(customer_api, orders):
    # Found by schemathesis: +23:00 is valid ISO 8601 for Python, out of range for PostgreSQL.
    wide = customer_api.get("/api/v1/orders/", {"created_after": "2000-01-01T00:00:00+23:00"})
    overflow = customer_api.get("/api/v1/orders/", {"created_after": "0001-01-01T00:00:00+01:00"})

    assert wide.status_code == 200
    assert wide.json()["count"] == 3
    assert overflow.status_code == 400
    assert list(overflow.json()["extra"]["fields"]) == ["created_after"]
