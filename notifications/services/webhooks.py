"""WhatsApp Cloud API webhooks: the verify handshake and signed status receipts."""

import hashlib
import hmac
import json
import logging

from django.conf import settings

from common.errors import ApplicationError
from notifications.services.deliveries import delivery_status_apply, receipt_time

logger = logging.getLogger(__name__)


class WebhookRejected(ApplicationError):
    default_code = "webhook_rejected"
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
    """Verify X-Hub-Signature-256 and apply every status receipt; returns how many matched.

    Raises WebhookRejected (403: bad signature; 400: not a JSON object) and changes nothing.
    """
    if not whatsapp_signature_valid(body=body, signature_header=signature_header):
        raise WebhookRejected("Invalid signature.", code="invalid_signature")
    try:
        payload = json.loads(body)
    except ValueError:
        raise WebhookRejected("Body is not JSON.", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise WebhookRejected("Body is not a JSON object.", code="invalid_json")
    applied = 0
    for entry in payload.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            value = (change or {}).get("value") or {}
            for status in value.get("statuses") or []:
                if not isinstance(status, dict) or not status.get("id"):
                    continue
                errors = status.get("errors") or []
                error = "; ".join(_error_text(e) for e in errors if isinstance(e, dict))
                delivery = delivery_status_apply(
                    provider_message_id=str(status["id"]),
                    status=str(status.get("status", "")),
                    at=receipt_time(status.get("timestamp")),
                    error=error,
                )
                applied += delivery is not None
    return applied


def _error_text(error: dict) -> str:
    details = (error.get("error_data") or {}).get("details") or ""
    parts = [str(error.get("code", "")), error.get("title") or error.get("message") or "", details]
    return " ".join(str(p) for p in parts if p)[:300]
