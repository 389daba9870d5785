"""The one module that speaks to the WhatsApp Cloud API (Graph API messages endpoint).

POST {WHATSAPP_API_BASE_URL}/{WHATSAPP_PHONE_NUMBER_ID}/messages with a Bearer token, with
timeouts. Results are typed; errors are ours: WhatsAppRetryableError (timeouts, connection
errors, 5xx, 429 and Graph rate-limit codes) or WhatsAppPermanentError (invalid recipient,
parameter errors, 401/403 auth). The access token is never put in a log, an exception or a row.
"""

import logging
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from common.logging import redact

logger = logging.getLogger(__name__)

# Graph / Cloud API error codes that mean "slow down / try later".
RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056})
# Temporary platform errors ("unknown", "service temporarily unavailable", "something went wrong").
TEMPORARY_CODES = frozenset({1, 2, 131000, 131016})
# Authentication / permission problems: our configuration is wrong, staff must act.
AUTH_CODES = frozenset({0, 3, 10, 190, 200, 131005})


class WhatsAppError(Exception):
    """A send failed. `message` is redacted and safe to log or store."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class WhatsAppRetryableError(WhatsAppError):
    retryable = True


class WhatsAppPermanentError(WhatsAppError):
    retryable = False

    def __init__(self, message: str, *, auth: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.auth = auth


class WhatsAppNotConfigured(WhatsAppPermanentError):
    def __init__(self, message: str) -> None:
        super().__init__(message, auth=True)


@dataclass(frozen=True)
class WhatsAppSendResult:
    message_id: str
    wa_id: str = ""


class WhatsAppClient:
    def __init__(
        self,
        *,
        base_url: str,
        phone_number_id: str,
        access_token: str,
        timeout: tuple[float, float] = (5.0, 15.0),
        session: requests.Session | None = None,
    ) -> None:
        if not (base_url and phone_number_id and access_token):
            raise WhatsAppNotConfigured(
                "WhatsApp is not configured (WHATSAPP_PHONE_NUMBER_ID / WHATSAPP_ACCESS_TOKEN)."
            )
        self._url = f"{base_url.rstrip('/')}/{phone_number_id}/messages"
        self._token = access_token
        self._timeout = timeout
        self._session = session or requests.Session()

    def send_text(self, *, to: str, body: str, preview_url: bool = True) -> WhatsAppSendResult:
        return self._send(
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": _wa_number(to),
                "type": "text",
                "text": {"body": body[:4096], "preview_url": preview_url},
            }
        )

    def send_template(
        self, *, to: str, name: str, language: str, parameters: list[str]
    ) -> WhatsAppSendResult:
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if parameters:
            template["components"] = [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": value} for value in parameters],
                }
            ]
        return self._send(
            {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": _wa_number(to),
                "type": "template",
                "template": template,
            }
        )

    def _send(self, payload: dict[str, Any]) -> WhatsAppSendResult:
        try:
            response = self._session.post(
                self._url,
                json=payload,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self._timeout,
            )
        except requests.ConnectTimeout as exc:
            raise WhatsAppRetryableError("WhatsApp API could not be reached in time.") from _clean(
                exc
            )
        except requests.ReadTimeout as exc:
            # The message may have been accepted: WhatsApp has no idempotency key, so a retry
            # could deliver it twice. Treated as failed: the other channel carries it instead.
            raise WhatsAppPermanentError(
                "WhatsApp API did not answer in time; the outcome is unknown, not retried."
            ) from _clean(exc)
        except requests.ConnectionError as exc:
            if _never_sent(exc):
                raise WhatsAppRetryableError("WhatsApp API could not be reached.") from _clean(exc)
            raise WhatsAppPermanentError(
                "The connection to the WhatsApp API broke after sending; the outcome is unknown, "
                "not retried."
            ) from _clean(exc)
        except requests.RequestException as exc:
            raise WhatsAppRetryableError(
                f"WhatsApp API request failed ({type(exc).__name__})."
            ) from _clean(exc)
        if response.status_code >= 400:
            raise self._error(response)
        try:
            data = response.json()
            message_id = str(data["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError):
            # The request may have been accepted: retrying could send it twice.
            raise WhatsAppPermanentError(
                f"WhatsApp API answered {response.status_code} without a message id.",
                status=response.status_code,
            ) from None
        contacts = data.get("contacts") or [{}]
        return WhatsAppSendResult(message_id=message_id, wa_id=str(contacts[0].get("wa_id", "")))

    def _error(self, response: requests.Response) -> WhatsAppError:
        status = response.status_code
        code: int | None = None
        detail = ""
        try:
            error = response.json().get("error") or {}
            code = int(error["code"]) if "code" in error else None
            details = (error.get("error_data") or {}).get("details") or ""
            detail = " ".join(str(part) for part in (error.get("message"), details) if part)
        except (ValueError, AttributeError, TypeError):
            pass
        message = self._safe(
            f"WhatsApp API {status}"
            + (f" code {code}" if code is not None else "")
            + (f": {detail[:300]}" if detail else "")
        )
        retry_after = _retry_after(response)
        if status == 429 or code in RATE_LIMIT_CODES:
            return WhatsAppRetryableError(
                message, status=status, code=code, retry_after=retry_after
            )
        if status >= 500 or code in TEMPORARY_CODES:
            return WhatsAppRetryableError(
                message, status=status, code=code, retry_after=retry_after
            )
        if status in (401, 403) or code in AUTH_CODES:
            return WhatsAppPermanentError(message, status=status, code=code, auth=True)
        return WhatsAppPermanentError(message, status=status, code=code)

    def _safe(self, text: str) -> str:
        return redact(text.replace(self._token, "***"))


def _wa_number(number: str) -> str:
    """The Cloud API takes the number in international format without the '+'."""
    return number.strip().lstrip("+")


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _clean(exc: Exception) -> Exception:
    """The cause we chain: its type and no arguments (requests errors can carry the request)."""
    return type(exc)() if isinstance(exc, requests.RequestException) else exc


_session: requests.Session | None = None


def whatsapp_client_from_settings() -> WhatsAppClient:
    global _session
    if _session is None:
        _session = requests.Session()
    return WhatsAppClient(
        base_url=settings.WHATSAPP_API_BASE_URL,
        phone_number_id=settings.WHATSAPP_PHONE_NUMBER_ID,
        access_token=settings.WHATSAPP_ACCESS_TOKEN,
        timeout=(settings.WHATSAPP_TIMEOUT_CONNECT, settings.WHATSAPP_TIMEOUT_READ),
        session=_session,
    )


def _never_sent(exc: requests.ConnectionError) -> bool:
    """True when the connection failed before the request went out (safe to retry)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)
