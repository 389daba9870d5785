"""The API token admin: a list without digests, a create page that shows the token once, the
revoke action, and neither editing nor deleting."""

import re

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from common.actors import Actor
from common.models import ApiToken
from common.tokens import api_token_create
from tests.test_security_headers import inline_code

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:common_apitoken_changelist")
ADD = reverse("admin:common_apitoken_add")
PLAINTEXT = re.compile(r"gsp_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}")


def _bearer(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


def test_the_list_shows_tokens_and_never_their_digest(admin_client, customer, staff):
    mine = api_token_create(user=customer, name="cli", scopes=["write"], actor=Actor.system("t"))
    ops = api_token_create(user=staff, name="ops", scopes=["provisioning"], actor=Actor.system("t"))

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    html = response.content.decode()
    for created in (mine, ops):
        assert f"gsp_{created.token.prefix}…" in html
        assert created.token.digest not in html
        assert created.plaintext not in html
    assert "alice@example.com" in html
    assert "system:t" in html  # created_by
    detail = admin_client.get(reverse("admin:common_apitoken_change", args=[mine.token.pk]))
    assert detail.status_code == 200
    assert mine.token.digest not in detail.content.decode()
    assert 'name="digest"' not in detail.content.decode()


def test_filters_and_search(admin_client, customer, staff):
    live = api_token_create(user=customer, name="live", scopes=[], actor=Actor.system("t"))
    gone = api_token_create(user=customer, name="gone", scopes=["write"], actor=Actor.system("t"))
    ops = api_token_create(user=staff, name="ops", scopes=["billing"], actor=Actor.system("t"))
    gone.token.revoked_at, gone.token.revoked_by = ops.token.created_at, "system:t"
    gone.token.save()

    def names(query: str) -> set[str]:
        response = admin_client.get(CHANGELIST + query)
        assert response.status_code == 200
        return {t.name for t in response.context["cl"].result_list}

    assert names("?status=active") == {"live", "ops"}
    assert names("?status=revoked") == {"gone"}
    assert names("?status=expired") == set()
    assert names("?scope=write") == {"gone"}
    assert names("?scope=billing") == {"ops"}
    assert names("?user__is_staff__exact=1") == {"ops"}
    assert names("?q=alice@example") == {"live", "gone"}
    assert names(f"?q={live.token.prefix}") == {"live"}
    # a pasted token finds its row by the public prefix (the rest is not searched)
    assert names(f"?q={live.plaintext}") == {"live"}
    assert names(f"?q=gsp_{ops.token.prefix}…") == {"ops"}


def test_the_add_page_shows_the_token_once_and_it_authenticates(admin_client, staff, catalog):
    form = admin_client.get(ADD)
    assert form.status_code == 200
    assert 'name="user_login"' in form.content.decode()

    response = admin_client.post(
        ADD,
        {
            "user_login": "Staff@Example.com",
            "name": "support script",
            "scopes": ["read", "write"],
            "expires_in_days": "30",
        },
    )

    assert response.status_code == 200
    html = response.content.decode()
    found = PLAINTEXT.findall(html)
    assert len(found) == 1
    plaintext = found[0]
    assert "it will not be shown again" in html
    assert "no-store" in response["Cache-Control"]
    assert inline_code(response) == []
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.scopes) == (staff, "support script", ["read", "write"])
    assert token.created_by.startswith("staff:")
    assert token.expires_at is not None
    # not kept anywhere else: the session and the next page do not have it
    assert plaintext not in str(dict(admin_client.session.items()))
    assert plaintext not in admin_client.get(CHANGELIST).content.decode()
    assert _bearer(plaintext).get("/api/v1/orders/").status_code == 200


def test_tokens_for_customers_are_refused_on_the_form(admin_client, customer, staff):
    for scopes in (["provisioning"], ["read"]):
        response = admin_client.post(
            ADD, {"user_login": "alice@example.com", "name": "x", "scopes": scopes}
        )
        assert response.status_code == 400
        assert "a customer creates their own" in response.content.decode()
    assert not ApiToken.objects.exists()

    unknown = admin_client.post(ADD, {"user_login": "nobody@example.com", "name": "x"})
    assert unknown.status_code == 400
    assert "No account has this e-mail address" in unknown.content.decode()
    assert not ApiToken.objects.exists()

    ok = admin_client.post(
        ADD, {"user_login": "staff@example.com", "name": "ops", "scopes": ["provisioning"]}
    )
    assert ok.status_code == 200
    token = ApiToken.objects.get()
    assert (token.user, token.scopes, token.expires_at) == (staff, ["provisioning", "read"], None)


def test_the_revoke_action_revokes_the_selected_tokens(admin_client, customer, catalog):
    first = api_token_create(user=customer, name="a", scopes=[], actor=Actor.system("t"))
    second = api_token_create(user=customer, name="b", scopes=[], actor=Actor.system("t"))
    kept = api_token_create(user=customer, name="c", scopes=[], actor=Actor.system("t"))

    response = admin_client.post(
        CHANGELIST,
        {"action": "revoke_selected", "_selected_action": [first.token.pk, second.token.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "2 token(s) revoked." in response.content.decode()
    revoked = ApiToken.objects.filter(revoked_at__isnull=False)
    assert set(revoked.values_list("name", flat=True)) == {"a", "b"}
    assert {t.revoked_by for t in revoked} == {"staff:admin"}
    history = admin_client.get(reverse("admin:common_apitoken_history", args=[first.token.pk]))
    assert "Revoked." in history.content.decode()
    assert _bearer(first.plaintext).get("/api/v1/orders/").status_code == 401
    assert _bearer(kept.plaintext).get("/api/v1/orders/").status_code == 200


def test_tokens_are_neither_deleted_nor_edited(admin_client, customer):
    created = api_token_create(user=customer, name="a", scopes=[], actor=Actor.system("t"))
    token = created.token

    listing = admin_client.get(CHANGELIST)
    actions = dict(listing.context["action_form"].fields["action"].choices)
    assert "delete_selected" not in actions
    assert "revoke_selected" in actions
    delete_url = reverse("admin:common_apitoken_delete", args=[token.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    admin_client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [token.pk], "post": "yes"},
    )
    change_url = reverse("admin:common_apitoken_change", args=[token.pk])
    admin_client.post(change_url, {"name": "renamed", "prefix": "00000000", "digest": "0" * 64})

    after = ApiToken.objects.get()
    assert (after.name, after.prefix, after.digest, after.user) == (
        "a",
        token.prefix,
        token.digest,
        customer,
    )
    assert delete_url.encode() not in admin_client.get(change_url).content
