"""Messages customers send to our WhatsApp number: stored once, answered once, in a task.

1. The webhook (services/webhooks.py) hands the `messages` of a signed body to
   `whatsapp_messages_record`: one InboundMessage per provider message id (unique), and the
   `notifications.whatsapp_command` task enqueued after commit for new rows only. A redelivered
   webhook finds its rows and enqueues nothing: no message is answered twice.
2. The task runs `whatsapp_command_answer`: under a lock on the row (and on the customer's
   profile, which serialises the rate limit), it decides and records the outcome, and queues the
   reply as a normal Delivery to the number that wrote (the deliver task sends it: logged,
   retried, redacted like every message; a failed WhatsApp reply falls back to email).

Who gets an answer: a number is linked when exactly one active customer has it on their
profile with WhatsApp consent and verified it (they sent us "verify <code>" from it, the code
shown on their profile page: services/whatsapp_verification.py). WhatsApp itself
authenticates the sender (the webhook is signed by Meta), so the answer only ever goes to the
holder of that number. Unknown, unverified and shared numbers get NO reply at all (not even
"not linked"): nothing to tell whether an account exists, and nothing to spam with; a "verify"
is answered only when a profile waits for a code from that number. The message text is never
stored, only the command read from it (and a verify code's HMAC).
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from notifications.commands import (
    CommandReply,
    CommandRequest,
    command_handler_for,
)
from notifications.events import spec_for
from notifications.models import (
    Audience,
    Channel,
    CustomerProfile,
    Delivery,
    InboundCommand,
    InboundMessage,
    InboundOutcome,
    NotificationEvent,
)
from notifications.services.delivery_rows import deliveries_queued
from notifications.services.sending import SECRET_LIKE_KEY
from notifications.services.whatsapp_verification import whatsapp_verification_confirm

logger = logging.getLogger(__name__)

# WhatsApp accepts a free-form reply only within 24 h of the customer's message; an older
# message (a webhook redelivered for days) is not answered.
REPLY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class InboundText:
    """One message of a webhook body, as parsed by services/webhooks.py (text never kept)."""

    message_id: str
    sender: str  # E.164
    message_type: str
    command: str
    sent_at: datetime | None
    argument_digest: str = ""


def whatsapp_messages_record(messages: list[InboundText]) -> int:
    """Store each new message once and enqueue its answer after commit; returns how many were
    new (a redelivered message is found by its unique id and nothing is enqueued)."""
    if not messages:
        return 0
    from notifications.tasks import whatsapp_command

    created = 0
    with transaction.atomic():
        for message in messages:
            row, was_created = InboundMessage.objects.get_or_create(
                provider_message_id=message.message_id,
                defaults={
                    "sender": message.sender,
                    "message_type": message.message_type,
                    "command": message.command,
                    "sent_at": message.sent_at,
                    "argument_digest": message.argument_digest,
                },
            )
            if was_created:
                created += 1
                whatsapp_command.delay_on_commit(row.pk)
    if created:
        logger.info("whatsapp: %s inbound message(s) recorded", created)
    return created


# A message still pending this long after it came in lost its task (broker down at commit, the
# message dropped): the sweeper enqueues it again.
PENDING_RESUME_AFTER = timedelta(minutes=2)


def whatsapp_commands_resume_pending(*, limit: int = 200) -> int:
    """Enqueue again the answer of messages still pending after PENDING_RESUME_AFTER (beat,
    every minute, with the deliveries' sweeper); returns how many. Answering twice is safe (the
    row is locked and a handled message is left alone); one past REPLY_WINDOW is marked ignored
    by the task, so nothing stays pending."""
    from notifications.tasks import whatsapp_command

    stale = list(
        InboundMessage.objects.filter(
            outcome=InboundOutcome.PENDING,
            created_at__lt=timezone.now() - PENDING_RESUME_AFTER,
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    for inbound_id in stale:
        whatsapp_command.delay_on_commit(inbound_id)
    if stale:
        logger.warning("whatsapp: %s unanswered inbound message(s) enqueued again", len(stale))
    return len(stale)


def whatsapp_command_answer(*, inbound_id: int) -> str:
    """Decide and record what the inbound message gets (what the task runs); returns the
    outcome. Safe to run twice: a message already handled is left alone."""
    with transaction.atomic():
        inbound = InboundMessage.objects.select_for_update().filter(pk=inbound_id).first()
        if inbound is None:
            logger.warning("whatsapp inbound message %s does not exist", inbound_id)
            return "missing"
        if inbound.outcome != InboundOutcome.PENDING:
            return inbound.outcome
        outcome, reply = _answer(inbound)
        inbound.outcome = outcome
        inbound.handled_at = timezone.now()
        inbound.reply = reply
        inbound.save(update_fields=["outcome", "handled_at", "reply", "user", "updated_at"])
    logger.info("whatsapp inbound message %s (%s): %s", inbound.pk, inbound.command or "-", outcome)
    return outcome


def _answer(inbound: InboundMessage) -> tuple[str, Delivery | None]:
    if not settings.WHATSAPP_ENABLED:
        return InboundOutcome.IGNORED, None
    if inbound.message_type != "text" or not inbound.command:
        return InboundOutcome.IGNORED, None
    sent_at = inbound.sent_at or inbound.created_at
    if sent_at < timezone.now() - REPLY_WINDOW:
        return InboundOutcome.IGNORED, None
    if inbound.command == InboundCommand.VERIFY:
        return _verify(inbound)
    profile = _linked_profile(inbound.sender)
    if profile is None:
        return InboundOutcome.UNLINKED, None
    inbound.user = profile.user
    if _rate_limited(inbound):
        logger.warning("whatsapp commands from user %s rate limited", profile.user_id)
        return InboundOutcome.RATE_LIMITED, None
    request = CommandRequest(
        inbound_id=inbound.pk,
        command=inbound.command,
        user=profile.user,
        language=profile.preferred_language,
        sender=inbound.sender,
    )
    try:
        with transaction.atomic():  # a failing handler leaves nothing half-written
            reply = _dispatch(request)
            delivery = reply.sent or _reply_queue(inbound, request=request, reply=reply)
    except Exception as exc:
        # The type only: an exception's text could quote what the customer wrote.
        logger.error(
            "whatsapp command %s of message %s failed: %s",
            inbound.command,
            inbound.pk,
            type(exc).__name__,
        )
        return InboundOutcome.FAILED, None
    return InboundOutcome.ANSWERED, delivery


def _verify(inbound: InboundMessage) -> tuple[str, Delivery | None]:
    """ "verify <code>": answered only when a profile waits for a code from this number (the
    customer asked for one on their profile page); anyone else gets silence."""
    if _rate_limited(inbound):
        return InboundOutcome.RATE_LIMITED, None
    result = whatsapp_verification_confirm(sender=inbound.sender, digest=inbound.argument_digest)
    if result.profile is None:
        return InboundOutcome.UNLINKED, None
    inbound.user = result.profile.user
    request = CommandRequest(
        inbound_id=inbound.pk,
        command=inbound.command,
        user=result.profile.user,
        language=result.profile.preferred_language,
        sender=inbound.sender,
    )
    reply = CommandReply(reply="verified" if result.verified else "verify_failed")
    return InboundOutcome.ANSWERED, _reply_queue(inbound, request=request, reply=reply)


def _linked_profile(sender: str) -> CustomerProfile | None:
    """The one consenting, active customer who verified this number (locked), else None."""
    profiles = list(
        CustomerProfile.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(
            whatsapp_number=sender,
            whatsapp_verified_number=sender,
            whatsapp_consent=True,
            user__is_active=True,
        )
        .order_by("pk")[:2]
    )
    if len(profiles) != 1:
        if profiles:
            logger.warning("whatsapp number on %s+ accounts: commands not answered", len(profiles))
        return None
    return profiles[0]


def _rate_limited(inbound: InboundMessage) -> bool:
    """At most WHATSAPP_COMMAND_REPLY_LIMIT answers per number per window (serialised by the
    profile lock taken in _linked_profile): a loop or a flood gets silence, not replies."""
    window = timedelta(seconds=settings.WHATSAPP_COMMAND_REPLY_WINDOW_SECONDS)
    answered = InboundMessage.objects.filter(
        sender=inbound.sender,
        outcome=InboundOutcome.ANSWERED,
        handled_at__gt=timezone.now() - window,
    ).count()
    return answered >= settings.WHATSAPP_COMMAND_REPLY_LIMIT


def _dispatch(request: CommandRequest) -> CommandReply:
    if request.command in (InboundCommand.STATUS, InboundCommand.LOGIN):
        handler = command_handler_for(request.command)
        if handler is not None:
            return handler(request)
        logger.warning("no handler registered for whatsapp command %s", request.command)
    if request.command == InboundCommand.HELP:
        return CommandReply(reply="help")
    return CommandReply(reply="unknown")


def _reply_queue(
    inbound: InboundMessage, *, request: CommandRequest, reply: CommandReply
) -> Delivery:
    """A whatsapp_command_reply to the number that wrote, queued like every message (the
    customer's channel preferences do not apply: they asked here)."""
    event = NotificationEvent.WHATSAPP_COMMAND_REPLY
    context = {"reply": reply.reply, **reply.context}
    leaked = sorted(k for k in context if SECRET_LIKE_KEY.search(str(k)))
    if leaked:
        raise ValueError(f"A command reply carries no secrets ({', '.join(leaked)}).")
    missing = [k for k in spec_for(event).required if context.get(k) in (None, "")]
    if missing:
        raise ValueError(f"A command reply needs {', '.join(missing)}.")
    delivery, created = Delivery.objects.get_or_create(
        event=event,
        event_key=f"whatsapp_command:inbound-{inbound.pk}",
        recipient=inbound.sender,
        channel=Channel.WHATSAPP,
        defaults={
            "audience": Audience.CUSTOMER,
            "user": request.user,
            "language": request.language,
            "context": context,
            "next_attempt_at": timezone.now(),
        },
    )
    if created:
        deliveries_queued([delivery], reason=f"reply to WhatsApp message {inbound.pk}")
    return delivery
