"""No customer page is wider than the viewport: at 360x740 (the narrowest phone we support) and at
1280 px, `document.documentElement.scrollWidth` must not exceed the viewport's width. Tables
scroll inside their own box; long names, addresses and codes wrap.

The customer has an active server (provisioned on the panel simulator), more servers, orders and
invoices with long names, so the dashboard is as wide as real data makes it. On failure a
full-page screenshot is saved to $BROWSER_ARTIFACTS (default tests/browser/artifacts, which
ignores itself in git).
"""

import os
from pathlib import Path

import pytest

from billing.services.payments import payment_record_manual
from common.actors import Actor
from servers.models import DeploymentStatus

pytestmark = pytest.mark.django_db(transaction=True)

ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", Path(__file__).parent / "artifacts"))
LONG_NAME = "the-extremely-long-named-survival-world-of-the-whole-family-and-friends-2026"


@pytest.fixture
def busy_customer(saga, place_order, staff, settings):  # type: ignore[no-untyped-def]
    """An active server, two pending orders (their invoices unpaid), all with long names."""
    settings.PTERODACTYL_CLIENT_API_KEY = saga.sim.seed.client_api_key
    active = place_order(server_name=LONG_NAME)
    payment_record_manual(
        invoice_id=active.invoices.get().pk, reference="R-1", actor=Actor.staff(staff)
    )
    active.deployment.refresh_from_db()
    assert active.deployment.status == DeploymentStatus.ACTIVE
    pending = [place_order(server_name=f"{LONG_NAME}-{n}", billing_cycle="monthly") for n in (2, 3)]
    return {"deployment": active.deployment, "order": active, "pending": pending}


def _pages(world: dict) -> list[tuple[str, str]]:
    deployment = world["deployment"]
    order = world["pending"][0]
    return [
        ("plans", "/"),
        ("dashboard", "/dashboard/"),
        ("order", f"/orders/{order.pk}/"),
        ("invoice", f"/invoices/{order.invoices.get().pk}/"),
        ("paid-invoice", f"/invoices/{world['order'].invoices.get().pk}/"),
        ("server", f"/servers/{deployment.pk}/"),
        ("plan-change", f"/servers/{deployment.pk}/plan/"),
        ("cancel", f"/servers/{deployment.pk}/cancel/"),
        ("order-configure", "/plans/bronze/order/"),
        ("profile", "/accounts/profile/"),
        ("credit", "/accounts/credit/"),
        ("payment-methods", "/accounts/payment-methods/"),
        ("not-found", "/no-such-page/"),
    ]


ANONYMOUS_PAGES = [("login", "/accounts/login/"), ("signup", "/accounts/signup/")]


def _check(page, name: str, url: str, width: int) -> str | None:
    """None if the page fits; else what overflowed (and a screenshot is saved)."""
    response = page.goto(url)
    assert response is not None, url
    assert response.status in (200, 404), (url, response.status)
    page.wait_for_load_state("load")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    if scroll_width <= width:
        return None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")
    shot = ARTIFACTS / f"responsive-{width}-{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    culprits = page.evaluate(
        """(width) => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > width + 1)
            .slice(0, 5).map(e => e.tagName + '.' + e.className)""",
        width,
    )
    return f"{name} ({url}) is {scroll_width}px wide at {width}px: {culprits}; see {shot}"


@pytest.mark.parametrize(("width", "height"), [(360, 740), (1280, 800)])
def test_customer_pages_fit_the_viewport(logged_in_page, busy_customer, width, height):
    page = logged_in_page
    page.set_viewport_size({"width": width, "height": height})
    problems = [_check(page, name, url, width) for name, url in _pages(busy_customer)]
    # The dashboard really has the long rows this test is about.
    page.goto("/dashboard/")
    assert page.get_by_text(LONG_NAME, exact=True).count() == 1
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("width", "height"), [(360, 740), (1280, 800)])
def test_anonymous_pages_fit_the_viewport(browser, live_server, catalog, width, height):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": height}
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        problems = [_check(page, name, url, width) for name, url in ANONYMOUS_PAGES]
        problems.append(_check(page, "plans", "/", width))
    finally:
        context.close()
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_page_wider_than_the_viewport(browser, live_server):
    """The measurement itself: a page the stylesheet cannot save (a fixed 600 px box) fails."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 360, "height": 740})
    page = context.new_page()
    try:
        page.set_content('<div style="width:600px">wide</div>')
        assert page.evaluate("document.documentElement.scrollWidth") > 360
    finally:
        context.close()
