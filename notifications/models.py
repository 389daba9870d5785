"""Customer contact profiles, and every message we send: deliveries with their history.

Kept here (not in billing) because every app notifies customers and may import notifications.

Deliveries are state machines (DELIVERY_TRANSITIONS + DeliveryEvent history rows, changed only
through DELIVERY_STATES, a `common.state.StateMachine`). Their bodies are redacted copies:
secrets (panel passwords, one-time links) live only in DeliverySecret / CredentialReveal,
encrypted, and are deleted once they are no longer needed.
"""

from enum import StrEnum

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import F, Q

from common.fields import EncryptedTextField
from common.models import StatusEvent, TimeStampedModel
from common.state import StateMachine, TransitionTable


class Language(models.TextChoices):
    ENGLISH = "en", "English"
    INDONESIAN = "id", "Bahasa Indonesia"


class CustomerProfile(TimeStampedModel):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="customer_profile"
    )
    # E.164, e.g. +6281234567890; validated and normalised by the profile service.
    whatsapp_number = models.CharField(max_length=20, blank=True)
    whatsapp_consent = models.BooleanField(
        default=False, help_text="The customer agreed to receive WhatsApp messages."
    )
    preferred_language = models.CharField(
        max_length=5, choices=Language.choices, default=Language.ENGLISH
    )
    notify_by_email = models.BooleanField(default=True)
    notify_by_whatsapp = models.BooleanField(default=False)
    marketing_opt_in = models.BooleanField(default=False)
    # Per-event channel choices, {"server_ready": ["whatsapp", "email"], ...}; an event not
    # listed uses notify_by_email / notify_by_whatsapp. Written by customer_event_channels_set.
    event_channels = models.JSONField(default=dict, blank=True)
    # The number the customer proved they hold (they sent us "verify <code>" from it:
    # notifications.services.whatsapp_verification). A changed number is unverified by itself.
    whatsapp_verified_number = models.CharField(max_length=20, blank=True)
    whatsapp_verified_at = models.DateTimeField(null=True, blank=True)
    # The pending code: its HMAC only (the page shows it once), the number it is for, expiry
    # and wrong tries (a code dies after WHATSAPP_VERIFICATION_MAX_ATTEMPTS).
    whatsapp_code_digest = models.CharField(max_length=64, blank=True)
    whatsapp_code_number = models.CharField(max_length=20, blank=True)
    whatsapp_code_expires_at = models.DateTimeField(null=True, blank=True)
    whatsapp_code_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        # An inbound WhatsApp message finds its sender's profile by number.
        indexes = [models.Index(fields=["whatsapp_number"], name="profile_whatsapp_number_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(whatsapp_number="") | Q(whatsapp_number__regex=r"^\+[1-9][0-9]{6,14}$"),
                name="profile_whatsapp_e164",
            ),
            # WhatsApp messages need a number and consent.
            models.CheckConstraint(
                condition=Q(notify_by_whatsapp=False)
                | (Q(whatsapp_consent=True) & ~Q(whatsapp_number="")),
                name="profile_whatsapp_needs_number_and_consent",
            ),
        ]

    def __str__(self) -> str:
        return f"Profile of {self.user}"

    @property
    def whatsapp_verified(self) -> bool:
        return bool(self.whatsapp_number) and self.whatsapp_verified_number == self.whatsapp_number


