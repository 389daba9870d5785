"""What each event is: who receives it, the context keys its templates use, a sample context.

Callers (billing, provisioning, servers) pass `context` with the `required` keys (plus any
`optional` ones); `secret_keys` go in `secrets=`, never in `context`. The portal adds
`portal_name`, `portal_url`, `dashboard_url`, `support_email`, `support_whatsapp` and
`customer_name` itself. Values should be display-ready strings or numbers (dates formatted by
the caller); Decimals and dates are stored as strings.
"""

from dataclasses import dataclass, field

from notifications.models import Audience
from notifications.models import NotificationEvent as E


@dataclass(frozen=True)
class EventSpec:
    event: str
    audience: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    # Keys that may come from `secrets` instead of `context` (they satisfy `required` too).
    secret_keys: tuple[str, ...] = ()
    # Keys whose value is a code the templates put in words (per language), not shown as is.
    worded: tuple[str, ...] = ()
    # Essential messages always go by email when the customer chose no usable channel.
    essential: bool = False
    # An answer to a message the customer wrote (notifications.commands): sent to the number
    # that wrote, never a channel the customer chooses in their preferences.
    reply: bool = False
    # Body parameters, in order, of an approved WhatsApp template (WHATSAPP_TEMPLATE_<EVENT>).
    whatsapp_params: tuple[str, ...] = ()
    sample: dict = field(default_factory=dict)


_ORDER_SHORT = {"order_id": "1042", "package": "Bronze"}
_ORDER = {**_ORDER_SHORT, "duration": "Monthly"}
_INVOICE = {
    "invoice_number": "INV-2026-000042",
    "amount": "5.50",
    "currency": "USD",
    "due_date": "2026-12-01",
    "invoice_url": "https://portal.example.com/invoices/42/",
}
_INVOICE_PDF_URL = "https://portal.example.com/invoices/42/pdf/"
_CREDENTIALS = ("panel_username", "panel_password")

