"""Saved cards and the off-session charge of renewal invoices.

Stripe holds the card: a setup-mode Checkout session saves it on the account's Stripe Customer,
its webhook tells us, and we keep the card's id, brand, last four digits and expiry (never the
number). The `autocharge` fleet job charges unpaid renewal invoices to the customer's default
card a few days before they are due:

- prepare: one AutoChargeAttempt row per due invoice, written in batches and COMMITTED before
  any call, with its idempotency key `autocharge-<invoice>-<attempt>`;
- call: one Celery task per attempt sends the charge (a Stripe call is slow external work: a
  task each, so workers charge in parallel and a slow answer holds up no batch); a crash after
  the commit leaves the row PENDING and the next run sends it again with the same key, so
  Stripe charges once;
- finalize: the synchronous answer is recorded (processing, succeeded, requires_action,
  declined, error), but the money is decided by the webhook (`payment_intent.succeeded` pays
  the invoice through invoice_mark_paid, billing.services.stripe_payments).

A declined charge changes no service: the customer is told, and the next attempt waits
BILLING_AUTOCHARGE_RETRY_DAYS[n-1] days; after the last one the customer pays by hand. A bank
that wants the customer (SCA, `authentication_required`) stops the automatic attempts: the
customer gets a link to the invoice, whose card payment (Checkout) authenticates on-session.
"""

import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from billing import enqueue, stripe_client
from billing.errors import BillingErrorCode
from billing.models import (
    AutoChargeAttempt,
    AutoChargeStatus,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    SavedPaymentMethod,
    StripeCustomer,
)
from billing.notify import invoice_message_context
from billing.services.renewals import LIVE, fleet_batch_size
from billing.stripe_client import ChargeResult, ChargeStatus
from common.actors import Actor
from common.dates import billing_today, billing_tz
from common.errors import NotFoundError
from common.money import to_minor_units
from notifications.services import notification_send

logger = logging.getLogger(__name__)

# An attempt still PENDING this long after its last send was interrupted (worker killed, Stripe
# unreachable past the task's retries): the next run sends it again, with its own key.
RESEND_PENDING_AFTER = dt.timedelta(minutes=10)
# Stripe keeps idempotency keys for at least 24 hours. A PENDING attempt older than this is
# not sent again under its key (a second charge could no longer be recognized as the first):
# it becomes an error, and the schedule makes a new attempt with a new key. (Had the first
# send reached Stripe, its webhook would have paid the invoice long before.)
PENDING_GIVE_UP_AFTER = dt.timedelta(hours=23)
# A charge Stripe answered "processing" whose webhook has not come after this long: the job
# reads its PaymentIntent back and applies what it says (as the webhook would have).
PROCESSING_RECHECK_AFTER = dt.timedelta(hours=6)
# An invoice with any attempt in one of these gets no new automatic attempt.
_BLOCKING = (
    AutoChargeStatus.PENDING,
    AutoChargeStatus.PROCESSING,
    AutoChargeStatus.SUCCEEDED,
    AutoChargeStatus.REQUIRES_ACTION,
)
_IN_FLIGHT = (AutoChargeStatus.PENDING, AutoChargeStatus.PROCESSING)
_SYSTEM = Actor.system("autocharge")


# --- Reads --------------------------------------------------------------------------------------


def payment_method_list_for_customer(*, customer: User) -> QuerySet[SavedPaymentMethod]:
    """The customer's saved cards (not removed), the default first."""
    return SavedPaymentMethod.objects.filter(customer=customer, removed_at__isnull=True)


def card_label(method: SavedPaymentMethod) -> str:
    """ "Visa •••• 4242": what the customer recognizes their card by."""
    brand = (method.brand or "card").replace("_", " ").title()
    return f"{brand} •••• {method.last4}" if method.last4 else brand


def card_expiry(method: SavedPaymentMethod) -> str:
    if not (method.exp_month and method.exp_year):
        return "-"
    return f"{method.exp_month:02d}/{method.exp_year}"


def max_attempts() -> int:
    """The first attempt and one per BILLING_AUTOCHARGE_RETRY_DAYS entry."""
    return 1 + len(settings.BILLING_AUTOCHARGE_RETRY_DAYS)