class NotificationEvent(models.TextChoices):
    ORDER_RECEIVED = "order_received", "Order received"
    INVOICE_CREATED = "invoice_created", "Invoice created"
    PAYMENT_RECEIVED = "payment_received", "Payment received"
    PROVISIONING_STARTED = "provisioning_started", "Provisioning started"
    SERVER_READY = "server_ready", "Server ready"
    PROVISIONING_FAILED = "provisioning_failed", "Provisioning delayed/failed (customer)"
    PROVISIONING_FAILED_STAFF = "provisioning_failed_staff", "Provisioning failed (staff)"
    CREDENTIALS_RESENT = "credentials_resent", "Login details resent"
    PANEL_PASSWORD_RESET = "panel_password_reset", "Panel password reset"
    INVOICE_REMINDER = "invoice_reminder", "Invoice reminder"
    INVOICE_OVERDUE = "invoice_overdue", "Invoice overdue"
    SUSPENSION_WARNING = "suspension_warning", "Suspension warning"
    SERVER_SUSPENDED = "server_suspended", "Server suspended"
    SERVER_UNSUSPENDED = "server_unsuspended", "Server unsuspended"
    SERVER_TERMINATED = "server_terminated", "Server terminated"
    DELIVERY_FAILED_STAFF = "delivery_failed_staff", "Message could not be delivered (staff)"
    PAYMENT_REVIEW_STAFF = "payment_review_staff", "Payment needs review (staff)"
    FLEET_ALERT_STAFF = "fleet_alert_staff", "Fleet incident (staff)"
    PROVISIONING_WAITING_CAPACITY = (
        "provisioning_waiting_capacity",
        "Paid order waiting for capacity (customer)",
    )
    ORDER_REFUNDED = "order_refunded", "Order cancelled and refunded (customer)"
    # A live server's lifecycle (billing.services.plan_changes, .cancellations, .autocharge,
    # .credit).
    PLAN_CHANGED = "plan_changed", "Plan changed (customer)"
    PLAN_CHANGE_STAFF = "plan_change_staff", "Plan change (staff)"
    CANCELLATION_SCHEDULED = "cancellation_scheduled", "Cancellation scheduled (customer)"
    CANCELLATION_REVOKED = "cancellation_revoked", "Cancellation revoked (customer)"
    CANCELLATION_STAFF = "cancellation_staff", "Cancellation (staff)"
    AUTOCHARGE_FAILED = "autocharge_failed", "Automatic payment declined (customer)"
    PAYMENT_ACTION_REQUIRED = "payment_action_required", "Payment needs the customer (SCA)"
    PAYMENT_METHOD_SAVED = "payment_method_saved", "Card saved (customer)"
    CREDIT_ADDED = "credit_added", "Account credit added (customer)"
    # The answer to a command the customer wrote to our WhatsApp number (notifications.commands).
    WHATSAPP_COMMAND_REPLY = "whatsapp_command_reply", "Reply to a WhatsApp command (customer)"


class Channel(models.TextChoices):
    WHATSAPP = "whatsapp", "WhatsApp"
    EMAIL = "email", "Email"


class Audience(models.TextChoices):
    CUSTOMER = "customer", "Customer"
    STAFF = "staff", "Staff"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    READ = "read", "Read"
    FAILED = "failed", "Failed"


D = DeliveryStatus
# Provider receipts arrive out of order: a status only moves forward (sent < delivered < read);
# WhatsApp may report "failed" after "sent". Staff may put a failed delivery back in the queue.
DELIVERY_TRANSITIONS = TransitionTable(
    "Delivery",
    {
        D.QUEUED: {D.SENT, D.FAILED},
        D.SENT: {D.DELIVERED, D.READ, D.FAILED},
        D.DELIVERED: {D.READ},
        D.READ: set(),
        D.FAILED: {D.QUEUED},
    },
)
# Position in the sent -> delivered -> read order; a receipt never moves a delivery back.
# Keyed by the plain status strings too (a receipt's status, a row's status field).
DELIVERY_PROGRESS: dict[str, int] = {D.QUEUED: 0, D.SENT: 1, D.DELIVERED: 2, D.READ: 3}


class Delivery(TimeStampedModel):
    """One message to one recipient on one channel for one occurrence (`event_key`) of an event."""

    event = models.CharField(max_length=40, choices=NotificationEvent.choices)
    # The caller's idempotency key for this occurrence, e.g. "server_ready:deployment-12".
    event_key = models.CharField(max_length=200)
    audience = models.CharField(max_length=10, choices=Audience.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notification_deliveries",
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    # Email address or E.164 number.
    recipient = models.CharField(max_length=254)
    language = models.CharField(max_length=5, choices=Language.choices, default=Language.ENGLISH)
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=D.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    # What the templates receive (never a secret: those are in DeliverySecret).
    context = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    # Which template rendered the message: "file:notifications/...", "db:<id>", "wa:<name>/<lang>".
    template = models.CharField(max_length=200, blank=True)
    # Redacted copy of what was sent (secrets shown as ********).
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    last_error = models.TextField(blank=True, help_text="Redacted.")
    # Set on a delivery created because another channel failed (e.g. WhatsApp -> email).
    fallback_for = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="fallback"
    )
    # A worker is sending until then (no HTTP call is made under a row lock).
    lease_until = models.DateTimeField(null=True, blank=True)
    # When the next attempt is due; the sweeper re-enqueues queued deliveries long past it.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name_plural = "deliveries"
        # Group lookups (event, event_key) use the unique index; receipts use the partial
        # unique index on (channel, provider_message_id); the sweeper uses this one.
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "event_key", "recipient", "channel"],
                name="delivery_unique_per_recipient_channel",
            ),
            models.UniqueConstraint(
                fields=["channel", "provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="delivery_unique_provider_message_id",
            ),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="delivery_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(event__in=NotificationEvent.values), name="delivery_event_valid"
            ),
            models.CheckConstraint(
                condition=Q(audience__in=Audience.values), name="delivery_audience_valid"
            ),
            models.CheckConstraint(condition=Q(attempts__gte=0), name="delivery_attempts_gte_0"),
            models.CheckConstraint(
                condition=~Q(audience=Audience.STAFF) | Q(user__isnull=True),
                name="delivery_staff_has_no_customer",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[D.QUEUED, D.FAILED]) | Q(sent_at__isnull=False),
                name="delivery_sent_has_timestamp",
            ),
            models.CheckConstraint(
                condition=~Q(status=D.FAILED) | Q(failed_at__isnull=False),
                name="delivery_failed_has_timestamp",
            ),
            models.CheckConstraint(
                condition=Q(fallback_for__isnull=True) | ~Q(fallback_for=F("pk")),
                name="delivery_fallback_not_self",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} to {self.recipient} via {self.channel} #{self.pk}"


