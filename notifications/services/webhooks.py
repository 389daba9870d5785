"""WhatsApp Cloud API webhooks: the verify handshake, signed status receipts and the messages
customers send us (handed to services/inbound.py, answered in a task)."""

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from common.errors import ApplicationError
from common.jsonsafe import json_loads_bounded
from notifications.commands import command_argument, command_parse
from notifications.errors import NotificationErrorCode
from notifications.models import InboundCommand
from notifications.services.inbound import InboundText, whatsapp_messages_record
from notifications.services.receipts import delivery_status_apply, receipt_time
from notifications.services.recipients import E164
from notifications.services.whatsapp_verification import verification_code_digest

logger = logging.getLogger(__name__)


class WebhookRejected(ApplicationError):
    default_code = NotificationErrorCode.WEBHOOK_REJECTED
    http_status = 403


def whatsapp_webhook_handshake(*, mode: str, verify_token: str, challenge: str) -> str | None:
    """The challenge to echo if this is our subscription handshake, else None."""
    expected = settings.WHATSAPP_WEBHOOK_VERIFY_TOKEN
    if (
        mode == "subscribe"
        and expected
        and hmac.compare_digest(verify_token.encode(), expected.encode())
    ):
        return challenge
    return None


def whatsapp_signature_valid(*, body: bytes, signature_header: str) -> bool:
    secret = settings.WHATSAPP_APP_SECRET
    if not secret or not signature_header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # Bytes: compare_digest raises on non-ASCII str, which must be a 403, not a 500.
    return hmac.compare_digest(signature_header.removeprefix("sha256=").encode(), expected.encode())


def whatsapp_webhook_receive(*, body: bytes, signature_header: str) -> int:
    """Verify X-Hub-Signature-256, apply every status receipt and record every inbound
    message (answered later by a task); returns how many receipts matched.

    Raises WebhookRejected (403: bad signature; 400: not JSON, nested too deep, or not shaped
    as Meta documents it) and then changes nothing: the whole body is read before any receipt
    is applied, so a malformed part cannot leave the valid parts before it half-applied.
    """
    if not whatsapp_signature_valid(body=body, signature_header=signature_header):
        raise WebhookRejected("Invalid signature.", code=NotificationErrorCode.INVALID_SIGNATURE)
    try:
        # Bounded: json.loads raises RecursionError (not ValueError) on very deep nesting.
        payload = json_loads_bounded(body)
    except ValueError:
        raise WebhookRejected(
            "Body is not JSON or is nested too deeply.", code=NotificationErrorCode.INVALID_JSON
        ) from None
    if not isinstance(payload, dict):
        raise WebhookRejected("Body is not a JSON object.", code=NotificationErrorCode.INVALID_JSON)
    receipts = _status_receipts(payload)
    messages = _inbound_messages(payload)
    applied = 0
    for receipt in receipts:
        delivery = delivery_status_apply(
            provider_message_id=receipt.message_id,
            status=receipt.status,
            at=receipt.at,
            error=receipt.error,
        )
        applied += delivery is not None
    whatsapp_messages_record(messages)
    return applied


@dataclass(frozen=True)
class StatusReceipt:
    message_id: str
    status: str
    at: datetime | None
    error: str


def _status_receipts(payload: dict[str, Any]) -> list[StatusReceipt]:
    """Every receipt in entry[].changes[].value.statuses[]; absent or null parts are empty,
    anything else of the wrong type is refused (invalid_payload)."""
    receipts = []
    for entry in _list(payload, "entry"):
        for change in _list(_object(entry, "entry"), "changes"):
            value = _object(change, "change").get("value")
            if value is None:
                continue
            for status in _list(_object(value, "value"), "statuses"):
                receipts.append(_status_receipt(_object(status, "status")))
    return receipts


def _status_receipt(status: dict[str, Any]) -> StatusReceipt:
    message_id, state = status.get("id"), status.get("status", "")
    # Our column holds 255; PostgreSQL refuses NUL in text, so such an id cannot be ours.
    if not isinstance(message_id, str) or not 0 < len(message_id) <= 255:
        raise _malformed("a status id is not a message id")
    if not isinstance(state, str) or len(state) > 20 or not (message_id + state).isprintable():
        raise _malformed("a status is not a message status")
    errors = [_error_text(_object(error, "error")) for error in _list(status, "errors")]
    return StatusReceipt(
        message_id=message_id,
        status=state,
        at=receipt_time(status.get("timestamp")),
        error="; ".join(errors),
    )


def _inbound_messages(payload: dict[str, Any]) -> list[InboundText]:
    """Every message in entry[].changes[].value.messages[] sent to our number (a value whose
    metadata names another phone number id of the same app is not ours to answer)."""
    ours = settings.WHATSAPP_PHONE_NUMBER_ID
    messages = []
    for entry in _list(payload, "entry"):
        for change in _list(_object(entry, "entry"), "changes"):
            value = _object(change, "change").get("value")
            if value is None:
                continue
            value = _object(value, "value")
            number_id = _object(value.get("metadata") or {}, "metadata").get("phone_number_id")
            for message in _list(value, "messages"):
                parsed = _inbound_message(_object(message, "message"))
                if parsed is None:
                    continue
                if ours and number_id is not None and str(number_id) != ours:
                    logger.warning("whatsapp message for another phone number id ignored")
                    continue
                messages.append(parsed)
    return messages


def _inbound_message(message: dict[str, Any]) -> InboundText | None:
    message_id, sender = message.get("id"), message.get("from")
    message_type = message.get("type") or ""
    if not isinstance(message_id, str) or not 0 < len(message_id) <= 255:
        raise _malformed("a message id is not a message id")
    if not message_id.isprintable():
        raise _malformed("a message id is not a message id")
    if not isinstance(message_type, str):
        raise _malformed("a message type is not text")
    number = "+" + sender.strip().lstrip("+") if isinstance(sender, str) else ""
    if not E164.match(number):
        # Not a number we could ever have on a profile: nothing to answer, nothing to keep.
        logger.warning("whatsapp message from a sender that is not a phone number ignored")
        return None
    command, argument_digest = InboundCommand.NONE, ""
    if message_type == "text":
        body = _object(message.get("text") or {}, "text").get("body") or ""
        if not isinstance(body, str):
            raise _malformed("a text message body is not text")
        command = command_parse(body)
        if command == InboundCommand.VERIFY and (code := command_argument(body)):
            # Only the code's HMAC is kept, as on the profile.
            argument_digest = verification_code_digest(code)
    return InboundText(
        message_id=message_id,
        sender=number,
        message_type=message_type[:20] if message_type.isprintable() else "unknown",
        command=command,
        sent_at=receipt_time(message.get("timestamp")),
        argument_digest=argument_digest,
    )


def _error_text(error: dict[str, Any]) -> str:
    details = _object(error.get("error_data") or {}, "error_data").get("details") or ""
    parts = [str(error.get("code", "")), error.get("title") or error.get("message") or "", details]
    text = " ".join(str(p) for p in parts if p)
    return text.replace("\x00", "")[:300]  # PostgreSQL refuses NUL in text


def _list(parent: dict[str, Any], key: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _malformed(f"{key} is not a list")
    return value


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _malformed(f"{what} is not an object")
    return value


def _malformed(reason: str) -> WebhookRejected:
    # The reason names the part only, never a value from the body.
    return WebhookRejected(
        f"Body is not a WhatsApp webhook: {reason}.", code=NotificationErrorCode.INVALID_PAYLOAD
    )
