"""Fixtures shared by every test package."""

from decimal import Decimal

import pytest
from django.http import HttpRequest
from django.test import Client
from rest_framework.test import APIClient

from billing.services.catalog import catalog_seed_default
from servers.demo import demo_servers_seed
from tests import factories


class StaffVerifiedClient(Client):
    """Django's test client, where `force_login(staff)` also passes the admin's second factor.

    The admin requires a session verified by django-otp (common.admin_site). Tests of admin
    pages are about those pages, so a force-logged-in staff user gets a confirmed TOTP device
    and a session verified by it, exactly as `django_otp.login` leaves it after a right code.
    `client.login()` (which only gains the request axes needs) and the login forms do not pass
    it: tests/test_security_auth.py uses them, and a plain `Client`, to test the enforcement.
    """

    def login(self, **credentials):
        # axes.backends.AxesStandaloneBackend refuses authenticate() without a request, and
        # Django's client.login() passes none (axes' documentation: give it one).
        credentials.setdefault("request", HttpRequest())
        return super().login(**credentials)

    def force_login(self, user, backend=None):
        super().force_login(user, backend)
        if user.is_staff:
            from django_otp import DEVICE_ID_SESSION_KEY
            from django_otp.plugins.otp_totp.models import TOTPDevice

            device, _ = TOTPDevice.objects.get_or_create(
                user=user, name="test device", defaults={"confirmed": True}
            )
            session = self.session
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
            session.save()


@pytest.fixture
def client() -> Client:
    return StaffVerifiedClient()


@pytest.fixture
def admin_client(db, admin_user) -> Client:
    client = StaffVerifiedClient()
    client.force_login(admin_user)
    return client


@pytest.fixture
def user_factory(db):
    return factories.UserFactory


@pytest.fixture
def customer(db):
    return factories.UserFactory(username="alice@example.com")


@pytest.fixture
def other_customer(db):
    return factories.UserFactory(username="mallory@example.com")


@pytest.fixture
def staff(db):
    return factories.StaffFactory(username="staff@example.com")


@pytest.fixture
def catalog(db):
    """The default demo catalog: locations eu/us, the Paper and bot eggs, all plans."""
    demo_servers_seed()
    catalog_seed_default(currency="USD")


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def customer_api(customer) -> APIClient:
    client = APIClient()
    client.force_authenticate(customer)
    return client


@pytest.fixture
def staff_api(staff) -> APIClient:
    """Staff through the API as integrations reach it: a bearer token with every scope (a
    staff password alone does not pass common.permissions.StaffSecondFactor)."""
    from common.actors import Actor
    from common.models import ApiTokenScope
    from common.tokens import api_token_create

    created = api_token_create(
        user=staff,
        name="staff test token",
        scopes=[scope.value for scope in ApiTokenScope],
        actor=Actor.system("test"),
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.plaintext}")
    return client


@pytest.fixture
def token_api(db):
    """An API client that authenticates with a real bearer token of `user` and `scopes`:
    `token_api(customer)` (read-only), `token_api(staff, "provisioning")`."""
    from common.actors import Actor
    from common.tokens import api_token_create

    def _client(user, *scopes: str) -> APIClient:
        created = api_token_create(
            user=user, name="test token", scopes=list(scopes), actor=Actor.system("test")
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {created.plaintext}")
        client.token = created.token
        return client

    return _client


@pytest.fixture
def place_order(catalog, customer):
    """Place an order through the service; defaults: Bronze monthly in eu."""
    from billing.services.orders import order_place
    from common.actors import Actor

    def _place(**overrides):
        arguments = {
            "customer": customer,
            "plan_slug": "bronze",
            "billing_cycle": "monthly",
            "location_code": "eu",
            "actor": Actor.customer(overrides.get("customer", customer)),
        }
        arguments.update(overrides)
        return order_place(**arguments)

    return _place


BRONZE_MONTHLY_TOTAL = Decimal("5.50")  # 4.00 plan + 1.50 setup fee