class DeliveryEvent(StatusEvent):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="events")

    class Meta(StatusEvent.Meta):
        pass


# Deliveries move and record history only through this (common.state.StateMachine).
DELIVERY_STATES = StateMachine(
    table=DELIVERY_TRANSITIONS, event_model=DeliveryEvent, event_fk="delivery"
)


class DeliverySecret(models.Model):
    """What a queued delivery needs at send time but must never store in its body.

    CREDENTIALS_DELIVERY=inline: the secrets themselves; =link: the one-time reveal URL. JSON,
    encrypted at rest. Deleted when the delivery is finished (email sent; WhatsApp delivered,
    read or failed) and by the purge job after `expires_at`. A fallback delivery gets a copy.
    """

    delivery = models.OneToOneField(
        Delivery, on_delete=models.CASCADE, primary_key=True, related_name="secret"
    )
    values = EncryptedTextField()
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"Secret of delivery #{self.pk}"


class CredentialsLinkState(StrEnum):
    """What a one-time credentials link is now (derived, not stored): the reveal page shows it
    and CredentialsLinkError's code is "credentials_link_" + it."""

    VALID = "valid"
    USED = "used"
    REVOKED = "revoked"
    EXPIRED = "expired"
    INVALID = "invalid"  # no such link, or another customer's
    OPENED = "opened"  # already opened in another browser session
    REVEALED = "revealed"  # the page that shows the login details, once


class CredentialReveal(models.Model):
    """A one-time, expiring page that shows a customer their login details after login.

    Only the SHA-256 of the token is stored; the secrets (encrypted JSON) are wiped when revealed.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credential_reveals"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    # What the login details are for (e.g. "deployment-12"): a newer link of the same scope
    # revokes the older ones.
    scope = models.CharField(max_length=100, blank=True)
    secrets = EncryptedTextField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    # The link's token is exchanged on first open for a reference kept in that session, so a
    # token copied from an access log or browser history no longer opens anything.
    opened_at = models.DateTimeField(null=True, blank=True)
    revealed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(revealed_at__isnull=True) | Q(secrets__isnull=True),
                name="credential_reveal_wiped_when_revealed",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("created_at")),
                name="credential_reveal_expires_after_creation",
            ),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True) | Q(secrets__isnull=True),
                name="credential_reveal_wiped_when_revoked",
            ),
        ]
        indexes = [
            models.Index(
                fields=["user", "scope"],
                condition=Q(revealed_at__isnull=True, revoked_at__isnull=True),
                name="credential_reveal_open_idx",
            )
        ]

    def __str__(self) -> str:
        return f"Credential link #{self.pk} for {self.user}"


class CredentialsResendRequest(models.Model):
    """One accepted "send my login info again" request (the rate limit counts these)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["user", "key", "created_at"], name="resend_window_idx")]

    def __str__(self) -> str:
        return f"Resend {self.key} for {self.user} at {self.created_at}"


