"""Saved cards and off-session charges of renewal invoices, with Stripe faked by `responses` on
its real endpoints and its webhooks signed as Stripe signs them."""

import datetime as dt
import json
import time
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import responses
import time_machine
from django.urls import reverse
from django.utils import timezone

from billing.models import (
    AutoChargeAttempt,
    AutoChargeStatus,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    Payment,
    SavedPaymentMethod,
    StripeCustomer,
    StripeEvent,
    StripeEventStatus,
)
from billing.services.autocharge import (
    autocharge_attempt_send,
    autocharge_run,
    payment_method_setup_start,
)
from billing.services.payments import payment_record_manual
from billing.services.renewals import renewals_run
from billing.stripe_client import StripeUnavailable
from billing.tests.test_stripe import post, sign
from common.actors import Actor
from config.celery import app as celery_app
from notifications.models import Delivery
from servers.models import DeploymentStatus
from tests.fleet import fleet_seed

pytestmark = pytest.mark.django_db

API = "https://api.stripe.com/v1"
FINGERPRINT = "Xt5EWLLDS7FJjR1c"  # what Stripe identifies a card by; never stored here
TODAY = dt.date(2027, 3, 10)


@pytest.fixture(autouse=True)
def _eager(settings, catalog):
    settings.BILLING_AUTOCHARGE_DAYS_BEFORE_DUE = 3
    settings.BILLING_AUTOCHARGE_RETRY_DAYS = [1, 2, 3]
    settings.PROVISIONING_ENABLED = False
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def _at(day: dt.date, hour: int = 12, minute: int = 0):
    return time_machine.travel(
        dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC), tick=False
    )


def _renewal(*, due_in: int = 3) -> Invoice:
    """An unpaid renewal invoice of a live Bronze server (4.00 USD), due `due_in` days after
    TODAY, issued by the renewal job."""
    fleet = fleet_seed(count=1, next_due_date=TODAY + dt.timedelta(days=due_in), addon_every=0)
    with _at(TODAY):
        renewals_run(today=TODAY)
    return Invoice.objects.get(kind=InvoiceKind.RENEWAL, deployment_id=fleet.deployment_ids[0])


def _card(user, *, pm: str = "pm_card_1", default: bool = True) -> SavedPaymentMethod:
    StripeCustomer.objects.get_or_create(
        customer=user, defaults={"stripe_customer_id": f"cus_{user.pk}"}
    )
    return SavedPaymentMethod.objects.create(
        customer=user,
        stripe_payment_method_id=pm,
        brand="visa",
        last4="4242",
        exp_month=8,
        exp_year=2030,
        is_default=default,
    )


def _intent(pi: str, invoice: Invoice, *, status: str = "succeeded", attempt: int = 1) -> dict:
    return {
        "id": pi,
        "object": "payment_intent",
        "amount": 400,
        "amount_received": 400 if status == "succeeded" else 0,
        "currency": "usd",
        "customer": f"cus_{invoice.customer_id}",
        "status": status,
        "metadata": {
            "invoice_id": str(invoice.pk),
            "invoice_number": invoice.number,
            "attempt": str(attempt),
        },
    }


def _declined_body(
    pi: str, invoice: Invoice, *, code="card_declined", decline="insufficient_funds"
):
    """A 402 as Stripe sends it for a refused off-session confirmation."""
    message = {
        "card_declined": "Your card has insufficient funds.",
        "authentication_required": "Your card was declined. This transaction requires "
        "authentication.",
    }[code]
    intent = _intent(pi, invoice, status="requires_payment_method")
    intent["last_payment_error"] = {"code": code, "decline_code": decline, "message": message}
    return {
        "error": {
            "code": code,
            "decline_code": decline,
            "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
            "message": message,
            "payment_intent": intent,
            "payment_method": {"id": "pm_card_1", "object": "payment_method"},
            "type": "card_error",
        }
    }


def _event(event_id: str, event_type: str, obj: dict) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": obj},
        }
    ).encode()


def _webhook(client, event_id: str, event_type: str, obj: dict) -> StripeEvent:
    payload = _event(event_id, event_type, obj)
    assert post(client, payload, sign(payload)).status_code == 200
    return StripeEvent.objects.get(event_id=event_id)


def _run(django_capture_on_commit_callbacks, *, execute: bool = True, **kwargs):
    with django_capture_on_commit_callbacks(execute=execute):
        return autocharge_run(**kwargs)


def _charge_calls() -> list:
    return [c for c in responses.calls if c.request.url == f"{API}/payment_intents"]


def _form(request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.body).items()}


# --- Saving a card ------------------------------------------------------------------------------


