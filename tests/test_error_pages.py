"""Branded error pages (templates/403.html, 404.html, 500.html, 403_csrf.html) for site paths,
the API's JSON `{message, code, extra}` for /api/ paths, through the handlers config/urls.py
names (common.api).

This module is also the URLconf of its tests: the site's own patterns and handlers, plus views
that fail on purpose.
"""

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.test import Client
from django.urls import path
from django.views.decorators.csrf import csrf_protect

from config.urls import handler400, handler403, handler404, handler500
from config.urls import urlpatterns as site_urlpatterns

SECRET_IN_EXCEPTION = "sk_live_do_not_show_this_0123456789"


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(f"database password is {SECRET_IN_EXCEPTION}")


def _forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied(f"internal reason {SECRET_IN_EXCEPTION}")


@csrf_protect
def _protected(request: HttpRequest) -> HttpResponse:
    return HttpResponse("accepted")


urlpatterns = [
    path("test-errors/boom/", _boom),
    path("api/test-errors/boom/", _boom),
    path("test-errors/forbidden/", _forbidden),
    path("api/test-errors/forbidden/", _forbidden),
    path("api/test-errors/protected/", _protected),
    *site_urlpatterns,
]
__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

pytestmark = pytest.mark.urls("tests.test_error_pages")


def _assert_branded(response, status: int, *phrases: str) -> str:
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "GameHost Portal" in html
    assert 'href="/static/css/portal.css"' in html
    assert 'class="skip-link" href="#main"' in html
    for phrase in phrases:
        assert phrase in html, phrase
    assert SECRET_IN_EXCEPTION not in html
    assert "Traceback" not in html
    return html


def _assert_json(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"message", "code", "extra"}
    assert body["code"] == code
    assert body["extra"] == {}
    assert SECRET_IN_EXCEPTION not in response.content.decode()
    return body


def test_the_site_urlconf_names_these_handlers():
    assert (handler400, handler403, handler404, handler500) == (
        "common.api.bad_request",
        "common.api.permission_denied",
        "common.api.page_not_found",
        "common.api.server_error",
    )


@pytest.mark.django_db
def test_404_is_branded_on_site_paths(client, customer):
    html = _assert_branded(client.get("/no-such-page/"), 404, "Error 404", "Page not found")
    assert 'href="/"' in html  # the plans
    assert 'href="/dashboard/"' not in html.split("<main")[1]

    client.force_login(customer)
    html = _assert_branded(client.get("/orders/999999/"), 404, "Error 404")
    assert 'href="/dashboard/"' in html.split("<main")[1]


@pytest.mark.django_db
def test_404_stays_json_under_api(client):
    body = _assert_json(client.get("/api/v1/no-such-thing/"), 404, "not_found")
    assert body["message"] == "Not found."


@pytest.mark.django_db
def test_403_is_branded_on_site_paths_and_json_under_api(client):
    _assert_branded(client.get("/test-errors/forbidden/"), 403, "Error 403", "Access denied")
    _assert_json(client.get("/api/test-errors/forbidden/"), 403, "permission_denied")


def test_500_is_branded_with_debug_off_and_no_database(settings):
    """No `db` mark: pytest-django refuses every query here, so the page is proven to render
    with no database (and no request context: it shows the portal name from settings)."""
    settings.DEBUG = False
    settings.PORTAL_NAME = "GameHost Portal"
    client = Client(raise_request_exception=False)
    html = _assert_branded(
        client.get("/test-errors/boom/"), 500, "Error 500", "Something went wrong"
    )
    assert "support@example.com" in html


def test_500_stays_json_under_api(settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    body = _assert_json(client.get("/api/test-errors/boom/"), 500, "error")
    assert body["message"] == "A server error occurred."


def test_500_template_renders_from_settings_alone():
    html = loader.get_template("500.html").render(
        {"PORTAL_NAME": "Acme Hosting", "SUPPORT_EMAIL": "help@acme.test"}
    )
    assert "<title>Something went wrong · Acme Hosting</title>" in html
    assert 'href="mailto:help@acme.test"' in html


@pytest.mark.django_db
def test_csrf_failure_is_branded(customer):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "alice@example.com", "password": "x"})
    html = _assert_branded(response, 403, "Your form expired", "Nothing was changed.")
    assert "CSRF cookie not set" not in html  # Django's reason is logged, not shown


@pytest.mark.django_db
def test_csrf_failure_is_json_under_api():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/api/test-errors/protected/", {})
    _assert_json(response, 403, "permission_denied")