class NotificationTemplate(TimeStampedModel):
    """A staff-edited template that overrides the file default for (event, language, channel).

    Django template syntax; the context is the event's (see notifications.events). Email: subject
    and plain-text body, optional HTML (otherwise the text is laid out in the default HTML frame).
    WhatsApp: body only (a text message; approved Cloud API templates are configured in settings).
    """

    event = models.CharField(max_length=40, choices=NotificationEvent.choices)
    language = models.CharField(max_length=5, choices=Language.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField()
    body_html = models.TextField(blank=True, help_text="Optional; email only.")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ("event", "language", "channel")
        constraints = [
            models.UniqueConstraint(
                fields=["event", "language", "channel"], name="notification_template_unique"
            ),
            models.CheckConstraint(
                condition=Q(event__in=NotificationEvent.values), name="template_event_valid"
            ),
            models.CheckConstraint(
                condition=Q(language__in=Language.values), name="template_language_valid"
            ),
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="template_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(channel=Channel.WHATSAPP) | ~Q(subject=""),
                name="template_email_has_subject",
            ),
            models.CheckConstraint(
                condition=Q(channel=Channel.EMAIL) | Q(body_html=""),
                name="template_html_only_for_email",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_display()} / {self.language} / {self.channel}"

    def clean(self) -> None:
        from notifications.rendering import template_validate

        template_validate(self)


class InboundCommand(models.TextChoices):
    """What an inbound WhatsApp message asked for (notifications.commands parses it)."""

    STATUS = "status", "Status"
    HELP = "help", "Help"
    LOGIN = "login", "Login"
    VERIFY = "verify", "Verify this number"
    UNKNOWN = "unknown", "Not a command"
    NONE = "", "Not text"


class InboundOutcome(models.TextChoices):
    PENDING = "pending", "Pending"
    ANSWERED = "answered", "Answered"
    # Nothing private is ever sent to these: no reply at all (see notifications.commands).
    UNLINKED = "unlinked", "Number not verified on exactly one account"
    RATE_LIMITED = "rate_limited", "Too many commands from this number"
    IGNORED = "ignored", "Ignored (not text, too old, or WhatsApp disabled)"
    FAILED = "failed", "Failed"


class InboundMessage(TimeStampedModel):
    """One message a customer sent to our WhatsApp number, answered at most once.

    The Cloud API redelivers webhooks: the unique provider message id makes a redelivery find
    this row and enqueue nothing. The text itself is never stored (a customer may paste a
    password into the chat): only the command it was read as.
    """

    provider_message_id = models.CharField(max_length=255)
    # The sender's number, E.164 (WhatsApp's wa_id with a "+").
    sender = models.CharField(max_length=20)
    message_type = models.CharField(max_length=20)
    command = models.CharField(
        max_length=10, choices=InboundCommand.choices, blank=True, default=InboundCommand.NONE
    )
    # When the customer sent it (WhatsApp's timestamp).
    sent_at = models.DateTimeField(null=True, blank=True)
    # "verify <code>": the code's HMAC (as on the profile), never the code.
    argument_digest = models.CharField(max_length=64, blank=True)
    # The account the number belongs to, if exactly one consenting profile has it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="whatsapp_inbound_messages",
    )
    outcome = models.CharField(
        max_length=20, choices=InboundOutcome.choices, default=InboundOutcome.PENDING
    )
    handled_at = models.DateTimeField(null=True, blank=True)
    # The answer (a whatsapp_command_reply, or the credentials_resent message of "login").
    reply = models.ForeignKey(
        Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ("-created_at", "-id")
        # The rate limit counts a number's answered commands in a recent window.
        indexes = [
            models.Index(fields=["sender", "handled_at"], name="inbound_sender_handled_idx"),
            # The sweeper's "still pending" scan (few rows: answered within seconds).
            models.Index(
                fields=["created_at"],
                name="inbound_pending_idx",
                condition=models.Q(outcome="pending"),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["provider_message_id"], name="inbound_unique_provider_message_id"
            ),
            models.CheckConstraint(
                condition=Q(outcome__in=InboundOutcome.values), name="inbound_outcome_valid"
            ),
            models.CheckConstraint(
                condition=Q(command__in=InboundCommand.values), name="inbound_command_valid"
            ),
            models.CheckConstraint(
                condition=Q(outcome=InboundOutcome.PENDING, handled_at__isnull=True)
                | (~Q(outcome=InboundOutcome.PENDING) & Q(handled_at__isnull=False)),
                name="inbound_handled_has_timestamp",
            ),
            # Only an answered message has a reply.
            models.CheckConstraint(
                condition=Q(reply__isnull=True) | Q(outcome=InboundOutcome.ANSWERED),
                name="inbound_reply_only_when_answered",
            ),
        ]

    def __str__(self) -> str:
        return f"WhatsApp from {self.sender} ({self.command or self.message_type}) #{self.pk}"