def next_attempt_at(*, attempt_number: int, now: dt.datetime) -> dt.datetime | None:
    """When the attempt after a failed `attempt_number` may run; None: no more retries."""
    days = settings.BILLING_AUTOCHARGE_RETRY_DAYS
    if attempt_number > len(days):
        return None
    # The start of that billing day: the customer is told the date, and the first run on that
    # date retries (now + N days would skip that day's runs earlier than the failure's time).
    day = billing_today(now) + dt.timedelta(days=days[attempt_number - 1])
    return dt.datetime.combine(day, dt.time.min, tzinfo=billing_tz())


# --- Saving, removing, choosing the default card -----------------------------------------------


def stripe_customer_get_or_create(*, customer: User) -> StripeCustomer:
    """The account's Stripe Customer, created on first use. The idempotency key comes from the
    account, so two first uses at once (or a retry after a lost answer) get one customer."""
    existing = StripeCustomer.objects.filter(customer=customer).first()
    if existing is not None:
        return existing
    result = stripe_client.customer_create(
        email=customer.email,
        name=customer.get_full_name(),
        metadata={"portal_customer_id": str(customer.pk)},
        idempotency_key=f"portal-customer-{customer.pk}",
    )
    row, _ = StripeCustomer.objects.get_or_create(
        customer=customer, defaults={"stripe_customer_id": result.id}
    )
    return row


def payment_methods_page_url() -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + reverse("payment-methods")


def payment_method_setup_start(*, customer: User, actor: Actor) -> str:
    """Open a Stripe Checkout page (setup mode) where the customer saves a card; its URL.

    The card is recorded when Stripe's webhook says the setup succeeded (payment_method_saved).
    """
    stripe_customer = stripe_customer_get_or_create(customer=customer)
    page = payment_methods_page_url()
    session = stripe_client.checkout_setup_session_create(
        customer_id=stripe_customer.stripe_customer_id,
        success_url=f"{page}?setup=done",
        cancel_url=f"{page}?setup=cancelled",
        currency=settings.BILLING_DEFAULT_CURRENCY,
        metadata={"portal_customer_id": str(customer.pk)},
        # Each click is its own page; the key covers the client's own network retries.
        idempotency_key=f"payment-method-setup-{customer.pk}-{uuid.uuid4().hex}",
    )
    logger.info("card setup page %s opened for customer %s by %s", session.id, customer.pk, actor)
    return session.url


def payment_method_save_request(
    *, stripe_customer_id: str, setup_intent_id: str, payment_method_id: str = ""
) -> bool:
    """A webhook says a card setup succeeded (inside its transaction): read the card from
    Stripe after commit (no HTTP inside the transaction). False if the Stripe Customer is not
    one of ours (nothing to do)."""
    if not StripeCustomer.objects.filter(stripe_customer_id=stripe_customer_id).exists():
        return False
    enqueue.payment_method_save_on_commit(
        stripe_customer_id=stripe_customer_id,
        setup_intent_id=setup_intent_id,
        payment_method_id=payment_method_id,
    )
    return True


def payment_method_saved(
    *, stripe_customer_id: str, setup_intent_id: str = "", payment_method_id: str = ""
) -> SavedPaymentMethod | None:
    """Record the card a succeeded setup saved (brand, last4, expiry read from Stripe), the
    default if the customer has none, and tell the customer. Safe to repeat: Stripe sends both
    checkout.session.completed and setup_intent.succeeded for one setup."""
    stripe_customer = (
        StripeCustomer.objects.select_related("customer")
        .filter(stripe_customer_id=stripe_customer_id)
        .first()
    )
    if stripe_customer is None:
        return None
    if not payment_method_id:
        intent = stripe_client.setup_intent_retrieve(setup_intent_id=setup_intent_id)
        if intent.status != "succeeded" or intent.customer_id != stripe_customer_id:
            logger.warning("setup intent %s is %s; no card saved", intent.id, intent.status)
            return None
        payment_method_id = intent.payment_method_id
    if not payment_method_id:
        return None
    card = stripe_client.payment_method_retrieve(payment_method_id=payment_method_id)
    if card.customer_id != stripe_customer_id:
        # Not attached to this account's Customer (detached meanwhile, or someone else's).
        logger.warning("payment method %s is not attached to %s", card.id, stripe_customer_id)
        return None
    user = stripe_customer.customer
    with transaction.atomic():
        # The account's lock: two saves at once choose the default one after the other.
        StripeCustomer.objects.select_for_update().get(pk=stripe_customer.pk)
        method, created = SavedPaymentMethod.objects.get_or_create(
            stripe_payment_method_id=card.id,
            defaults={
                "customer": user,
                "brand": card.brand,
                "last4": card.last4,
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
            },
        )
        if not created:
            return method
        if not payment_method_list_for_customer(customer=user).filter(is_default=True).exists():
            method.is_default = True
            method.save(update_fields=["is_default", "updated_at"])
        notification_send(
            event="payment_method_saved",
            user=user,
            context={
                "card": card_label(method),
                "expiry": card_expiry(method),
                "payment_methods_url": payment_methods_page_url(),
            },
            event_key=f"payment_method_saved:{method.pk}",
        )
    logger.info("card %s saved for customer %s", method.pk, user.pk)
    return method


