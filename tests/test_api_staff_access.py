"""Staff through the API get no more than the admin gives them: the second factor first (a
staff password alone mints no token and opens no staff route), the model permissions the
admin's actions need, and the list's filters when dismissing failed runs."""

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from common.actors import Actor
from common.models import ApiToken
from conftest import StaffVerifiedClient
from provisioning.models import ProvisioningRequest, ProvisioningRun, RunStatus
from servers.capacity import capacity_hold_keep_upgrade, capacity_holds_release_expired
from servers.models import CapacityHold
from tests import factories

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"  # tests.factories.UserFactory's
TOKEN = re.compile(r"gsp_[0-9a-f]{8}_[A-Za-z0-9_-]+")


def failed_run(deployment) -> ProvisioningRun:
    request, _ = ProvisioningRequest.objects.get_or_create(
        deployment=deployment,
        defaults={"order_reference": f"Order #{deployment.order.pk}", "requested_by": "test"},
    )
    now = timezone.now()
    return ProvisioningRun.objects.create(
        request=request,
        deployment=deployment,
        status=RunStatus.FAILED,
        step_index=2,
        started_at=now - dt.timedelta(minutes=5),
        deadline_at=now + dt.timedelta(hours=1),
        finished_at=now,
        triggered_by="test",
    )


def password_only_session(user) -> Client:
    client = Client()
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 302  # the admin still wants the second factor
    return client


def test_a_staff_password_alone_mints_no_token(staff):
    client = password_only_session(staff)

    page = client.get(reverse("account-tokens")).content.decode()
    assert 'id="token-second-factor"' in page
    assert 'id="token-form"' not in page
    response = client.post(
        reverse("account-tokens"),
        {"name": "x", "access": "write", "staff_scopes": ["provisioning"], "expires_in": "never"},
    )

    assert response.status_code == 302
    assert not TOKEN.search(client.get(reverse("account-tokens")).content.decode())
    assert not ApiToken.objects.exists()


def test_a_verified_staff_session_mints_staff_tokens(staff):
    client = StaffVerifiedClient()
    client.force_login(staff)

    page = client.post(
        reverse("account-tokens"),
        {"name": "ops", "access": "read", "staff_scopes": ["provisioning"], "expires_in": "30"},
    )

    assert TOKEN.search(page.content.decode())
    assert ApiToken.objects.get().scopes == ["provisioning", "read"]


def test_staff_routes_need_a_token_or_a_verified_session(staff, place_order):
    failed_run(place_order().deployment)
    tasks = "/api/v1/provisioning/tasks/"

    session = password_only_session(staff)
    refused = session.get(tasks)
    assert refused.status_code == 403
    assert "second factor" in refused.json()["message"]
    # Every customer's orders are staff data too: not through a staff password alone.
    assert session.get("/api/v1/orders/").status_code == 403
    verified = StaffVerifiedClient()
    verified.force_login(staff)
    assert verified.get(tasks).status_code == 200


def test_customers_are_not_concerned_by_the_second_factor(customer):
    assert password_only_session(customer).get("/api/v1/orders/").status_code == 200


def test_staff_without_the_admins_permission_are_refused(token_api, place_order, customer):
    support = factories.StaffFactory(username="support@example.com", is_superuser=False)
    deployment = place_order().deployment
    api = token_api(support, "provisioning", "billing")

    for path, body in (
        (f"/api/v1/servers/{deployment.pk}/terminate/", {"reason": "x"}),
        (f"/api/v1/servers/{deployment.pk}/change-plan/", {"plan": "silver"}),
        ("/api/v1/provisioning/provision/", {"order_id": deployment.order.pk}),
    ):
        response = api.post(path, body, format="json")
        assert response.status_code == 403, path
        assert "lacks the permission" in response.json()["message"]
    assert api.get("/api/v1/provisioning/tasks/").status_code == 403
    # Without the view permission staff see only their own orders (none), not every customer's.
    assert api.get("/api/v1/orders/").json()["count"] == 0


def test_dismissing_follows_the_lists_filters(token_api, staff, place_order, other_customer):
    mine = failed_run(place_order().deployment)
    other = failed_run(place_order(customer=other_customer).deployment)
    api = token_api(staff, "provisioning")
    query = f"?customer={mine.deployment.customer_id}"

    listed = api.get(f"/api/v1/provisioning/failed/{query}").json()
    assert [row["id"] for row in listed["results"]] == [mine.pk]
    assert api.delete(f"/api/v1/provisioning/failed/{query}").json() == {"dismissed": 1}

    other.refresh_from_db()
    assert other.dismissed_at is None
    assert api.get("/api/v1/provisioning/failed/").json()["count"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/provisioning/tasks/?customer=%C2%B2",  # "²": str.isdigit(), but not int()
        "/api/v1/provisioning/tasks/?node=%C2%B2",
        "/api/v1/servers/?customer=%C2%B2",
        "/api/v1/orders/?customer=%C2%B2",
    ],
)
def test_unicode_digits_in_filters_are_no_500(token_api, staff, path):
    api = token_api(staff)
    api.raise_request_exception = False
    response = api.get(path)
    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_unicode_digit_step_is_a_field_error(token_api, staff, place_order):
    run = failed_run(place_order().deployment)
    api = token_api(staff, "provisioning")
    api.raise_request_exception = False
    response = api.post(f"/api/v1/provisioning/retry/{run.pk}/", {"from_step": "²"}, format="json")
    assert response.status_code == 400
    assert "from_step" in response.json()["extra"]["fields"]


def test_paying_an_upgrade_revives_no_hold_taken_before_it(place_order):
    deployment = place_order().deployment
    hold = CapacityHold.objects.get(deployment=deployment)  # the checkout's
    CapacityHold.objects.filter(pk=hold.pk).update(
        expires_at=timezone.now() - dt.timedelta(minutes=1)
    )
    capacity_holds_release_expired()

    kept = capacity_hold_keep_upgrade(
        deployment_id=deployment.pk, requested_at=timezone.now(), actor=Actor.system("test")
    )

    assert kept is False
    hold.refresh_from_db()
    assert hold.released_at is not None
