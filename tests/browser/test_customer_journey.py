"""The whole customer journey in a real browser: sign up, confirm the e-mailed link, order a plan
through the form and its review, the staff confirms the payment by hand, the dashboard turns the
server active by itself (htmx polling, no reload), a power action settles, the one-time login
details are revealed, the site switches to Indonesian, and the dashboard fits a 360 px phone.

The panel is the simulator behind `responses` (the `saga` fixture); the live server runs in this
process, so its e-mails land in `mail.outbox`. The saga's steps are held back while the payment is
recorded (Celery not eager), so the dashboard is open and polling while the server is still being
set up; they then run, and the page must change on its own. On failure a full-page screenshot is
saved to $BROWSER_ARTIFACTS (default tests/browser/artifacts).
"""

import re

import pytest
from django.core import mail

from billing.models import Order
from billing.services.payments import payment_record_manual
from common.actors import Actor
from config.celery import app as celery_app
from provisioning.models import ProvisioningRun, RunStatus
from provisioning.progress import QUEUED
from provisioning.saga import engine
from provisioning.services import provisioning_retry
from servers.models import Deployment, DeploymentStatus
from tests.browser.test_responsive import ARTIFACTS, _check
from tests.support import redis_clear_own_keys

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "budi.journey@example.com"
PASSWORD = "a-long-unusual-passphrase-7"
SERVER_NAME = "Journey SMP"
WAIT = 30_000  # ms: setup polls every 3 s, power every 4 s


def _drive_to_end(run_id: int) -> ProvisioningRun:
    """Run the held-back saga steps, ignoring their countdowns, until the run is done."""
    for _ in range(60):
        run = ProvisioningRun.objects.get(pk=run_id)
        if run.status not in (RunStatus.RUNNING, RunStatus.COMPENSATING):
            return run
        ProvisioningRun.objects.filter(pk=run_id).update(next_run_at=None)
        engine.run_step(run_id)
    raise AssertionError("the provisioning run did not finish")


def _screenshot(page, name: str) -> str:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")
    shot = ARTIFACTS / f"journey-{name}.png"
    try:
        page.screenshot(path=str(shot), full_page=True)
    except Exception as exc:  # the page may be gone; the original failure matters more
        return f"(no screenshot: {type(exc).__name__})"
    return str(shot)


@pytest.fixture
def journey_page(browser, live_server, catalog):  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _sign_up_and_confirm(page) -> None:
    page.goto("/accounts/signup/")
    page.get_by_label("Full name").fill("Budi Santoso")
    page.get_by_label("Email").fill(EMAIL)
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('input[name="password_again"]').fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url("**/accounts/signup/sent/")

    (message,) = [m for m in mail.outbox if m.to == [EMAIL]]
    assert PASSWORD not in message.body
    link = re.search(r"https?://[^/\s]+(/accounts/signup/confirm/\S+/)", message.body).group(1)
    page.goto(link)
    assert page.get_by_text(EMAIL).count() >= 1
    page.locator('input[name="password"]').fill(PASSWORD)
    page.get_by_role("button", name="Confirm and log in").click()
    page.wait_for_url(re.compile(r"/$"))
    assert page.get_by_text("Welcome! Your account is ready.").count() == 1


def _order_bronze(page) -> Order:
    page.goto("/plans/bronze/order/")
    page.get_by_label("Server name").fill(SERVER_NAME)
    page.get_by_role("button", name="Review order").click()
    assert page.get_by_role("heading", name="Review your order").count() == 1
    assert page.get_by_text(SERVER_NAME).count() >= 1
    page.get_by_role("button", name="Place order and get invoice").click()
    page.wait_for_url(re.compile(r"/invoices/\d+/$"))
    order = Order.objects.get(customer__username=EMAIL)
    invoice = order.invoices.get()
    assert page.get_by_text(invoice.number).count() >= 1
    assert order.deployment.status == DeploymentStatus.PENDING
    return order


def _confirm_payment_with_the_saga_held_back(order: Order, staff, settings) -> int:
    """The staff records the payment; the saga's run is created but its steps wait."""
    settings.PROVISIONING_ENABLED = False  # the run is started by hand below, as staff would
    celery_app.conf.task_always_eager = False
    try:
        payment_record_manual(
            invoice_id=order.invoices.get().pk, reference="BANK-1", actor=Actor.staff(staff)
        )
        run = provisioning_retry(deployment_id=order.deployment_id, actor=Actor.staff(staff))
    finally:
        celery_app.conf.task_always_eager = True
        redis_clear_own_keys()  # the steps queued on the test broker are run by hand instead
    return run.pk