def _own_method(*, customer: User, payment_method_id: int) -> SavedPaymentMethod:
    method = (
        payment_method_list_for_customer(customer=customer)
        .select_for_update()
        .filter(pk=payment_method_id)
        .first()
    )
    if method is None:
        raise NotFoundError(
            _("No such saved card."), code=BillingErrorCode.PAYMENT_METHOD_NOT_FOUND
        )
    return method


def payment_method_make_default(
    *, customer: User, payment_method_id: int, actor: Actor
) -> SavedPaymentMethod:
    """Renewals are charged to this card from now on (the customer's own cards only)."""
    with transaction.atomic():
        method = _own_method(customer=customer, payment_method_id=payment_method_id)
        if not method.is_default:
            # Unset the old default first: the partial unique index allows one at a time.
            payment_method_list_for_customer(customer=customer).filter(is_default=True).update(
                is_default=False, updated_at=timezone.now()
            )
            method.is_default = True
            method.save(update_fields=["is_default", "updated_at"])
    logger.info("card %s is customer %s's default (%s)", method.pk, customer.pk, actor)
    return method


def payment_method_remove(*, customer: User, payment_method_id: int, actor: Actor) -> None:
    """Detach the card at Stripe and mark it removed (kept: charges reference it). If it was
    the default, the newest remaining card becomes the default."""
    with transaction.atomic():
        method = _own_method(customer=customer, payment_method_id=payment_method_id)
    # Outside any transaction; detaching twice is fine (Stripe says it is not attached).
    stripe_client.payment_method_detach(payment_method_id=method.stripe_payment_method_id)
    with transaction.atomic():
        method = _own_method(customer=customer, payment_method_id=payment_method_id)
        was_default = method.is_default
        method.is_default = False
        method.removed_at = timezone.now()
        method.save(update_fields=["is_default", "removed_at", "updated_at"])
        if was_default:
            successor = (
                payment_method_list_for_customer(customer=customer)
                .order_by("-created_at", "-pk")
                .first()
            )
            if successor is not None:
                successor.is_default = True
                successor.save(update_fields=["is_default", "updated_at"])
    logger.info("card %s of customer %s removed (%s)", method.pk, customer.pk, actor)


# --- The fleet job ------------------------------------------------------------------------------


def _due_invoices(*, horizon: dt.date, now: dt.datetime) -> "QuerySet[Invoice, dict[str, Any]]":
    """Unpaid renewal invoices due by `horizon` to charge now: a default card, nothing in
    flight or decided (succeeded, needs the customer), the last failure's wait over, attempts
    left. Annotated with the card and the last attempt number."""
    default_card = SavedPaymentMethod.objects.filter(
        customer=OuterRef("customer_id"), is_default=True, removed_at__isnull=True
    )
    attempts = AutoChargeAttempt.objects.filter(invoice=OuterRef("pk"))
    waiting = attempts.filter(
        Q(status__in=_BLOCKING) | Q(next_attempt_at__isnull=True) | Q(next_attempt_at__gt=now)
    )
    last_number = attempts.order_by().values("invoice").annotate(n=Max("attempt_number"))
    return (
        Invoice.objects.filter(
            kind=InvoiceKind.RENEWAL,
            status=InvoiceStatus.UNPAID,
            due_date__lte=horizon,
            total__gt=0,
            deployment__status__in=LIVE,
        )
        .filter(Exists(default_card), ~Exists(waiting))
        .annotate(
            last_attempt=Coalesce(Subquery(last_number.values("n")[:1]), Value(0)),
            card_id=Subquery(default_card.values("pk")[:1]),
        )
        .filter(last_attempt__lt=max_attempts())
        .order_by("pk")
        .values("pk", "total", "currency", "last_attempt", "card_id")
    )