@responses.activate
def test_adding_a_card_creates_one_stripe_customer_and_a_setup_checkout(customer):
    customers = responses.post(f"{API}/customers", json={"id": "cus_A", "object": "customer"})
    sessions = responses.post(
        f"{API}/checkout/sessions",
        json={
            "id": "cs_setup_1",
            "object": "checkout.session",
            "url": "https://checkout.stripe.com/c/s1",
        },
    )

    first = payment_method_setup_start(customer=customer, actor=Actor.customer(customer))
    second = payment_method_setup_start(customer=customer, actor=Actor.customer(customer))

    assert first == second == "https://checkout.stripe.com/c/s1"
    assert customers.call_count == 1  # one Stripe Customer per account
    assert StripeCustomer.objects.get(customer=customer).stripe_customer_id == "cus_A"
    created = customers.calls[0].request
    assert created.headers["Idempotency-Key"] == f"portal-customer-{customer.pk}"
    assert _form(created)["metadata[portal_customer_id]"] == str(customer.pk)
    assert sessions.call_count == 2
    body = _form(sessions.calls[0].request)
    assert body["mode"] == "setup"
    assert body["customer"] == "cus_A"
    assert body["payment_method_types[0]"] == "card"
    assert body["currency"] == "usd"
    assert body["success_url"].endswith("/accounts/payment-methods/?setup=done")
    keys = {c.request.headers["Idempotency-Key"] for c in sessions.calls}
    assert len(keys) == 2  # each click is its own page, each with a key
    assert all(k.startswith(f"payment-method-setup-{customer.pk}-") for k in keys)


def _setup_responses(pm: str = "pm_card_1", customer_id: str = "cus_A") -> None:
    responses.get(
        f"{API}/setup_intents/seti_1",
        json={
            "id": "seti_1",
            "object": "setup_intent",
            "status": "succeeded",
            "customer": customer_id,
            "payment_method": pm,
        },
    )
    responses.get(
        f"{API}/payment_methods/{pm}",
        json={
            "id": pm,
            "object": "payment_method",
            "type": "card",
            "customer": customer_id,
            "card": {
                "brand": "mastercard",
                "last4": "4444",
                "exp_month": 11,
                "exp_year": 2031,
                "fingerprint": FINGERPRINT,
                "funding": "credit",
            },
        },
    )


@responses.activate
def test_setup_checkout_completion_saves_the_card_once_and_no_card_data(
    client, customer, django_capture_on_commit_callbacks
):
    StripeCustomer.objects.create(customer=customer, stripe_customer_id="cus_A")
    _setup_responses()
    session = {
        "id": "cs_setup_1",
        "object": "checkout.session",
        "mode": "setup",
        "customer": "cus_A",
        "setup_intent": "seti_1",
        "status": "complete",
        "metadata": {"portal_customer_id": str(customer.pk)},
    }
    with django_capture_on_commit_callbacks(execute=True):
        stored = _webhook(client, "evt_setup_1", "checkout.session.completed", session)
    # Stripe also sends the SetupIntent's own event for the same card: nothing new.
    intent = {
        "id": "seti_1",
        "object": "setup_intent",
        "customer": "cus_A",
        "payment_method": "pm_card_1",
        "status": "succeeded",
    }
    with django_capture_on_commit_callbacks(execute=True):
        _webhook(client, "evt_setup_2", "setup_intent.succeeded", intent)

    assert stored.status == StripeEventStatus.PROCESSED
    card = SavedPaymentMethod.objects.get()
    assert (card.customer, card.brand, card.last4, card.exp_month, card.exp_year) == (
        customer,
        "mastercard",
        "4444",
        11,
        2031,
    )
    assert card.is_default  # the first card pays the renewals
    saved = Delivery.objects.filter(event="payment_method_saved")
    assert {d.event_key for d in saved} == {f"payment_method_saved:{card.pk}"}
    assert saved.first().context["card"] == "Mastercard •••• 4444"
    # Nothing Stripe identifies the card by, and no card number, is kept anywhere of ours.
    rows = json.dumps(
        [
            list(SavedPaymentMethod.objects.values()),
            list(StripeEvent.objects.values("summary", "message")),
            list(Delivery.objects.values("context", "body")),
        ],
        default=str,
    )
    assert FINGERPRINT not in rows
    assert "5555555555554444" not in rows


@responses.activate
def test_a_second_card_is_not_the_default_and_a_stranger_setup_is_ignored(
    client, customer, django_capture_on_commit_callbacks
):
    _card(customer)
    StripeCustomer.objects.filter(customer=customer).update(stripe_customer_id="cus_A")
    _setup_responses(pm="pm_card_2")
    intent = {"id": "seti_1", "customer": "cus_A", "payment_method": "pm_card_2"}
    with django_capture_on_commit_callbacks(execute=True):
        _webhook(client, "evt_1", "setup_intent.succeeded", intent)
    stranger = {"id": "seti_9", "customer": "cus_someone_else", "payment_method": "pm_x"}
    with django_capture_on_commit_callbacks(execute=True):
        ignored = _webhook(client, "evt_2", "setup_intent.succeeded", stranger)

    second = SavedPaymentMethod.objects.get(stripe_payment_method_id="pm_card_2")
    assert not second.is_default
    assert SavedPaymentMethod.objects.get(stripe_payment_method_id="pm_card_1").is_default
    assert ignored.status == StripeEventStatus.IGNORED
    assert SavedPaymentMethod.objects.count() == 2


# --- Removing and choosing the default ---------------------------------------------------------