def test_the_whole_customer_journey(journey_page, saga, staff, settings):
    settings.PTERODACTYL_CLIENT_API_KEY = saga.sim.seed.client_api_key
    saga.panel.stats_cache_seconds = 2  # Wings' stats cache: short, so a power signal shows soon
    page = journey_page
    step = "signup"
    try:
        _sign_up_and_confirm(page)

        step = "order"
        order = _order_bronze(page)
        deployment_id = order.deployment_id

        step = "payment"
        run_id = _confirm_payment_with_the_saga_held_back(order, staff, settings)

        step = "live-dashboard"
        page.goto("/dashboard/")
        dashboard = page.locator("#live-dashboard")
        assert dashboard.get_attribute("data-polling") == "true"
        badge = page.locator(f"#server-row-{deployment_id} [data-status]")
        assert badge.get_attribute("data-status") == QUEUED  # paid, being set up
        # A reload would lose this marker: it proves the badge changed in the same document.
        page.evaluate("window.__journeyMarker = 'same-document'")
        assert _drive_to_end(run_id).status == RunStatus.SUCCEEDED
        page.wait_for_selector(f'#server-row-{deployment_id} [data-status="active"]', timeout=WAIT)
        assert page.evaluate("window.__journeyMarker") == "same-document"
        # Once nothing moves, the fragment stops asking.
        page.wait_for_selector('#live-dashboard[data-polling="false"]', timeout=WAIT)
        assert page.locator(f'#order-row-{order.pk} [data-status="ready"]').count() == 1

        step = "order-page"
        page.goto(f"/orders/{order.pk}/")
        page.wait_for_selector('#order-status[data-status="ready"]', timeout=WAIT)

        step = "power"
        page.goto(f"/servers/{deployment_id}/")
        live = page.locator("#live-server")
        state = page.locator("#power-state")
        before = state.get_attribute("data-state")
        assert before in ("running", "offline"), before
        signal, expected = ("Stop", "offline") if before == "running" else ("Start", "running")
        live.get_by_role("button", name=signal).click()
        page.wait_for_selector('#power-state[data-state="updating"]', timeout=WAIT)
        assert live.get_by_role("button", name=signal).is_disabled()
        page.wait_for_selector(f'#power-state[data-state="{expected}"]', timeout=WAIT)
        panel_server = saga.panel.servers[Deployment.objects.get(pk=deployment_id).panel_server_id]
        assert panel_server.power_state == expected

        step = "credentials"
        ready = [
            m for m in mail.outbox if m.to == [EMAIL] and "/notifications/credentials/" in m.body
        ]
        assert len(ready) == 1, [m.subject for m in mail.outbox]
        token_path = re.search(
            r"https?://[^/\s]+(/notifications/credentials/[^/\s]+/)", ready[0].body
        )
        page.goto(token_path.group(1))
        page.wait_for_url("**/notifications/credentials/")  # the token left the address bar
        page.get_by_role("button", name="Show my login details").click()
        (panel_user,) = [u for u in saga.panel.users.values() if u.email == EMAIL]
        revealed = page.locator("table.list").get_by_role("row", name=re.compile("^Password"))
        assert revealed.locator("code").inner_text() == panel_user.password
        # The e-mail names the login but never carries the password itself.
        assert panel_user.username in ready[0].body
        assert panel_user.password not in ready[0].body
        # Shown once: the link is used up.
        again = page.goto(token_path.group(1))
        assert again is not None
        assert again.status == 410
        assert page.get_by_text("already shown once").count() == 1
        assert panel_user.password not in page.content()

        step = "indonesian"
        page.goto("/dashboard/")
        page.locator("footer").get_by_role("button", name="Bahasa Indonesia").click()
        page.wait_for_selector("footer >> text=Butuh bantuan?", timeout=WAIT)
        assert page.get_by_role("heading", name="Pesanan").count() == 1
        assert page.locator("html").get_attribute("lang") == "id"

        step = "phone"
        page.set_viewport_size({"width": 360, "height": 740})
        problem = _check(page, "journey-dashboard", "/dashboard/", 360)
        assert problem is None, problem
    except BaseException as exc:
        exc.add_note(f"journey failed at {step!r}; screenshot: {_screenshot(page, step)}")
        raise
