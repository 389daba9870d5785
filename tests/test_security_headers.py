"""Content-Security-Policy on every page, `no-store` on private ones, no inline script anywhere.

The portal has no inline script or style: the policy allows our own files (and nonces) only.
The HTML checks render real pages (portal and the whole admin) and read every template file, so
a new inline `<script>`, `onclick=` or `style=` fails here before a browser would block it.
"""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse

from common.middleware import ContentSecurityPolicyMiddleware

pytestmark = pytest.mark.django_db

CSP = "Content-Security-Policy"


def directives(response) -> dict[str, list[str]]:
    policy = response[CSP]
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_strict_policy(response) -> None:
    policy = directives(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"][0] == "'self'"
    assert all(value.startswith("'nonce-") for value in policy["script-src"][1:])
    assert "'unsafe-inline'" not in response[CSP].split("style-src-attr")[0]
    assert "'unsafe-eval'" not in response[CSP]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'", "https://checkout.stripe.com"]
    assert policy["img-src"] == ["'self'", "data:"]


def no_store(response) -> bool:
    return "no-store" in response.get("Cache-Control", "")


@pytest.fixture
def order(place_order):
    return place_order()


def private_urls(order) -> list[str]:
    return [
        reverse("dashboard"),
        reverse("profile"),
        reverse("order-detail", args=[order.pk]),
        reverse("invoice-detail", args=[order.invoices.get().pk]),
        reverse("deployment-detail", args=[order.deployment.pk]),
        reverse("order-configure", args=["bronze"]),
        reverse("notifications:credentials-reveal", args=["not-a-real-token"]),
    ]


# --- The policy ---------------------------------------------------------------------------------


def test_public_page_has_the_strict_policy_and_may_be_cached(client, catalog):
    response = client.get(reverse("plan-list"))

    assert response.status_code == 200
    assert_strict_policy(response)
    assert not no_store(response)


def test_private_pages_have_the_policy_and_no_store(client, customer, order):
    client.force_login(customer)
    for url in private_urls(order):
        response = client.get(url)
        assert response.status_code in (200, 404), url  # 404: the made-up reveal token
        assert_strict_policy(response)
        assert no_store(response), url


def test_public_page_is_no_store_for_a_logged_in_user(client, customer, catalog):
    # The header shows who is logged in (and links to their dashboard).
    client.force_login(customer)
    response = client.get(reverse("plan-list"))

    assert no_store(response)


def test_anonymous_private_and_auth_pages_are_no_store(client, catalog):
    for url in (reverse("dashboard"), reverse("login"), reverse("admin:login"), "/no-such/"):
        response = client.get(url)
        assert no_store(response), url
        assert CSP in response, url


def test_admin_pages_have_the_policy_and_no_store(admin_client, order):
    for url in (
        reverse("admin:index"),
        reverse("admin:billing_order_changelist"),
        reverse("admin:billing_order_change", args=[order.pk]),
    ):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert_strict_policy(response)
        assert "style-src-attr" not in response[CSP]
        assert no_store(response), url


def test_notification_preview_alone_may_use_inline_style_attributes(admin_client):
    # Its srcdoc frame shows e-mail HTML (style attributes only) and inherits the page's policy.
    url = reverse(
        "admin:notifications_notificationtemplate_default_preview",
        args=["server_ready", "en", "email"],
    )
    response = admin_client.get(url)

    assert response.status_code == 200
    assert directives(response)["style-src-attr"] == ["'unsafe-inline'"]
    assert_strict_policy(response)  # scripts as strict as anywhere else
    assert "sandbox" in response.content.decode()


def test_a_page_that_uses_the_nonce_gets_it_in_the_policy():
    request = RequestFactory().get("/")
    middleware = ContentSecurityPolicyMiddleware(
        lambda request: HttpResponse(f'<script nonce="{request.csp_nonce}">1</script>')
    )
    middleware.process_request(request)
    response = middleware.process_response(request, middleware.get_response(request))

    nonce = re.search(r'nonce="([^"]+)"', response.content.decode()).group(1)
    assert f"'nonce-{nonce}'" in directives(response)["script-src"]
    assert f"'nonce-{nonce}'" in directives(response)["style-src"]


# --- No inline script or style in what we serve -------------------------------------------------


class InlineCodeFinder(HTMLParser):
    """Collects what a policy without 'unsafe-inline' blocks: inline scripts without our nonce,
    event-handler attributes, javascript: URLs, style attributes and <style> without nonce."""

    DATA_SCRIPT_TYPES = {"application/json", "application/ld+json", "text/template"}

    def __init__(self, nonce: str | None, *, allow_style_attributes: bool = False) -> None:
        super().__init__()
        self.nonce = nonce
        self.allow_style_attributes = allow_style_attributes
        self.problems: list[str] = []
        self._open_script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        where = f"<{tag} {' '.join(f'{k}={v!r}' for k, v in attrs)}>"
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler attribute {name}: {where}")
            if name in ("href", "src", "action", "formaction") and (
                value or ""
            ).strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL: {where}")
        if "style" in attributes and not self.allow_style_attributes:
            self.problems.append(f"style attribute: {where}")
        if tag == "script":
            self._open_script = attributes
        if tag == "style" and (self.nonce is None or attributes.get("nonce") != self.nonce):
            self.problems.append(f"<style> without the nonce: {where}")

    def handle_data(self, data: str) -> None:
        script, self._open_script = self._open_script, None
        if script is None or not data.strip() or "src" in script:
            return
        if (script.get("type") or "").lower() in self.DATA_SCRIPT_TYPES:
            return
        if self.nonce is None or script.get("nonce") != self.nonce:
            self.problems.append(f"inline <script> without the nonce: {data.strip()[:80]!r}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._open_script = None


def inline_code(response, *, allow_style_attributes: bool = False) -> list[str]:
    nonce = re.search(r"'nonce-([^']+)'", response.get(CSP, ""))
    finder = InlineCodeFinder(
        nonce.group(1) if nonce else None, allow_style_attributes=allow_style_attributes
    )
    finder.feed(response.content.decode())
    return finder.problems


def test_finder_catches_what_the_policy_blocks():
    response = HttpResponse(
        '<script>alert(1)</script><a href="javascript:x()" onclick="y()" style="color:red">'
        '<script type="application/json">{}</script><script src="/static/x.js"></script>'
    )
    problems = inline_code(response)

    assert len(problems) == 4, problems
    assert "alert(1)" in problems[0]


def test_portal_pages_have_no_inline_code(client, customer, order):
    assert inline_code(client.get(reverse("plan-list"))) == []
    client.force_login(customer)
    for url in private_urls(order):
        assert inline_code(client.get(url)) == [], url


def test_every_admin_page_has_no_inline_code(admin_client, order):
    """Changelist and add page of every registered model, and a change page."""
    checked = 0
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        for view in ("changelist", "add"):
            try:
                url = reverse(f"admin:{info[0]}_{info[1]}_{view}")
            except NoReverseMatch:
                continue
            response = admin_client.get(url)
            if view == "add" and response.status_code == 403:
                continue  # this admin allows no adding
            assert response.status_code == 200, url
            assert inline_code(response) == [], url
            checked += 1
    for url in (
        reverse("admin:index"),
        reverse("admin:billing_order_change", args=[order.pk]),
        reverse("admin:billing_invoice_change", args=[order.invoices.get().pk]),
        reverse("admin:password_change"),
    ):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert inline_code(response) == [], url
    assert checked > 20


def test_periodic_task_form_runs_its_script_from_a_file(admin_client):
    # django-celery-beat's own template has an inline script: ours loads it from static files.
    response = admin_client.get(reverse("admin:django_celery_beat_periodictask_add"))

    assert response.status_code == 200
    assert "js/admin/periodic_task_crontab.js" in response.content.decode()
    assert inline_code(response) == []


def test_notification_preview_has_no_inline_code_but_email_styles(admin_client):
    url = reverse(
        "admin:notifications_notificationtemplate_default_preview",
        args=["server_ready", "en", "email"],
    )
    response = admin_client.get(url)

    assert inline_code(response, allow_style_attributes=True) == []
    page = response.content.decode()
    assert "notification-preview-html" in page
    # The whole e-mail is inside the srcdoc attribute, escaped: none of it is markup of the
    # admin page itself (the unescaped HTML ended the attribute at its first quote).
    srcdoc = re.search(r'srcdoc="([^"]*)"', page).group(1)
    assert srcdoc.startswith("&lt;!doctype html&gt;")
    assert srcdoc.rstrip().endswith("&lt;/html&gt;")
    assert 'role="presentation"' not in page


# E-mail bodies are sent, not served: they need inline styles, and the admin shows them only in a
# sandboxed frame (see above). Everything else in templates/ is a page.
EMAIL_TEMPLATES = re.compile(r"^notifications/(?!pages/|admin/)")
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\b(?:src|nonce)=)(?![^>]*application/json)[^>]*>")
EVENT_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"<[a-z][^>]*\sstyle\s*=", re.IGNORECASE)
STYLE_ELEMENT = re.compile(r"<style(?![^>]*\bnonce=)[^>]*>", re.IGNORECASE)


def test_no_template_has_inline_script_or_style_without_nonce():
    """Pages whose view nobody renders in a test yet (new 2FA pages, say) are checked here."""
    root = Path(settings.BASE_DIR) / "templates"
    problems = []
    for path in sorted(root.rglob("*.html")):
        name = path.relative_to(root).as_posix()
        if EMAIL_TEMPLATES.match(name):
            continue
        source = path.read_text()
        for pattern in (INLINE_SCRIPT, EVENT_HANDLER, STYLE_ATTRIBUTE, STYLE_ELEMENT):
            problems += [f"{name}: {match.group(0)}" for match in pattern.finditer(source)]

    assert problems == [], 'use a static file, or nonce="{{ request.csp_nonce }}"'
