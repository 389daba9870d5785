"""API tokens: stored hashed, shown once, scoped, revocable, expiring, last use, throttled."""

import datetime as dt
import hashlib

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from billing.models import Invoice, InvoiceStatus
from common.actors import Actor
from common.errors import ApplicationError, NotFoundError
from common.models import ApiToken
from common.permissions import TokenScopes
from common.throttling import TokenRateThrottle
from common.tokens import MAX_ACTIVE_TOKENS_PER_USER, api_token_create, api_token_revoke

pytestmark = pytest.mark.django_db

ORDER = {"plan": "bronze", "billing_cycle": "monthly", "location": "eu"}


def _bearer(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def test_a_token_is_stored_as_a_digest_and_authenticates_as_its_user(customer, catalog):
    created = api_token_create(
        user=customer, name="my script", scopes=["write"], actor=Actor.customer(customer)
    )

    row = ApiToken.objects.get()
    assert created.plaintext.startswith(f"gsp_{row.prefix}_")
    assert row.digest == hashlib.sha256(created.plaintext.encode()).hexdigest()
    assert created.plaintext not in str(ApiToken.objects.values_list().get())  # nowhere on the row
    assert row.scopes == ["read", "write"]
    assert row.created_by == "customer:alice@example.com"
    assert row.last_used_at is None

    response = _bearer(created.plaintext).post("/api/v1/orders/", ORDER, format="json")

    assert response.status_code == 201, response.json()
    row.refresh_from_db()
    assert row.last_used_at is not None
    assert row.last_used_ip == "127.0.0.1"


def test_last_use_is_written_at_most_once_a_minute(customer, catalog, django_assert_num_queries):
    created = api_token_create(user=customer, name="x", scopes=[], actor=Actor.system("t"))
    client = _bearer(created.plaintext)
    client.get("/api/v1/orders/")
    first = ApiToken.objects.get().last_used_at

    client.get("/api/v1/orders/")

    assert ApiToken.objects.get().last_used_at == first


@pytest.mark.parametrize(
    "header",
    [
        "Bearer gsp_00000000_nope",
        "Bearer not-a-token",
        "Bearer",
        "Bearer a b",
        "Bearer gsp_",
    ],
)
def test_a_wrong_token_is_401_with_a_bearer_challenge(customer, catalog, header, caplog):
    api_token_create(user=customer, name="x", scopes=[], actor=Actor.system("t"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/orders/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert set(response.json()) == {"message", "code", "extra"}


def test_a_token_with_a_right_prefix_and_wrong_secret_is_refused(customer, catalog, caplog):
    created = api_token_create(user=customer, name="x", scopes=[], actor=Actor.system("t"))
    forged = created.plaintext[:-4] + ("aaaa" if not created.plaintext.endswith("aaaa") else "bbbb")

    response = _bearer(forged).get("/api/v1/orders/")

    assert response.status_code == 401
    assert forged not in caplog.text
    assert created.plaintext not in caplog.text


def test_a_foreign_secret_sent_as_a_token_is_not_logged_even_in_part(customer, catalog, caplog):
    # e.g. a Stripe key pasted by mistake: nothing of it may reach the log.
    foreign = "sk_live_51HsecretPartOfAKey0123456789"

    assert _bearer(foreign).get("/api/v1/orders/").status_code == 401

    assert "(not a portal token)" in caplog.text
    assert foreign[:6] not in caplog.text
    # Ours: only the public prefix.
    created = api_token_create(user=customer, name="x", scopes=[], actor=Actor.system("t"))
    api_token_revoke(token_id=created.token.pk, actor=Actor.system("t"))
    caplog.clear()
    assert _bearer(created.plaintext).get("/api/v1/orders/").status_code == 401
    assert f"gsp_{created.token.prefix}…" in caplog.text
    assert created.plaintext[len("gsp_") + 9 :] not in caplog.text


def test_revoked_and_expired_tokens_stop_working(customer, catalog, time_machine):
    revoked = api_token_create(user=customer, name="a", scopes=[], actor=Actor.system("t"))
    expiring = api_token_create(
        user=customer,
        name="b",
        scopes=[],
        actor=Actor.system("t"),
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    assert _bearer(revoked.plaintext).get("/api/v1/orders/").status_code == 200

    api_token_revoke(token_id=revoked.token.pk, actor=Actor.customer(customer), owner=customer)
    time_machine.move_to(timezone.now() + dt.timedelta(days=2))

    assert _bearer(revoked.plaintext).get("/api/v1/orders/").status_code == 401
    assert _bearer(expiring.plaintext).get("/api/v1/orders/").status_code == 401
    revoked.token.refresh_from_db()
    assert revoked.token.revoked_by == "customer:alice@example.com"


def test_a_customer_cannot_revoke_another_accounts_token(customer, other_customer):
    theirs = api_token_create(user=other_customer, name="x", scopes=[], actor=Actor.system("t"))

    with pytest.raises(NotFoundError):
        api_token_revoke(token_id=theirs.token.pk, actor=Actor.customer(customer), owner=customer)

    theirs.token.refresh_from_db()
    assert theirs.token.revoked_at is None


def test_a_deactivated_users_tokens_stop_working(customer, catalog):
    created = api_token_create(user=customer, name="x", scopes=[], actor=Actor.system("t"))
    customer.is_active = False
    customer.save()

    assert _bearer(created.plaintext).get("/api/v1/orders/").status_code == 401


def test_a_read_only_token_may_read_but_not_write(token_api, customer, catalog):
    client = token_api(customer)

    assert client.get("/api/v1/orders/").status_code == 200
    response = client.post("/api/v1/orders/", ORDER, format="json")

    assert response.status_code == 403
    assert response.json()["message"] == "This token lacks the 'write' scope this call needs."


def test_customers_cannot_have_staff_scopes(customer):
    with pytest.raises(ApplicationError) as refused:
        api_token_create(
            user=customer, name="x", scopes=["provisioning"], actor=Actor.customer(customer)
        )
    assert "scopes" in refused.value.field_errors
    with pytest.raises(ApplicationError) as unknown:
        api_token_create(user=customer, name="x", scopes=["root"], actor=Actor.system("t"))
    assert unknown.value.field_errors["scopes"] == ["Unknown scope: root."]
    with pytest.raises(ApplicationError) as unnamed:
        api_token_create(user=customer, name="  ", scopes=[], actor=Actor.system("t"))
    assert "name" in unnamed.value.field_errors
    assert ApiToken.objects.count() == 0


def test_active_tokens_per_account_are_bounded(customer):
    for number in range(MAX_ACTIVE_TOKENS_PER_USER):
        api_token_create(user=customer, name=f"t{number}", scopes=[], actor=Actor.system("t"))

    with pytest.raises(ApplicationError) as refused:
        api_token_create(user=customer, name="one more", scopes=[], actor=Actor.system("t"))

    assert refused.value.code == "token_limit"
    assert ApiToken.objects.count() == MAX_ACTIVE_TOKENS_PER_USER


def test_staff_confirming_a_payment_needs_the_billing_scope(token_api, staff, place_order):
    order = place_order()
    invoice = order.invoices.get()
    url = f"/api/v1/invoices/{invoice.pk}/confirm-payment/"

    wrong = token_api(staff, "provisioning").post(url, {"reference": "BT-1"}, format="json")
    assert wrong.status_code == 403
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.UNPAID

    right = token_api(staff, "billing").post(url, {"reference": "BT-1"}, format="json")
    assert right.status_code == 200, right.json()
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PAID


def test_a_customer_token_never_reaches_a_staff_route(token_api, customer, place_order):
    invoice = place_order().invoices.get()

    response = token_api(customer, "write").post(
        f"/api/v1/invoices/{invoice.pk}/confirm-payment/", {"reference": "x"}, format="json"
    )

    assert response.status_code == 403
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.UNPAID


class _ThrottledView(APIView):
    # The suite's settings switch throttles off (config/django/test.py), and APIView reads its
    # throttle classes once at import: this view carries the production token throttle.
    throttle_classes = [TokenRateThrottle]

    def get(self, request):
        return Response({"user": request.user.pk})


def test_each_token_is_throttled_on_its_own(customer, monkeypatch):
    from django.core.cache import cache

    cache.clear()
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "2/min"})
    first = api_token_create(user=customer, name="a", scopes=[], actor=Actor.system("t"))
    second = api_token_create(user=customer, name="b", scopes=[], actor=Actor.system("t"))
    factory = APIRequestFactory()
    view = _ThrottledView.as_view()

    def call(plaintext: str) -> int:
        return view(factory.get("/", HTTP_AUTHORIZATION=f"Bearer {plaintext}")).status_code

    statuses = [call(first.plaintext) for _ in range(3)]
    other = call(second.plaintext)
    cache.clear()

    assert statuses == [200, 200, 429]
    assert other == 200


def test_production_settings_throttle_tokens():
    from config.settings.api import REST_FRAMEWORK

    assert "common.throttling.TokenRateThrottle" in REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"]
    assert REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["token"] == "300/min"


def _api_views(resolver: URLResolver | None = None, prefix: str = ""):
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _api_views(pattern, route)
        elif isinstance(pattern, URLPattern) and route.startswith("api/"):
            view = getattr(pattern.callback, "cls", None)
            if view is not None and issubclass(view, APIView):
                yield route, view


def test_every_api_route_checks_token_scopes():
    routes = list(_api_views())

    assert len(routes) >= 20
    unchecked = [route for route, view in routes if TokenScopes not in view.permission_classes]
    # The schema view is public metadata and needs no scope.
    assert unchecked == ["api/schema/"]


def test_the_openapi_schema_offers_bearer_tokens(api_client):
    schema = api_client.get("/api/schema/?format=json").json()

    assert schema["components"]["securitySchemes"]["BearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["BearerToken"]["description"],
    }