def autocharge_run(*, today: dt.date | None = None, dry_run: bool = False) -> dict[str, int]:
    """Charge every due renewal invoice to its customer's default saved card, in batches.

    Each batch writes its attempt rows in one INSERT (ON CONFLICT DO NOTHING: the unique
    (invoice, attempt) key and "one in flight per invoice" make a concurrent run's rows win)
    and commits; then one task per attempt sends the charge. Attempts left PENDING by an
    interrupted send are sent again first, with their own keys. Returns counts; a dry run
    counts what it would charge and writes nothing.
    """
    if not settings.STRIPE_SECRET_KEY:
        return {"due": 0, "attempts": 0, "resent": 0, "given_up": 0, "not_configured": 1}
    today = today or billing_today()
    now = timezone.now()
    counts = _pending_resend(now=now, dry_run=dry_run)
    due = _due_invoices(
        horizon=today + dt.timedelta(days=settings.BILLING_AUTOCHARGE_DAYS_BEFORE_DUE), now=now
    )
    counts |= {"due": 0, "attempts": 0}
    after = 0
    while True:
        with transaction.atomic():
            batch = due.filter(pk__gt=after)
            if not dry_run:
                batch = batch.select_for_update(skip_locked=True, of=("self",))
            rows = list(batch[: fleet_batch_size()])
            if not rows:
                break
            after = rows[-1]["pk"]
            counts["due"] += len(rows)
            if dry_run:
                continue
            counts["attempts"] += _attempts_create(rows)
    return counts


def _attempts_create(rows: list[dict[str, Any]]) -> int:
    """The batch's attempt rows (one INSERT) and their send tasks (after commit)."""
    attempts = [
        AutoChargeAttempt(
            invoice_id=row["pk"],
            payment_method_id=row["card_id"],
            attempt_number=row["last_attempt"] + 1,
            idempotency_key=f"autocharge-{row['pk']}-{row['last_attempt'] + 1}",
            amount=row["total"],
            currency=row["currency"],
        )
        for row in rows
    ]
    AutoChargeAttempt.objects.bulk_create(attempts, ignore_conflicts=True)
    created = list(
        AutoChargeAttempt.objects.filter(
            idempotency_key__in=[a.idempotency_key for a in attempts],
            status=AutoChargeStatus.PENDING,
        )
        .order_by()
        .values_list("pk", flat=True)
    )
    enqueue.autocharge_attempts_send_on_commit(attempt_ids=created)
    return len(created)


def _pending_resend(*, now: dt.datetime, dry_run: bool) -> dict[str, int]:
    """Attempts whose send was interrupted: sent again with their own key, or (older than a
    day: the key may be forgotten) turned into errors the schedule retries."""
    stale = AutoChargeAttempt.objects.filter(
        status=AutoChargeStatus.PENDING, updated_at__lt=now - RESEND_PENDING_AFTER
    )
    old = stale.filter(created_at__lt=now - PENDING_GIVE_UP_AFTER)
    counts = {"resent": 0, "given_up": 0}
    if dry_run:
        counts["given_up"] = old.count()
        counts["resent"] = stale.count() - counts["given_up"]
        return counts
    for attempt_id in old.order_by().values_list("pk", flat=True).iterator():
        if _charge_result_record(
            attempt_id=attempt_id,
            result=ChargeResult(
                status=ChargeStatus.ERROR,
                error_code="no_answer",
                message="The payment could not be sent to the card company in time.",
            ),
            from_statuses=(AutoChargeStatus.PENDING,),
            notify=False,
        ):
            counts["given_up"] += 1
    after = 0
    while True:
        with transaction.atomic():
            ids = list(
                stale.filter(pk__gt=after)
                .order_by("pk")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[: fleet_batch_size()]
            )
            if not ids:
                return counts
            after = ids[-1]
            # Marked as sent now, so the next run waits RESEND_PENDING_AFTER again.
            AutoChargeAttempt.objects.filter(pk__in=ids).update(updated_at=now)
            enqueue.autocharge_attempts_send_on_commit(attempt_ids=ids)
            counts["resent"] += len(ids)


