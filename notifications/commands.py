"""WhatsApp commands: what a customer's message asks for, and who answers it.

A customer writes "status", "help" or "login" (any case, surrounding spaces and a leading "!"
or "/" ignored, as the seeds write "!help"; Indonesian "bantuan" is help; only the first word
counts) to our WhatsApp number. notifications stores the message (services/inbound.py) and
answers "help" and anything it does not understand itself (the help text). "status" and "login"
need servers and panel logins, which live in apps that import notifications, not the other way
round: those apps register a handler here at startup (provisioning: ProvisioningConfig.ready ->
provisioning.whatsapp_commands). Explicit dependency inversion, like provisioning.listeners: no
signal, one named call from one place (services/inbound.py).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User

from notifications.models import Delivery, InboundCommand

# The words of each command (lower case). The seeds' customer messages say "Bantuan: !help" and
# "Status server: !server-status {SERVER_ID}" (the id is ignored: every server is listed).
COMMAND_WORDS: dict[str, InboundCommand] = {
    "status": InboundCommand.STATUS,
    "server-status": InboundCommand.STATUS,
    "help": InboundCommand.HELP,
    "bantuan": InboundCommand.HELP,
    "login": InboundCommand.LOGIN,
    # "verify 123456" proves the number (notifications.services.whatsapp_verification).
    "verify": InboundCommand.VERIFY,
    "verifikasi": InboundCommand.VERIFY,
}


def command_parse(text: str) -> InboundCommand:
    """The command a text message asks for; UNKNOWN when it is not one."""
    words = text[:200].strip().split(maxsplit=1)
    if not words:
        return InboundCommand.UNKNOWN
    word = words[0].lower().lstrip("!/").rstrip(".!?,:")
    return COMMAND_WORDS.get(word, InboundCommand.UNKNOWN)


def command_argument(text: str) -> str:
    """The word after the command ("verify 123 456" -> "123456": the code with any spaces or
    dashes a phone keyboard adds taken out); "" when there is none."""
    words = text[:200].strip().split(maxsplit=1)
    if len(words) < 2:
        return ""
    return "".join(ch for ch in words[1] if ch in "0123456789")[:12]


@dataclass(frozen=True)
class CommandRequest:
    """A command from a number linked to exactly one customer (see services/inbound.py)."""

    inbound_id: int
    command: str
    user: User
    language: str
    sender: str


@dataclass(frozen=True)
class CommandReply:
    """What the handler answers: a `whatsapp_command_reply` of kind `reply` with `context`
    (display-ready, no secrets), or `sent`: a message the handler queued itself (e.g. login's
    `credentials_resent`, through the one-time credentials link flow)."""

    reply: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    sent: Delivery | None = None


CommandHandler = Callable[[CommandRequest], CommandReply]

_handlers: dict[str, CommandHandler] = {}


def command_handler_register(command: str, handler: CommandHandler) -> None:
    """Answer `command` with `handler` (called inside the transaction that marks the inbound
    message answered; it may queue messages with notification_send, and must not call out)."""
    if command not in (InboundCommand.STATUS, InboundCommand.LOGIN):
        raise ValueError(f"Only status and login are answered by other apps, not {command!r}.")
    _handlers[command] = handler


def command_handler_for(command: str) -> CommandHandler | None:
    return _handlers.get(command)