SPECS: dict[str, EventSpec] = {
    spec.event: spec
    for spec in [
        EventSpec(
            E.ORDER_RECEIVED,
            Audience.CUSTOMER,
            required=("order_id", "package", "duration", "amount", "currency"),
            optional=("server_name", "location", "order_url"),
            whatsapp_params=("customer_name", "order_id", "package", "amount", "currency"),
            sample={
                **_ORDER,
                "amount": "5.50",
                "currency": "USD",
                "server_name": "Survival SMP",
                "location": "Jakarta (eu)",
                "order_url": "https://portal.example.com/orders/1042/",
            },
        ),
        EventSpec(
            E.INVOICE_CREATED,
            Audience.CUSTOMER,
            # amount: what is left to pay after any account credit (credit_applied).
            required=("invoice_number", "amount", "currency", "due_date", "invoice_url"),
            optional=("order_id", "package", "credit_applied", "invoice_pdf_url"),
            whatsapp_params=(
                "customer_name",
                "invoice_number",
                "amount",
                "currency",
                "due_date",
                "invoice_url",
            ),
            sample={
                **_INVOICE,
                "order_id": "1042",
                "package": "Bronze",
                "credit_applied": "2.00",
                "invoice_pdf_url": _INVOICE_PDF_URL,
            },
        ),
        EventSpec(
            E.PAYMENT_RECEIVED,
            Audience.CUSTOMER,
            required=("invoice_number", "amount", "currency"),
            optional=("payment_reference", "paid_at", "order_id"),
            whatsapp_params=("customer_name", "invoice_number", "amount", "currency"),
            sample={
                "invoice_number": "INV-2026-000042",
                "amount": "5.50",
                "currency": "USD",
                "payment_reference": "BCA-123456",
                "paid_at": "2026-11-24 10:15 UTC",
                "order_id": "1042",
            },
        ),
        EventSpec(
            E.PROVISIONING_STARTED,
            Audience.CUSTOMER,
            required=("order_id", "package", "server_name"),
            optional=("expected_time",),
            whatsapp_params=("customer_name", "order_id", "server_name"),
            sample={**_ORDER_SHORT, "server_name": "Survival SMP", "expected_time": "5 minutes"},
        ),
        EventSpec(
            E.SERVER_READY,
            Audience.CUSTOMER,
            required=(
                "order_id",
                "package",
                "duration",
                "status",
                "panel_url",
                "server_id",
                "server_name",
                "server_address",
                "memory_mb",
                "cpu_percent",
                "disk_mb",
            ),
            # A server staff linked by hand (provisioning.manual) may have no login of ours to
            # give: no panel_username, and panel_login_from_staff says so instead.
            optional=("location", "game", "panel_username", "panel_login_from_staff"),
            secret_keys=_CREDENTIALS,
            essential=True,
            whatsapp_params=(
                "customer_name",
                "order_id",
                "server_name",
                "server_address",
                "panel_url",
                "panel_username",
                "credentials_access",
            ),
            sample={
                **_ORDER,
                "status": "Active",
                "panel_url": "https://panel.example.com",
                "panel_username": "alice_1042",
                "server_id": "a1b2c3d4",
                "server_name": "Survival SMP",
                "server_address": "203.0.113.10:25565",
                "memory_mb": 1024,
                "cpu_percent": 100,
                "disk_mb": 5120,
                "location": "Jakarta (eu)",
                "game": "Minecraft (Paper)",
            },
        ),
        EventSpec(
            E.PROVISIONING_FAILED,
            Audience.CUSTOMER,
            required=("order_id", "package", "server_name", "expected_time"),
            essential=True,
            whatsapp_params=("customer_name", "order_id", "server_name", "expected_time"),
            sample={**_ORDER_SHORT, "server_name": "Survival SMP", "expected_time": "24 hours"},
        ),
        EventSpec(
            E.PROVISIONING_WAITING_CAPACITY,
            Audience.CUSTOMER,
            # Paid, but every server in the location is full: the order waits in the queue and
            # starts by itself when room appears; staff may offer a move or a refund.
            required=("order_id", "package", "server_name", "location"),
            optional=("order_url",),
            essential=True,
            whatsapp_params=("customer_name", "order_id", "server_name", "location"),
            sample={
                **_ORDER_SHORT,
                "server_name": "Survival SMP",
                "location": "Jakarta (eu)",
                "order_url": "https://portal.example.com/orders/1042/",
            },
        ),
        EventSpec(
            E.ORDER_REFUNDED,
            Audience.CUSTOMER,
            # Nothing is charged: `amount` is what went back. `refund_method` is a code the
            # templates word in the customer's language: card, bank_transfer or none; `reason`
            # is a sentence from staff.
            required=("order_id", "package", "amount", "currency", "reason", "refund_method"),
            optional=("server_name", "refund_reference"),
            worded=("refund_method",),
            essential=True,
            whatsapp_params=("customer_name", "order_id", "amount", "currency"),
            sample={
                **_ORDER_SHORT,
                "amount": "5.50",
                "currency": "USD",
                "reason": "Every server in Jakarta (eu) stayed full and no other location suited "
                "you.",
                "refund_method": "card",
                "server_name": "Survival SMP",
                "refund_reference": "re_3PXexample",
            },
        ),
        EventSpec(
            E.PROVISIONING_FAILED_STAFF,
            Audience.STAFF,
            required=("order_id", "step", "error", "retry_url"),
            optional=("customer_email", "deployment_id", "attempt", "package", "server_name"),
            whatsapp_params=("order_id", "step", "error", "retry_url"),
            sample={
                **_ORDER_SHORT,
                "step": "create_server",
                "error": "panel answered 422: no free allocation on node 3",
                "retry_url": "https://portal.example.com/admin/provisioning/run/7/retry/",
                "customer_email": "alice@example.com",
                "deployment_id": "12",
                "attempt": "3",
                "server_name": "Survival SMP",
            },
        ),
        EventSpec(
            E.CREDENTIALS_RESENT,
            Audience.CUSTOMER,
            required=("server_name", "panel_url", "panel_username"),
            optional=("server_id",),
            secret_keys=_CREDENTIALS,
            essential=True,
            whatsapp_params=(
                "customer_name",
                "server_name",
                "panel_url",
                "panel_username",
                "credentials_access",
            ),
            sample={
                "server_name": "Survival SMP",
                "server_id": "a1b2c3d4",
                "panel_url": "https://panel.example.com",
                "panel_username": "alice_1042",
            },
        ),
        EventSpec(
            E.PANEL_PASSWORD_RESET,
            Audience.CUSTOMER,
            required=("panel_url", "panel_username"),
            optional=("server_name",),
            secret_keys=_CREDENTIALS,
            essential=True,
            whatsapp_params=("customer_name", "panel_url", "panel_username", "credentials_access"),
            sample={
                "panel_url": "https://panel.example.com",
                "panel_username": "alice_1042",
                "server_name": "Survival SMP",
            },
        ),
        EventSpec(
            E.INVOICE_REMINDER,
            Audience.CUSTOMER,
            required=("invoice_number", "amount", "currency", "due_date", "invoice_url"),
            optional=("server_name", "credit_applied", "invoice_pdf_url"),
            whatsapp_params=(
                "customer_name",
                "invoice_number",
                "amount",
                "currency",
                "due_date",
                "invoice_url",
            ),
            sample={
                **_INVOICE,
                "server_name": "Survival SMP",
                "credit_applied": "2.00",
                "invoice_pdf_url": _INVOICE_PDF_URL,
            },
        ),
        EventSpec(
            E.INVOICE_OVERDUE,
            Audience.CUSTOMER,
            required=("invoice_number", "amount", "currency", "due_date", "invoice_url"),
            optional=("server_name", "suspension_date", "credit_applied", "invoice_pdf_url"),
            whatsapp_params=(
                "customer_name",
                "invoice_number",
                "amount",
                "currency",
                "due_date",
                "invoice_url",
            ),
            sample={
                **_INVOICE,
                "server_name": "Survival SMP",
                "suspension_date": "2026-12-04",
                "credit_applied": "2.00",
                "invoice_pdf_url": _INVOICE_PDF_URL,
            },
        ),
        EventSpec(
            E.SUSPENSION_WARNING,
            Audience.CUSTOMER,
            required=(
                "server_name",
                "suspension_date",
                "invoice_number",
                "amount",
                "currency",
                "invoice_url",
            ),
            essential=True,
            whatsapp_params=(
                "customer_name",
                "server_name",
                "suspension_date",
                "invoice_number",
                "invoice_url",
            ),
            sample={
                **{k: v for k, v in _INVOICE.items() if k != "due_date"},
                "server_name": "Survival SMP",
                "suspension_date": "2026-12-04",
            },
        ),
        EventSpec(
            E.SERVER_SUSPENDED,
            Audience.CUSTOMER,
            required=("server_name", "reason"),
            optional=("invoice_url", "termination_date"),
            essential=True,
            whatsapp_params=("customer_name", "server_name", "reason"),
            sample={
                "server_name": "Survival SMP",
                "reason": "Invoice INV-2026-000042 is unpaid",
                "invoice_url": "https://portal.example.com/invoices/42/",
                "termination_date": "2026-12-18",
            },
        ),
        EventSpec(
            E.SERVER_UNSUSPENDED,
            Audience.CUSTOMER,
            required=("server_name", "panel_url"),
            whatsapp_params=("customer_name", "server_name", "panel_url"),
            sample={"server_name": "Survival SMP", "panel_url": "https://panel.example.com"},
        ),
        EventSpec(
            E.SERVER_TERMINATED,
            Audience.CUSTOMER,
            required=("server_name", "reason"),
            optional=("terminated_at",),
            essential=True,
            whatsapp_params=("customer_name", "server_name", "reason"),
            sample={
                "server_name": "Survival SMP",
                "reason": "Invoice INV-2026-000042 stayed unpaid",
                "terminated_at": "2026-12-18",
            },
        ),
        EventSpec(
            E.PAYMENT_REVIEW_STAFF,
            Audience.STAFF,
            required=("provider", "reference", "reason", "admin_url"),
            optional=("invoice_number", "amount", "customer_email"),
            whatsapp_params=("provider", "reference", "reason", "admin_url"),
            sample={
                "provider": "stripe",
                "reference": "pi_3PXexample",
                "reason": "Invoice INV-2026-000042 is cancelled; this payment was not applied "
                "and must be refunded.",
                "admin_url": "https://portal.example.com/admin/billing/stripeevent/",
                "invoice_number": "INV-2026-000042",
                "amount": "5.50 USD",
                "customer_email": "alice@example.com",
            },
        ),
        EventSpec(
            E.FLEET_ALERT_STAFF,
            Audience.STAFF,
            # One message per incident (health, drift, a panel operation that keeps failing),
            # never one per check: the caller's event_key names the incident.
            required=("title", "detail", "admin_url"),
            optional=("deployment_id", "server_name", "customer_email", "opened_at"),
            whatsapp_params=("title", "detail", "admin_url"),
            sample={
                "title": "Server offline: Survival SMP",
                "detail": "The panel reports the server offline since 2026-12-01 10:05 UTC; it "
                "should be running.",
                "admin_url": "https://portal.example.com/admin/servers/serverhealth/12/change/",
                "deployment_id": "12",
                "server_name": "Survival SMP",
                "customer_email": "alice@example.com",
                "opened_at": "2026-12-01 10:05 UTC",
            },
        ),
        EventSpec(
            E.CREDIT_ADDED,
            Audience.CUSTOMER,
            # Credit given to the customer (not an invoice's own credit coming back). `kind` is a
            # code the templates word: downgrade, cancellation, refund or staff_adjustment;
            # `description` is the ledger row's text (English, from staff or the system).
            required=("amount", "currency", "balance", "kind"),
            optional=("description", "invoice_number", "credit_url"),
            worded=("kind",),
            whatsapp_params=("customer_name", "amount", "currency", "balance"),
            sample={
                "amount": "3.20",
                "currency": "USD",
                "balance": "5.70",
                "kind": "refund",
                "description": "Invoice INV-2026-000042 refunded to account credit",
                "invoice_number": "INV-2026-000042",
                "credit_url": "https://portal.example.com/accounts/credit/",
            },
        ),
        EventSpec(
            E.DELIVERY_FAILED_STAFF,
            Audience.STAFF,
            required=("original_event", "event_key", "reason", "admin_url"),
            optional=("customer_email", "failures"),
            whatsapp_params=("original_event", "event_key", "reason", "admin_url"),
            sample={
                "original_event": "server_ready",
                "event_key": "server_ready:deployment-12",
                "reason": "every channel failed",
                "admin_url": "https://portal.example.com/admin/notifications/delivery/?q=12",
                "customer_email": "alice@example.com",
                "failures": [
                    "whatsapp +6281234567890: 131026 Message undeliverable",
                    "email alice@example.com: 550 mailbox unavailable",
                ],
            },
        ),
        EventSpec(
            E.CANCELLATION_SCHEDULED,
            Audience.CUSTOMER,
            # mode: end_of_term or immediate; refund (immediate only): credit or none.
            required=("server_name", "effective_on", "mode"),
            optional=("server_url", "refund"),
            worded=("mode", "refund"),
            essential=True,
            whatsapp_params=("customer_name", "server_name", "effective_on"),
            sample={
                "server_name": "Survival SMP",
                "effective_on": "2026-12-31",
                "mode": "immediate",
                "refund": "credit",
                "server_url": "https://portal.example.com/servers/12/",
            },
        ),
        EventSpec(
            E.CANCELLATION_REVOKED,
            Audience.CUSTOMER,
            required=("server_name",),
            optional=("next_due_date", "server_url"),
            whatsapp_params=("customer_name", "server_name"),
            sample={
                "server_name": "Survival SMP",
                "next_due_date": "2026-12-31",
                "server_url": "https://portal.example.com/servers/12/",
            },
        ),
        EventSpec(
            E.CANCELLATION_STAFF,
            Audience.STAFF,
            required=("server_name", "customer_email", "mode", "effective_on", "admin_url"),
            optional=("reason", "deployment_id", "voided_invoices"),
            whatsapp_params=("server_name", "customer_email", "mode", "effective_on", "admin_url"),
            sample={
                "server_name": "Survival SMP",
                "customer_email": "alice@example.com",
                "mode": "At the end of the paid period",
                "effective_on": "2026-12-31",
                "admin_url": "https://portal.example.com/admin/billing/cancellation/7/change/",
                "reason": "Moving to another game",
                "deployment_id": "12",
                "voided_invoices": "INV-2026-000042",
            },
        ),
        EventSpec(
            E.AUTOCHARGE_FAILED,
            Audience.CUSTOMER,
            # An off-session charge of a renewal to the saved card was declined. `reason` is
            # the card company's customer-safe sentence; no `next_attempt_date`: no more
            # automatic tries (the customer pays by hand at `invoice_url`).
            required=(
                "invoice_number",
                "amount",
                "currency",
                "due_date",
                "invoice_url",
                "card",
                "reason",
            ),
            optional=("next_attempt_date",),
            essential=True,
            whatsapp_params=(
                "customer_name",
                "invoice_number",
                "amount",
                "currency",
                "invoice_url",
            ),
            sample={
                **_INVOICE,
                "card": "Visa •••• 4242",
                "reason": "Your card has insufficient funds.",
                "next_attempt_date": "2026-11-29",
            },
        ),
        EventSpec(
            E.PAYMENT_ACTION_REQUIRED,
            Audience.CUSTOMER,
            # The bank wants the customer to confirm the payment (SCA): no automatic retry; the
            # invoice page's card payment asks the bank on-session.
            required=("invoice_number", "amount", "currency", "due_date", "invoice_url", "card"),
            essential=True,
            whatsapp_params=(
                "customer_name",
                "invoice_number",
                "amount",
                "currency",
                "invoice_url",
            ),
            sample={**_INVOICE, "card": "Visa •••• 4242"},
        ),
        EventSpec(
            E.PAYMENT_METHOD_SAVED,
            Audience.CUSTOMER,
            required=("card", "expiry"),
            optional=("payment_methods_url",),
            whatsapp_params=("customer_name", "card", "expiry"),
            sample={
                "card": "Visa •••• 4242",
                "expiry": "08/2030",
                "payment_methods_url": "https://portal.example.com/accounts/payment-methods/",
            },
        ),
        EventSpec(
            E.PLAN_CHANGED,
            Audience.CUSTOMER,
            # The new limits (add-ons included), as applied on the panel and read back.
            required=("server_name", "old_plan", "new_plan", "memory_mb", "cpu_percent", "disk_mb"),
            optional=("server_url",),
            whatsapp_params=("customer_name", "server_name", "old_plan", "new_plan"),
            sample={
                "server_name": "Survival SMP",
                "old_plan": "Bronze",
                "new_plan": "Silver",
                "memory_mb": "2048",
                "cpu_percent": "200",
                "disk_mb": "10240",
                "server_url": "https://portal.example.com/servers/12/",
            },
        ),
        EventSpec(
            E.PLAN_CHANGE_STAFF,
            Audience.STAFF,
            # A plan change that needs a person: failed on the panel after its retries, or an
            # upgrade paid after the server was cancelled (refunded to credit).
            required=("title", "detail", "admin_url"),
            optional=("server_name", "customer_email"),
            whatsapp_params=("title", "detail", "admin_url"),
            sample={
                "title": "Plan change failed: Survival SMP",
                "detail": "Plan change #7 (Bronze → Silver) could not be applied on the panel "
                "after 8 attempt(s): the panel refused to change the server's limits.",
                "admin_url": "https://portal.example.com/admin/billing/planchange/7/change/",
                "server_name": "Survival SMP",
                "customer_email": "alice@example.com",
            },
        ),
        EventSpec(
            E.WHATSAPP_COMMAND_REPLY,
            Audience.CUSTOMER,
            # reply: help, unknown (help, after "not a command"), status, login_unavailable,
            # login_rate_limited, verified or verify_failed. servers (status): [{name, status,
            # next_due_date}], the status a servers.DeploymentStatus value, worded by the template.
            required=("reply",),
            optional=("servers",),
            worded=("reply", "servers"),
            reply=True,
            sample={
                "reply": "status",
                "servers": [
                    {"name": "Survival SMP", "status": "active", "next_due_date": "2026-12-01"}
                ],
            },
        ),
    ]
}

# Values used for secrets in previews and rendering tests (never real).
SAMPLE_SECRETS = {"panel_username": "alice_1042", "panel_password": "Sample-Pa55word!"}
SAMPLE_CREDENTIALS_URL = "https://portal.example.com/notifications/credentials/sample-token/"


def spec_for(event: str) -> EventSpec:
    try:
        return SPECS[event]
    except KeyError:
        raise ValueError(f"Unknown notification event {event!r}.") from None


def sample_context(event: str) -> dict:
    """A complete context for `event` (previews, tests)."""
    return dict(spec_for(event).sample)
