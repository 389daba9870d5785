"""The dashboard's API token pages: create (the token is shown once), list, revoke."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from common.actors import Actor
from common.models import ApiToken
from common.tokens import api_token_create
from tests.test_form_accessibility import assert_accessible
from tests.test_security_headers import assert_strict_policy, inline_code

pytestmark = pytest.mark.django_db

TOKENS = "/accounts/tokens/"
PLAINTEXT = re.compile(r"gsp_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}")


def _bearer(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def _create(client, **data) -> tuple[object, str]:
    response = client.post(
        TOKENS, {"name": "backup script", "access": "read", "expires_in": "90", **data}
    )
    assert response.status_code == 200
    found = PLAINTEXT.findall(response.content.decode())
    return response, found[0] if found else ""


def test_the_page_is_linked_from_the_nav_and_the_profile(client, customer):
    client.force_login(customer)
    assert reverse("account-tokens") == TOKENS
    profile = client.get(reverse("profile")).content.decode()
    assert profile.count(f'href="{TOKENS}"') == 2  # the nav and the profile's section
    page = client.get(TOKENS)
    assert page.status_code == 200
    assert "No tokens yet." in page.content.decode()
    assert_accessible(page.content.decode())
    assert inline_code(page) == []
    assert "no-store" in page["Cache-Control"]


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(TOKENS)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert client.post(TOKENS, {"name": "x", "access": "read", "expires_in": "30"}).status_code == (
        302
    )
    assert not ApiToken.objects.exists()


def test_a_read_only_token_is_shown_once_and_reads_the_api(client, customer, catalog):
    client.force_login(customer)
    before = timezone.now()

    response, plaintext = _create(client)

    assert plaintext, "the new token is in the page"
    html = response.content.decode()
    assert html.count(plaintext) == 1
    assert "it will not be shown again" in html
    assert "no-store" in response["Cache-Control"]
    assert_strict_policy(response)
    assert inline_code(response) == []
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.scopes) == (customer, "backup script", ["read"])
    assert token.created_by == "customer:alice@example.com"
    assert before + dt.timedelta(days=90) <= token.expires_at
    assert token.expires_at <= timezone.now() + dt.timedelta(days=90)
    # the token is nowhere but in that response: not in the session, the messages, a cookie
    session = client.session
    assert plaintext not in str(dict(session.items()))
    assert all(plaintext not in morsel.value for morsel in client.cookies.values())

    listing = client.get(TOKENS)
    listed = listing.content.decode()
    assert plaintext not in listed
    assert not PLAINTEXT.search(listed)
    assert f"gsp_{token.prefix}…" in listed
    assert "backup script" in listed
    assert "Not used yet" in listed
    assert 'class="status active"' in listed

    api = _bearer(plaintext)
    assert api.get("/api/v1/orders/").status_code == 200
    # read only: writing is refused for the scope, not for the login
    created = api.post(
        "/api/v1/orders/",
        {"plan": "bronze", "billing_cycle": "monthly", "location": "eu"},
        format="json",
    )
    assert created.status_code == 403
    token.refresh_from_db()
    assert token.last_used_at is not None
    used = client.get(TOKENS).content.decode()
    assert "127.0.0.1" in used
    assert "Not used yet" not in used


def test_read_and_write_and_never_expiring(client, customer):
    client.force_login(customer)
    _response, plaintext = _create(client, access="write", expires_in="never")
    assert plaintext
    token = ApiToken.objects.get()
    assert token.scopes == ["read", "write"]
    assert token.expires_at is None


def test_revoking_asks_first_then_the_token_is_refused(client, customer, catalog):
    client.force_login(customer)
    _response, plaintext = _create(client)
    token = ApiToken.objects.get()
    url = reverse("account-token-revoke", args=[token.pk])
    assert client.get(TOKENS).content.decode().count(f'href="{url}"') == 1

    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "backup script" in confirm.content.decode()
    assert inline_code(confirm) == []
    assert ApiToken.objects.get().revoked_at is None  # asking revokes nothing

    response = client.post(url, follow=True)

    assert response.redirect_chain == [(TOKENS, 302)]
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert token.revoked_by == "customer:alice@example.com"
    html = response.content.decode()
    assert "is revoked" in html
    assert 'class="status cancelled">Revoked' in html
    assert f'href="{url}"' not in html
    assert _bearer(plaintext).get("/api/v1/orders/").status_code == 401
    again = client.get(url).content.decode()
    assert "This token was revoked on" in again
    assert 'method="post"' not in again.split("<main")[1].split("</main>")[0]
    # revoking again changes nothing
    first = token.revoked_at
    assert client.post(url).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at == first


def test_another_customers_token_is_404_and_stays_live(client, customer, other_customer):
    theirs = api_token_create(
        user=other_customer, name="theirs", scopes=[], actor=Actor.customer(other_customer)
    )
    client.force_login(customer)
    url = reverse("account-token-revoke", args=[theirs.token.pk])

    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    assert client.post(reverse("account-token-revoke", args=[999999])).status_code == 404

    theirs.token.refresh_from_db()
    assert theirs.token.revoked_at is None
    assert "theirs" not in client.get(TOKENS).content.decode()


def test_an_expired_token_is_listed_as_expired(client, customer):
    created = api_token_create(
        user=customer,
        name="old",
        scopes=[],
        actor=Actor.customer(customer),
        expires_at=timezone.now() + dt.timedelta(seconds=1),
    )
    ApiToken.objects.filter(pk=created.token.pk).update(
        expires_at=timezone.now() - dt.timedelta(days=1)
    )
    client.force_login(customer)
    html = client.get(TOKENS).content.decode()
    assert 'class="status offline">Expired' in html
    assert reverse("account-token-revoke", args=[created.token.pk]) not in html


def test_customers_see_no_staff_scopes_and_posting_one_is_a_form_error(client, customer):
    client.force_login(customer)
    page = client.get(TOKENS).content.decode()
    assert 'name="staff_scopes"' not in page
    assert "Provisioning:" not in page

    response, plaintext = _create(client, staff_scopes=["provisioning"])

    assert plaintext == ""
    assert not ApiToken.objects.exists()
    html = response.content.decode()
    assert "Provisioning and billing scopes are for staff accounts only." in html
    assert 'role="alert"' in html


def test_a_missing_name_is_a_field_error(client, customer):
    client.force_login(customer)
    response, plaintext = _create(client, name="")
    assert plaintext == ""
    assert not ApiToken.objects.exists()
    assert_accessible(response.content.decode(), errors={"name": "This field is required."})


def test_the_token_limit_is_a_form_error(client, customer, settings):
    from common.tokens import MAX_ACTIVE_TOKENS_PER_USER

    for n in range(MAX_ACTIVE_TOKENS_PER_USER):
        api_token_create(user=customer, name=f"t{n}", scopes=[], actor=Actor.system("test"))
    client.force_login(customer)
    response, plaintext = _create(client)
    assert plaintext == ""
    assert "revoke one first" in response.content.decode()
    assert ApiToken.objects.count() == MAX_ACTIVE_TOKENS_PER_USER


def test_staff_see_and_get_the_staff_scopes(client, staff):
    client.force_login(staff)
    page = client.get(TOKENS)
    assert_accessible(page.content.decode())
    html = page.content.decode()
    assert 'name="staff_scopes" value="provisioning"' in html
    assert 'name="staff_scopes" value="billing"' in html

    _response, plaintext = _create(client, staff_scopes=["provisioning", "billing"])

    assert plaintext
    token = ApiToken.objects.get()
    assert token.scopes == ["billing", "provisioning", "read"]
    assert token.created_by == "staff:staff@example.com"


def test_create_and_revoke_need_csrf(customer):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    response = client.post(TOKENS, {"name": "x", "access": "read", "expires_in": "30"})
    assert response.status_code == 403
    assert not ApiToken.objects.exists()

    created = api_token_create(user=customer, name="x", scopes=[], actor=Actor.system("test"))
    url = reverse("account-token-revoke", args=[created.token.pk])
    assert client.post(url).status_code == 403
    created.token.refresh_from_db()
    assert created.token.revoked_at is None