@responses.activate
def test_removing_a_card_detaches_it_at_stripe_and_keeps_the_row(client, customer):
    first = _card(customer)
    second = _card(customer, pm="pm_card_2", default=False)
    detach = responses.post(
        f"{API}/payment_methods/pm_card_1/detach",
        json={"id": "pm_card_1", "object": "payment_method", "customer": None},
    )
    client.force_login(customer)

    response = client.post(reverse("payment-method-remove", args=[first.pk]))

    assert response.status_code == 302
    assert detach.call_count == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.removed_at is not None
    assert not first.is_default
    assert second.is_default  # the remaining card takes over the renewals
    page = client.get(reverse("payment-methods")).content.decode()
    assert "Visa •••• 4242" in page  # the second card (same brand and digits)
    assert page.count("Remove</button>") == 1


@responses.activate
def test_someone_elses_card_cannot_be_removed_or_made_default(client, customer, other_customer):
    theirs = _card(other_customer)
    client.force_login(customer)

    assert client.post(reverse("payment-method-remove", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("payment-method-default", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("payment-method-remove", args=[theirs.pk])).status_code == 405
    theirs.refresh_from_db()
    assert theirs.is_default
    assert theirs.removed_at is None
    assert len(responses.calls) == 0


def test_make_default_moves_the_badge(client, customer):
    first = _card(customer)
    second = _card(customer, pm="pm_card_2", default=False)
    client.force_login(customer)

    client.post(reverse("payment-method-default", args=[second.pk]))

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.is_default, second.is_default) == (False, True)
    assert "Default</span>" in client.get(reverse("payment-methods")).content.decode()


@responses.activate
def test_add_a_card_page_redirects_to_stripe_and_comes_back_with_a_message(client, customer):
    responses.post(f"{API}/customers", json={"id": "cus_A", "object": "customer"})
    responses.post(
        f"{API}/checkout/sessions",
        json={"id": "cs_s", "object": "checkout.session", "url": "https://checkout.stripe.com/c/x"},
    )
    client.force_login(customer)

    response = client.post(reverse("payment-method-add"))
    back = client.get(reverse("payment-methods") + "?setup=done", follow=True)

    assert response.status_code == 302
    assert response["Location"] == "https://checkout.stripe.com/c/x"
    assert "your card is being saved" in back.content.decode()
    assert "No saved cards yet" in back.content.decode()


# --- The API ------------------------------------------------------------------------------------


@responses.activate
def test_api_lists_sets_up_defaults_and_deletes_own_cards_only(
    customer, customer_api, other_customer
):
    mine = _card(customer)
    spare = _card(customer, pm="pm_card_2", default=False)
    theirs = _card(other_customer, pm="pm_theirs")
    responses.post(
        f"{API}/checkout/sessions",
        json={"id": "cs_s", "object": "checkout.session", "url": "https://checkout.stripe.com/c/y"},
    )
    responses.post(f"{API}/payment_methods/pm_card_1/detach", json={"id": "pm_card_1"})

    listed = customer_api.get("/api/v1/payment-methods/")
    setup = customer_api.post("/api/v1/payment-methods/setup/")
    default = customer_api.post(f"/api/v1/payment-methods/{spare.pk}/default/")
    deleted = customer_api.delete(f"/api/v1/payment-methods/{mine.pk}/")
    foreign = customer_api.delete(f"/api/v1/payment-methods/{theirs.pk}/")

    assert listed.status_code == 200
    assert [c["id"] for c in listed.json()["results"]] == [mine.pk, spare.pk]
    assert listed.json()["results"][0] | {"created_at": None} == {
        "id": mine.pk,
        "label": "Visa •••• 4242",
        "brand": "visa",
        "last4": "4242",
        "exp_month": 8,
        "exp_year": 2030,
        "is_default": True,
        "created_at": None,
    }
    assert setup.json() == {"url": "https://checkout.stripe.com/c/y"}
    assert default.json()["is_default"] is True
    assert deleted.status_code == 204
    assert foreign.status_code == 404
    assert foreign.json()["code"] == "payment_method_not_found"
    remaining = customer_api.get("/api/v1/payment-methods/").json()["results"]
    assert [c["id"] for c in remaining] == [spare.pk]


# --- Charging renewals --------------------------------------------------------------------------


@responses.activate
def test_a_successful_charge_is_paid_by_its_webhook_exactly_once(
    client, django_capture_on_commit_callbacks
):
    invoice = _renewal()
    _card(invoice.customer)
    responses.post(f"{API}/payment_intents", json=_intent("pi_auto_1", invoice))

    with _at(TODAY):
        counts = _run(django_capture_on_commit_callbacks)
        again = _run(django_capture_on_commit_callbacks)  # answered, webhook not here yet

    assert (counts["due"], counts["attempts"]) == (1, 1)
    assert (again["due"], again["attempts"]) == (0, 0)
    [call] = _charge_calls()
    body = _form(call.request)
    assert call.request.headers["Idempotency-Key"] == f"autocharge-{invoice.pk}-1"
    assert (body["amount"], body["currency"], body["customer"]) == (
        "400",
        "usd",
        "cus_" + str(invoice.customer_id),
    )
    assert (body["payment_method"], body["off_session"], body["confirm"]) == (
        "pm_card_1",
        "true",
        "true",
    )
    assert (body["metadata[invoice_id]"], body["metadata[attempt]"]) == (str(invoice.pk), "1")
    attempt = AutoChargeAttempt.objects.get()
    assert (attempt.status, attempt.payment_intent_id) == (AutoChargeStatus.SUCCEEDED, "pi_auto_1")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID  # the webhook decides the money

    with django_capture_on_commit_callbacks(execute=True):
        paid = _webhook(
            client, "evt_pi_1", "payment_intent.succeeded", _intent("pi_auto_1", invoice)
        )
        _webhook(client, "evt_pi_1", "payment_intent.succeeded", _intent("pi_auto_1", invoice))
        late = _webhook(
            client, "evt_pi_2", "payment_intent.succeeded", _intent("pi_auto_1", invoice)
        )

    assert paid.status == StripeEventStatus.PROCESSED
    assert late.status == StripeEventStatus.IGNORED
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    payment = Payment.objects.get()
    assert (payment.provider, payment.reference, payment.amount) == (
        "stripe",
        "pi_auto_1",
        Decimal("4.00"),
    )
    assert invoice.deployment.next_due_date == invoice.period_end  # renewed
    assert not Delivery.objects.filter(event__in=["autocharge_failed", "payment_action_required"])


@pytest.mark.parametrize("field", [{"amount_received": 399}, {"currency": "eur"}])
@responses.activate
def test_a_charge_of_another_amount_is_not_applied_and_goes_to_staff(
    client, settings, field, django_capture_on_commit_callbacks
):
    settings.ADMINS = [("", "ops@example.com")]
    invoice = _renewal()
    _card(invoice.customer)
    responses.post(f"{API}/payment_intents", json=_intent("pi_1", invoice, status="processing"))
    with _at(TODAY):
        _run(django_capture_on_commit_callbacks)

    stored = _webhook(client, "evt_1", "payment_intent.succeeded", _intent("pi_1", invoice) | field)

    assert stored.status == StripeEventStatus.REJECTED
    assert "mismatch" in stored.message.lower()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID
    assert not Payment.objects.exists()
    assert Delivery.objects.get(event="payment_review_staff").context["reference"] == "pi_1"


@responses.activate
def test_a_concurrent_send_with_the_same_key_is_retried_not_failed(
    django_capture_on_commit_callbacks,
):
    invoice = _renewal()
    _card(invoice.customer)
    with _at(TODAY):
        _run(django_capture_on_commit_callbacks, execute=False)
    responses.post(
        f"{API}/payment_intents",
        status=409,
        json={"error": {"type": "idempotency_error", "code": "idempotency_key_in_use"}},
    )

    with pytest.raises(StripeUnavailable):
        autocharge_attempt_send(attempt_id=AutoChargeAttempt.objects.get().pk)

    assert AutoChargeAttempt.objects.get().status == AutoChargeStatus.PENDING
    assert not Delivery.objects.filter(event="autocharge_failed").exists()


@responses.activate
def test_a_webhook_for_a_checkout_payment_intent_is_left_to_the_session(client):
    invoice = _renewal()
    checkout_intent = _intent("pi_checkout", invoice)
    del checkout_intent["metadata"]["attempt"]  # Checkout's PaymentIntents carry no attempt

    stored = _webhook(client, "evt_1", "payment_intent.succeeded", checkout_intent)

    assert stored.status == StripeEventStatus.IGNORED
    assert not Payment.objects.exists()


@responses.activate
def test_a_declined_charge_changes_nothing_tells_the_customer_and_retries_on_schedule(
    client, django_capture_on_commit_callbacks
):
    invoice = _renewal()
    deployment = invoice.deployment
    due_before = deployment.next_due_date
    _card(invoice.customer)
    for n in range(1, 5):
        responses.post(
            f"{API}/payment_intents",
            status=402,
            json=_declined_body(f"pi_declined_{n}", invoice),
        )

    with _at(TODAY):
        _run(django_capture_on_commit_callbacks)
    first = AutoChargeAttempt.objects.get()
    assert (first.status, first.failure_code) == (AutoChargeStatus.DECLINED, "insufficient_funds")
    assert first.failure_message == "Your card has insufficient funds."
    assert first.payment_intent_id == "pi_declined_1"
    assert first.next_attempt_at == dt.datetime(2027, 3, 11, tzinfo=dt.UTC)  # that day
    told = Delivery.objects.get(event="autocharge_failed")
    assert told.user == invoice.customer
    assert told.context["next_attempt_date"] == "2027-03-11"
    assert told.context["invoice_url"].endswith(f"/invoices/{invoice.pk}/")
    assert told.context["reason"] == "Your card has insufficient funds."
    # Stripe's own failure event for the same charge: recorded already, told once.
    echoed = _intent("pi_declined_1", invoice, status="requires_payment_method")
    echoed["last_payment_error"] = {"code": "card_declined", "decline_code": "insufficient_funds"}
    assert (
        _webhook(client, "evt_f1", "payment_intent.payment_failed", echoed).status
        == StripeEventStatus.IGNORED
    )
    assert Delivery.objects.filter(event="autocharge_failed").count() == 1
    invoice.refresh_from_db()
    deployment.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID
    assert (deployment.status, deployment.next_due_date) == (DeploymentStatus.ACTIVE, due_before)
    assert not Payment.objects.exists()

    # Not before the retry day; then after 1, 2 and 3 more days; then never again.
    with _at(TODAY, hour=23):
        assert _run(django_capture_on_commit_callbacks)["attempts"] == 0
    schedule = [(TODAY + dt.timedelta(days=1), 2), (TODAY + dt.timedelta(days=3), 3)]
    schedule.append((TODAY + dt.timedelta(days=6), 4))
    for day, number in schedule:
        with _at(day, hour=12, minute=1):
            assert _run(django_capture_on_commit_callbacks)["attempts"] == 1
        assert AutoChargeAttempt.objects.filter(attempt_number=number).exists()
    with _at(TODAY + dt.timedelta(days=30)):
        assert _run(django_capture_on_commit_callbacks)["due"] == 0

    keys = [c.request.headers["Idempotency-Key"] for c in _charge_calls()]
    assert keys == [f"autocharge-{invoice.pk}-{n}" for n in range(1, 5)]
    last = AutoChargeAttempt.objects.get(attempt_number=4)
    assert (last.status, last.next_attempt_at) == (AutoChargeStatus.DECLINED, None)
    messages = Delivery.objects.filter(event="autocharge_failed").order_by("created_at", "pk")
    assert [m.context.get("next_attempt_date") for m in messages] == [
        "2027-03-11",
        "2027-03-13",
        "2027-03-16",
        None,  # the last one says there are no more automatic tries
    ]
    assert "will not try this card again automatically" in messages.last().body


@pytest.mark.parametrize("answer", ["402_authentication_required", "200_requires_action"])
@responses.activate
def test_a_bank_that_wants_the_customer_gets_a_link_and_no_automatic_retry(
    django_capture_on_commit_callbacks, answer
):
    invoice = _renewal()
    _card(invoice.customer)
    if answer.startswith("402"):
        responses.post(
            f"{API}/payment_intents",
            status=402,
            json=_declined_body(
                "pi_sca", invoice, code="authentication_required", decline="authentication_required"
            ),
        )
    else:
        responses.post(
            f"{API}/payment_intents", json=_intent("pi_sca", invoice, status="requires_action")
        )

    with _at(TODAY):
        _run(django_capture_on_commit_callbacks)
    for later in (1, 3, 10):
        with _at(TODAY + dt.timedelta(days=later)):
            assert _run(django_capture_on_commit_callbacks)["due"] == 0

    attempt = AutoChargeAttempt.objects.get()
    assert (attempt.status, attempt.payment_intent_id) == (
        AutoChargeStatus.REQUIRES_ACTION,
        "pi_sca",
    )
    assert attempt.next_attempt_at is None
    assert len(_charge_calls()) == 1
    told = Delivery.objects.get(event="payment_action_required")
    assert told.context["invoice_url"].endswith(f"/invoices/{invoice.pk}/")
    assert told.context["invoice_url"].startswith("http")
    assert not Delivery.objects.filter(event="autocharge_failed").exists()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID


@responses.activate
def test_an_asynchronous_failure_after_processing_is_a_decline(
    client, django_capture_on_commit_callbacks
):
    invoice = _renewal()
    _card(invoice.customer)
    responses.post(f"{API}/payment_intents", json=_intent("pi_p", invoice, status="processing"))
    with _at(TODAY):
        _run(django_capture_on_commit_callbacks)
    assert AutoChargeAttempt.objects.get().status == AutoChargeStatus.PROCESSING

    failed = _intent("pi_p", invoice, status="requires_payment_method")
    failed["last_payment_error"] = {
        "code": "card_declined",
        "decline_code": "do_not_honor",
        "message": "Your card was declined.",
    }
    stored = _webhook(client, "evt_f", "payment_intent.payment_failed", failed)

    attempt = AutoChargeAttempt.objects.get()
    assert stored.status == StripeEventStatus.PROCESSED
    assert (attempt.status, attempt.failure_code) == (AutoChargeStatus.DECLINED, "do_not_honor")
    assert attempt.next_attempt_at is not None
    assert Delivery.objects.filter(event="autocharge_failed").count() == 1


# --- Crash safety -------------------------------------------------------------------------------


@responses.activate
def test_an_attempt_left_pending_is_sent_again_with_its_own_key(
    django_capture_on_commit_callbacks,
):
    invoice = _renewal()
    _card(invoice.customer)
    responses.post(f"{API}/payment_intents", json=_intent("pi_once", invoice))

    with _at(TODAY):
        # The run commits its attempt, then dies before the send task runs.
        assert _run(django_capture_on_commit_callbacks, execute=False)["attempts"] == 1
    attempt = AutoChargeAttempt.objects.get()
    assert attempt.status == AutoChargeStatus.PENDING
    assert _charge_calls() == []
    with _at(TODAY, minute=5):  # too early: the send may still be on its way
        assert _run(django_capture_on_commit_callbacks)["resent"] == 0
    with _at(TODAY, minute=11):
        counts = _run(django_capture_on_commit_callbacks)

    assert (counts["resent"], counts["attempts"]) == (1, 0)
    assert AutoChargeAttempt.objects.get().status == AutoChargeStatus.SUCCEEDED
    assert [c.request.headers["Idempotency-Key"] for c in _charge_calls()] == [
        f"autocharge-{invoice.pk}-1"
    ]


@responses.activate
def test_stripe_unreachable_keeps_the_attempt_pending_and_the_retry_reuses_the_key(
    settings, django_capture_on_commit_callbacks
):
    invoice = _renewal()
    _card(invoice.customer)
    with _at(TODAY):
        _run(django_capture_on_commit_callbacks, execute=False)
    attempt = AutoChargeAttempt.objects.get()
    outage = responses.post(
        f"{API}/payment_intents", status=503, json={"error": {"type": "api_error"}}
    )

    with _at(TODAY, minute=1), pytest.raises(StripeUnavailable):
        autocharge_attempt_send(attempt_id=attempt.pk)

    attempt.refresh_from_db()
    assert attempt.status == AutoChargeStatus.PENDING
    assert outage.call_count >= 1
    responses.replace(responses.POST, f"{API}/payment_intents", json=_intent("pi_1", invoice))
    with _at(TODAY, minute=20):
        assert _run(django_capture_on_commit_callbacks)["resent"] == 1
    keys = {c.request.headers["Idempotency-Key"] for c in _charge_calls()}
    assert keys == {f"autocharge-{invoice.pk}-1"}
    assert AutoChargeAttempt.objects.get().status == AutoChargeStatus.SUCCEEDED


@responses.activate
def test_a_pending_attempt_for_an_invoice_paid_meanwhile_is_not_sent(
    staff, django_capture_on_commit_callbacks
):
    invoice = _renewal()
    _card(invoice.customer)
    with _at(TODAY):
        _run(django_capture_on_commit_callbacks, execute=False)
        payment_record_manual(invoice_id=invoice.pk, reference="BANK-1", actor=Actor.staff(staff))
    with _at(TODAY, minute=30):
        _run(django_capture_on_commit_callbacks)

    attempt = AutoChargeAttempt.objects.get()
    assert (attempt.status, attempt.failure_code) == (AutoChargeStatus.ERROR, "invoice_not_unpaid")
    assert _charge_calls() == []
    assert not Delivery.objects.filter(event="autocharge_failed").exists()


# --- What the job selects -----------------------------------------------------------------------


@responses.activate
def test_the_job_selects_only_what_is_due_and_the_dry_run_agrees(
    staff, django_capture_on_commit_callbacks
):
    due = [_renewal(due_in=3), _renewal(due_in=1)]
    later = _renewal(due_in=6)  # issued, but not yet in the auto-charge window
    no_card = _renewal(due_in=2)
    removed = _renewal(due_in=2)
    paid = _renewal(due_in=2)
    for invoice in (*due, later, paid):
        _card(invoice.customer, pm=f"pm_{invoice.pk}")
    _card(removed.customer, pm="pm_removed", default=False)
    SavedPaymentMethod.objects.filter(stripe_payment_method_id="pm_removed").update(
        removed_at=timezone.now()
    )
    with _at(TODAY):
        payment_record_manual(invoice_id=paid.pk, reference="BANK", actor=Actor.staff(staff))
    assert no_card.status == InvoiceStatus.UNPAID
    responses.add_callback(
        responses.POST,
        f"{API}/payment_intents",
        callback=lambda request: (
            200,
            {},
            json.dumps(
                {"id": f"pi_{_form(request)['metadata[invoice_id]']}", "status": "processing"}
            ),
        ),
    )

    with _at(TODAY):
        dry = _run(django_capture_on_commit_callbacks, dry_run=True)
        assert not AutoChargeAttempt.objects.exists()
        real = _run(django_capture_on_commit_callbacks)
        again = _run(django_capture_on_commit_callbacks)

    assert dry["due"] == real["due"] == real["attempts"] == 2
    assert again["due"] == 0
    charged = set(AutoChargeAttempt.objects.values_list("invoice_id", flat=True))
    assert charged == {invoice.pk for invoice in due}
    assert len(_charge_calls()) == 2


def test_the_job_does_nothing_without_stripe(settings, django_capture_on_commit_callbacks):
    settings.STRIPE_SECRET_KEY = ""
    invoice = _renewal()
    _card(invoice.customer)

    with _at(TODAY):
        counts = _run(django_capture_on_commit_callbacks)

    assert counts["not_configured"] == 1
    assert not AutoChargeAttempt.objects.exists()


def test_the_job_is_registered_and_scheduled():
    from django.conf import settings

    from common.jobs import job_run
    from common.services import periodic_task_table

    assert settings.FLEET_JOBS["autocharge"] == "billing.jobs.autocharge_job"
    assert periodic_task_table()["job: autocharge"][:3] == ("common.run_job", 3600, "billing")
    report = job_run(name="autocharge", dry_run=True, triggered_by="test")
    assert report.status == "succeeded", report.error
    assert report.counts == {
        "resent": 0,
        "given_up": 0,
        "due": 0,
        "attempts": 0,
        "rechecked": 0,
        "recheck_failed": 0,
    }


# --- Whose PaymentIntent (review r2) -----------------------------------------------------------


def test_a_succeeded_webhook_for_a_payment_intent_we_never_sent_pays_nothing(client, settings):
    """Metadata alone (invoice_id + attempt) does not make a PaymentIntent ours: no attempt of
    ours was sent for it, so the invoice is not paid; staff review the money."""
    settings.ADMINS = [("", "ops@example.com")]
    invoice = _renewal()
    _card(invoice.customer)

    stored = _webhook(client, "evt_u", "payment_intent.succeeded", _intent("pi_unknown", invoice))

    assert stored.status == StripeEventStatus.REJECTED
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID
    assert not Payment.objects.exists()
    assert not AutoChargeAttempt.objects.exists()
    assert Delivery.objects.get(event="payment_review_staff").context["reference"] == "pi_unknown"


@responses.activate
def test_another_customers_payment_intent_neither_pays_nor_fails_this_invoice(
    client, settings, other_customer, django_capture_on_commit_callbacks
):
    """Our attempt's answer was lost (no PaymentIntent id recorded): a PaymentIntent of another
    Stripe Customer whose metadata names this invoice and attempt is not taken for it."""
    settings.ADMINS = [("", "ops@example.com")]
    invoice = _renewal()
    _card(invoice.customer)
    _card(other_customer, pm="pm_other")
    with _at(TODAY):
        _run(django_capture_on_commit_callbacks, execute=False)  # committed, never answered
    foreign = _intent("pi_foreign", invoice) | {"customer": f"cus_{other_customer.pk}"}
    failed = _intent("pi_foreign_2", invoice, status="requires_payment_method")
    failed |= {"customer": f"cus_{other_customer.pk}"}
    failed["last_payment_error"] = {"code": "card_declined", "decline_code": "do_not_honor"}

    paid = _webhook(client, "evt_f1", "payment_intent.succeeded", foreign)
    declined = _webhook(client, "evt_f2", "payment_intent.payment_failed", failed)

    assert paid.status == StripeEventStatus.REJECTED
    assert declined.status == StripeEventStatus.IGNORED
    attempt = AutoChargeAttempt.objects.get()
    assert (attempt.status, attempt.payment_intent_id) == (AutoChargeStatus.PENDING, "")
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID
    assert not Payment.objects.exists()
    assert not Delivery.objects.filter(event="autocharge_failed").exists()


@responses.activate
def test_a_failure_of_another_payment_intent_does_not_decline_a_known_attempt(
    client, django_capture_on_commit_callbacks
):
    invoice = _renewal()
    _card(invoice.customer)
    responses.post(f"{API}/payment_intents", json=_intent("pi_p", invoice, status="processing"))
    with _at(TODAY):
        _run(django_capture_on_commit_callbacks)
    other = _intent("pi_other", invoice, status="requires_payment_method")
    other["last_payment_error"] = {"code": "card_declined", "decline_code": "do_not_honor"}

    stored = _webhook(client, "evt_o", "payment_intent.payment_failed", other)

    assert stored.status == StripeEventStatus.IGNORED
    attempt = AutoChargeAttempt.objects.get()
    assert (attempt.status, attempt.payment_intent_id) == (AutoChargeStatus.PROCESSING, "pi_p")
    assert not Delivery.objects.filter(event="autocharge_failed").exists()


# --- Attempts left processing: the job reads the PaymentIntent again (review r2) ---------------


def _processing_attempt(django_capture_on_commit_callbacks) -> Invoice:
    invoice = _renewal()
    _card(invoice.customer)
    responses.post(f"{API}/payment_intents", json=_intent("pi_slow", invoice, status="processing"))
    with _at(TODAY):
        _run(django_capture_on_commit_callbacks)
    assert AutoChargeAttempt.objects.get().status == AutoChargeStatus.PROCESSING
    return invoice


def _job(django_capture_on_commit_callbacks):
    from billing.jobs import autocharge_job

    with django_capture_on_commit_callbacks(execute=True):
        return autocharge_job(dry_run=False)


def _reads() -> list:
    return [c for c in responses.calls if c.request.url == f"{API}/payment_intents/pi_slow"]


@responses.activate
def test_a_charge_left_processing_is_read_again_and_paid_when_stripe_took_the_money(
    django_capture_on_commit_callbacks,
):
    invoice = _processing_attempt(django_capture_on_commit_callbacks)
    responses.get(f"{API}/payment_intents/pi_slow", json=_intent("pi_slow", invoice))

    with _at(TODAY, hour=13):  # an hour later: the webhook may still come
        assert _job(django_capture_on_commit_callbacks)["rechecked"] == 0
    assert _reads() == []
    with _at(TODAY, hour=19):  # six hours and more: no webhook came
        counts = _job(django_capture_on_commit_callbacks)
        again = _job(django_capture_on_commit_callbacks)

    assert (counts["rechecked"], again["rechecked"]) == (1, 0)
    assert len(_reads()) == 1
    attempt = AutoChargeAttempt.objects.get()
    assert attempt.status == AutoChargeStatus.SUCCEEDED
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    payment = Payment.objects.get()
    assert (payment.reference, payment.amount) == ("pi_slow", Decimal("4.00"))
    assert len(_charge_calls()) == 1  # read, never charged again


@responses.activate
def test_a_charge_left_processing_that_failed_is_a_decline_told_once(
    client, django_capture_on_commit_callbacks
):
    invoice = _processing_attempt(django_capture_on_commit_callbacks)
    failed = _intent("pi_slow", invoice, status="requires_payment_method")
    failed["last_payment_error"] = {
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
    }
    responses.get(f"{API}/payment_intents/pi_slow", json=failed)

    with _at(TODAY, hour=19):
        assert _job(django_capture_on_commit_callbacks)["rechecked"] == 1
    # Stripe's late webhook for the same failure changes nothing.
    _webhook(client, "evt_late", "payment_intent.payment_failed", failed)

    attempt = AutoChargeAttempt.objects.get()
    assert (attempt.status, attempt.failure_code) == (
        AutoChargeStatus.DECLINED,
        "insufficient_funds",
    )
    assert attempt.next_attempt_at is not None
    assert Delivery.objects.filter(event="autocharge_failed").count() == 1
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNPAID


@responses.activate
def test_a_charge_still_processing_is_left_and_read_again_later(
    django_capture_on_commit_callbacks,
):
    invoice = _processing_attempt(django_capture_on_commit_callbacks)
    responses.get(
        f"{API}/payment_intents/pi_slow", json=_intent("pi_slow", invoice, status="processing")
    )

    with _at(TODAY, hour=19):
        assert _job(django_capture_on_commit_callbacks)["rechecked"] == 1
    with _at(TODAY, hour=20):
        assert _job(django_capture_on_commit_callbacks)["rechecked"] == 0
    with _at(TODAY + dt.timedelta(days=1), hour=2):
        assert _job(django_capture_on_commit_callbacks)["rechecked"] == 1

    assert len(_reads()) == 2
    assert AutoChargeAttempt.objects.get().status == AutoChargeStatus.PROCESSING
    assert len(_charge_calls()) == 1


# --- The retry day told is the retry day (review r2) -------------------------------------------


@responses.activate
def test_a_retry_runs_on_the_day_the_customer_was_told(django_capture_on_commit_callbacks):
    """The hourly job sends at 23:00; the decline is recorded seconds later. The customer is
    told "tomorrow", so tomorrow's 23:00 run retries (not the one after midnight)."""
    invoice = _renewal()
    _card(invoice.customer)
    for n in (1, 2):
        responses.post(
            f"{API}/payment_intents", status=402, json=_declined_body(f"pi_d{n}", invoice)
        )
    with _at(TODAY, hour=23):
        _run(django_capture_on_commit_callbacks, execute=False)
    with _at(TODAY, hour=23, minute=1):
        autocharge_attempt_send(attempt_id=AutoChargeAttempt.objects.get().pk)
    told = Delivery.objects.get(event="autocharge_failed")
    assert told.context["next_attempt_date"] == "2027-03-11"

    with _at(TODAY + dt.timedelta(days=1), hour=23):
        assert _run(django_capture_on_commit_callbacks)["attempts"] == 1
    assert AutoChargeAttempt.objects.filter(attempt_number=2).exists()


# --- Admin --------------------------------------------------------------------------------------


def test_admin_lists_of_cards_and_charges(admin_client, django_capture_on_commit_callbacks):
    invoice = _renewal()
    card = _card(invoice.customer)
    AutoChargeAttempt.objects.create(
        invoice=invoice,
        payment_method=card,
        attempt_number=1,
        idempotency_key=f"autocharge-{invoice.pk}-1",
        amount=invoice.total,
        currency=invoice.currency,
        status=AutoChargeStatus.DECLINED,
    )

    charges = admin_client.get("/admin/billing/autochargeattempt/?status=declined")
    cards = admin_client.get("/admin/billing/savedpaymentmethod/")
    customers = admin_client.get("/admin/billing/stripecustomer/")

    assert charges.status_code == cards.status_code == customers.status_code == 200
    assert charges.context["cl"].result_count == 1
    assert invoice.number in charges.content.decode()
    assert (
        "Visa •••• 4242" in charges.content.decode() or "visa •••• 4242" in charges.content.decode()
    )
    assert (
        admin_client.get("/admin/billing/autochargeattempt/?status=succeeded")
        .context["cl"]
        .result_count
        == 0
    )