def autocharge_attempt_send(*, attempt_id: int) -> str:
    """Send one PENDING attempt to Stripe (the task). Checks first that it is still wanted
    (the invoice unpaid, the card not removed); the call runs with no transaction open.
    StripeUnavailable propagates (the task retries; the attempt stays PENDING, and the job
    sends it again later): the same idempotency key makes any re-send charge at most once."""
    attempt = (
        AutoChargeAttempt.objects.select_related("invoice", "payment_method")
        .filter(pk=attempt_id)
        .first()
    )
    if attempt is None or attempt.status != AutoChargeStatus.PENDING:
        return "not pending"
    invoice, method = attempt.invoice, attempt.payment_method
    stripe_customer = StripeCustomer.objects.filter(customer_id=invoice.customer_id).first()
    refusal: ChargeResult | None = None
    if invoice.status != InvoiceStatus.UNPAID:
        refusal = ChargeResult(
            status=ChargeStatus.ERROR,
            error_code="invoice_not_unpaid",
            message=f"Invoice {invoice.number} is {invoice.get_status_display().lower()}.",
        )
    elif method.removed_at is not None or stripe_customer is None:
        refusal = ChargeResult(
            status=ChargeStatus.ERROR,
            error_code="payment_method_removed",
            message="The saved card was removed.",
        )
    if refusal is not None or stripe_customer is None:
        _charge_result_record(
            attempt_id=attempt.pk,
            result=refusal or ChargeResult(status=ChargeStatus.ERROR),
            from_statuses=(AutoChargeStatus.PENDING,),
            notify=False,
        )
        return refusal.error_code if refusal else "error"
    try:
        result = stripe_client.payment_intent_create_off_session(
            customer=stripe_customer.stripe_customer_id,
            payment_method=method.stripe_payment_method_id,
            amount_minor=to_minor_units(attempt.amount, attempt.currency),
            currency=attempt.currency,
            metadata={
                "invoice_id": str(invoice.pk),
                "invoice_number": invoice.number,
                "attempt": str(attempt.attempt_number),
            },
            idempotency_key=attempt.idempotency_key,
            description=f"Invoice {invoice.number} (automatic payment)",
        )
    except stripe_client.StripeRequestRejected as exc:
        result = ChargeResult(
            status=ChargeStatus.ERROR, error_code=str(exc.code), message=exc.message
        )
    recorded = _charge_result_record(
        attempt_id=attempt.pk, result=result, from_statuses=(AutoChargeStatus.PENDING,)
    )
    return result.status if recorded else "already recorded"


def _charge_result_record(
    *,
    attempt_id: int,
    result: ChargeResult,
    from_statuses: Iterable[str],
    notify: bool = True,
) -> AutoChargeAttempt | None:
    """Record Stripe's answer on the attempt if it is still in one of `from_statuses` (the
    synchronous answer and the webhook race: whichever comes first records it, the other
    changes nothing), and tell the customer what they need to know. None if not recorded."""
    status = AutoChargeStatus(result.status)
    now = timezone.now()
    with transaction.atomic():
        attempt = (
            AutoChargeAttempt.objects.select_for_update(of=("self",))
            .select_related("invoice", "payment_method")
            .get(pk=attempt_id)
        )
        if attempt.status not in set(from_statuses):
            return None
        attempt.status = status
        if result.payment_intent_id and not attempt.payment_intent_id:
            attempt.payment_intent_id = result.payment_intent_id
        attempt.failure_code = (result.decline_code or result.error_code)[:100]
        attempt.failure_message = result.message[:500]
        attempt.next_attempt_at = (
            next_attempt_at(attempt_number=attempt.attempt_number, now=now)
            if status in (AutoChargeStatus.DECLINED, AutoChargeStatus.ERROR)
            else None
        )
        attempt.save(
            update_fields=[
                "status",
                "payment_intent_id",
                "failure_code",
                "failure_message",
                "next_attempt_at",
                "updated_at",
            ]
        )
        if notify and attempt.invoice.status == InvoiceStatus.UNPAID:
            _customer_tell(attempt)
    log = logger.info if status in (*_IN_FLIGHT, AutoChargeStatus.SUCCEEDED) else logger.warning
    log(
        "auto-charge %s of invoice %s: %s %s",
        attempt.attempt_number,
        attempt.invoice.number,
        status,
        attempt.failure_code,
    )
    return attempt


def _customer_tell(attempt: AutoChargeAttempt) -> None:
    """A failed charge (with the next try, if any) or a bank that wants the customer: both
    carry the invoice's link, where the customer pays by card (authenticating) or by hand."""
    context = invoice_message_context(attempt.invoice)
    context["card"] = card_label(attempt.payment_method)
    key = f"{attempt.invoice.number}:{attempt.attempt_number}"
    if attempt.status == AutoChargeStatus.REQUIRES_ACTION:
        notification_send(
            event="payment_action_required",
            user=attempt.invoice.customer,
            context=context,
            event_key=f"payment_action_required:{key}",
        )
    elif attempt.status in (AutoChargeStatus.DECLINED, AutoChargeStatus.ERROR):
        context["reason"] = attempt.failure_message or "The payment was declined."
        if attempt.next_attempt_at is not None:
            context["next_attempt_date"] = billing_today(attempt.next_attempt_at).isoformat()
        notification_send(
            event="autocharge_failed",
            user=attempt.invoice.customer,
            context=context,
            event_key=f"autocharge_failed:{key}",
        )


# --- What the webhooks say (called by billing.services.stripe_payments, in its transaction) --


def autocharge_attempt_match(
    *,
    payment_intent_id: str,
    invoice_id: int,
    attempt_number: int | None,
    stripe_customer_id: str,
) -> int:
    """The attempt of ours a PaymentIntent belongs to, or 0. Its metadata alone is not
    trusted: the attempt is found by the PaymentIntent's id, or (the synchronous answer was
    lost, so no id was recorded) by invoice and attempt number with no id yet; and it must be
    for the invoice the metadata names, charged to that invoice's customer's Stripe Customer."""
    if not payment_intent_id or not stripe_customer_id:
        return 0
    found = (
        AutoChargeAttempt.objects.filter(payment_intent_id=payment_intent_id)
        .values_list("pk", "invoice_id")
        .first()
    )
    if found is None and attempt_number is not None:
        found = (
            AutoChargeAttempt.objects.filter(
                invoice_id=invoice_id, attempt_number=attempt_number, payment_intent_id=""
            )
            .values_list("pk", "invoice_id")
            .first()
        )
    if found is None or found[1] != invoice_id:
        return 0
    owner = Invoice.objects.filter(pk=invoice_id).values_list("customer_id", flat=True)
    if not StripeCustomer.objects.filter(
        customer_id__in=owner, stripe_customer_id=stripe_customer_id
    ).exists():
        logger.warning(
            "payment intent %s names invoice %s of another Stripe customer; not applied",
            payment_intent_id,
            invoice_id,
        )
        return 0
    return found[0]


def autocharge_intent_succeeded(
    *, attempt_id: int, payment_intent_id: str
) -> AutoChargeAttempt | None:
    """Stripe took the money: the attempt (autocharge_attempt_match) succeeded, whatever the
    synchronous answer said. The caller applies the payment to the invoice."""
    return _charge_result_record(
        attempt_id=attempt_id,
        result=ChargeResult(status=ChargeStatus.SUCCEEDED, payment_intent_id=payment_intent_id),
        from_statuses=[s for s in AutoChargeStatus.values if s != AutoChargeStatus.SUCCEEDED],
        notify=False,
    )


def autocharge_intent_failed(
    *,
    attempt_id: int,
    payment_intent_id: str,
    code: str,
    decline_code: str,
    message: str,
) -> AutoChargeAttempt | None:
    """Stripe says the charge failed (asynchronously, or echoing the synchronous answer): the
    attempt (autocharge_attempt_match) is declined or needs the customer, unless already
    recorded."""
    return _charge_result_record(
        attempt_id=attempt_id,
        result=ChargeResult(
            status=stripe_client.charge_status_for(code=code, decline_code=decline_code),
            payment_intent_id=payment_intent_id,
            error_code=code[:100],
            decline_code=decline_code[:100],
            message=message[:500] or "Your card was declined.",
        ),
        from_statuses=_IN_FLIGHT,
    )


# --- Charges left processing (their webhook never came) -----------------------------------------


def autocharge_processing_stale(*, now: dt.datetime, limit: int) -> list[tuple[int, str]]:
    """Up to `limit` attempts PROCESSING for longer than PROCESSING_RECHECK_AFTER, as
    (attempt id, PaymentIntent id), marked as read now (the next read waits as long again).
    Their PaymentIntent is read back by billing.services.stripe_payments."""
    with transaction.atomic():
        rows = list(
            AutoChargeAttempt.objects.filter(
                status=AutoChargeStatus.PROCESSING,
                updated_at__lt=now - PROCESSING_RECHECK_AFTER,
            )
            .exclude(payment_intent_id="")
            .order_by("pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", "payment_intent_id")[:limit]
        )
        AutoChargeAttempt.objects.filter(pk__in=[pk for pk, _pi in rows]).update(updated_at=now)
    return rows
