"""HTTP client for the Pterodactyl panel: the Application API (ptla_ keys) and, optionally, the
Client API (ptlc_ keys of a root admin) for power signals and live resources.

What this module guarantees (see /work/shared/pterodactyl-api.md for the panel's side):

- Every request carries ``Authorization: Bearer``, ``Accept: application/json`` (without it the
  panel answers 302/HTML instead of JSON errors), explicit connect/read timeouts, and is sent
  with ``allow_redirects=False`` so a redirect is reported instead of followed.
- Errors are our own classes (``errors.py``) with ``retryable``; the key never appears in a
  message, a repr or a log line.
- Retries (exponential backoff with jitter, bounded) happen only for retryable errors and only
  for requests that are safe to repeat: GETs and the idempotent writes (details/build/startup
  PATCHes are full replaces, suspend/unsuspend are no-ops when already in that state, DELETE is
  treated as done when a retry finds the object gone). A 429 is always safe to repeat (the panel
  throttles before doing anything) and waits for Retry-After.
- Creates (users, servers, allocations) and reinstall/power signals are never blindly repeated.
  After a timeout or a 5xx on a create, ``create_user``/``create_server`` look the object up by
  ``external_id`` (our idempotency key) and adopt it if the panel did create it; the result says
  so (``Created.origin``). If it does not exist, the retryable error is raised for the caller to
  retry later. ``ensure_user``/``ensure_server`` add the lookup *before* the POST and adopt on a
  422 "external id has already been taken".
- The panel's full-replace semantics are hidden: update methods take only what changes and fill
  in every other required field from a fresh GET.
- Lists are paginated by the client itself (the panel's ``links`` drop filters and per_page).
"""

from __future__ import annotations

import email.utils
import json
import logging
import random as random_module
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit

import requests

from provisioning.pterodactyl.errors import (
    FieldError,
    PanelAuthError,
    PanelBadRequest,
    PanelBadResponse,
    PanelConflict,
    PanelError,
    PanelNotFound,
    PanelNoViableAllocation,
    PanelNoViableNode,
    PanelPermissionError,
    PanelRateLimited,
    PanelUnavailable,
    PanelValidationError,
    redact,
)
from provisioning.pterodactyl.ratelimit import (
    DEFAULT_LIMIT_PER_MINUTE,
    BoundedWaitLimiter,
    CombinedRateLimiter,
    InProcessRateLimiter,
    RateLimiter,
    build_rate_limiter,
)
from provisioning.pterodactyl.types import (
    Allocation,
    Created,
    CreateOrigin,
    Deploy,
    Egg,
    FeatureLimits,
    Limits,
    Location,
    Nest,
    Node,
    Page,
    Server,
    ServerResources,
    User,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["UNSET", "PterodactylClient", "PterodactylClientAPI", "RetryPolicy"]


class _Unset(Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


# "Not given": keep the panel's current value (distinct from None, which clears it).
UNSET = _Unset.UNSET

PowerSignal = Literal["start", "stop", "restart", "kill"]


class RetryPolicy(Enum):
    SAFE = "safe"  # idempotent: retry retryable errors with backoff
    ONCE = "once"  # not idempotent: repeat only when the panel surely did nothing (429, connect)


@dataclass(frozen=True)
class _Reply:
    status: int
    body: Any


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _forbidden_hint(detail: str) -> str:
    if detail.startswith("This IP address"):
        return "add this host's public IP address to the key's allowed IPs, or clear the list"
    if "does not have permission to access the API" in detail:
        return (
            "the key's owner is not a root admin (demoting an admin disables their keys): "
            "create the application key while logged in as a root admin"
        )
    if "application API key on an endpoint that requires a client API key" in detail:
        return "the client API needs a ptlc_ key (Account > API Credentials) of a root admin"
    if detail == "This action is unauthorized.":
        return (
            "the application key lacks Read/Write permission for this resource: edit the key "
            "under Admin > Application API"
        )
    return PanelPermissionError.default_hint


def _conflict_is_lasting(detail: str) -> bool:
    # Suspension and maintenance do not end by waiting a few seconds.
    return "suspended" in detail or "under maintenance" in detail


def _is_html(text: str, content_type: str) -> bool:
    head = text.lstrip()[:64].lower()
    return "html" in content_type.lower() or head.startswith(("<!doctype", "<html", "<"))


class _Transport:
    """Sends one logical request: rate limit, timeouts, error mapping, bounded retries."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        prefix: str,
        key_setting: str,
        timeout: tuple[float, float],
        rate_limiter: RateLimiter | None,
        max_retries: int,
        read_timeout_get: float | None = None,
        backoff_base: float,
        max_backoff: float,
        max_retry_after: float,
        session: requests.Session | None,
        sleep: Callable[[float], None],
        random: Callable[[], float],
    ) -> None:
        if not api_key:
            raise ValueError(f"{key_setting} is empty")
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                "the panel URL must look like https://panel.example.com (scheme and host)"
            )
        path = parts.path.rstrip("/")
        # A common mistake is to paste the API root; accept it.
        for suffix in ("/api/application", "/api/client", "/api"):
            if path.endswith(suffix):
                path = path[: -len(suffix)]
                break
        self.base_url = f"{parts.scheme}://{parts.netloc}{path}"
        self.prefix = prefix
        self.key_setting = key_setting
        self._api_key = api_key
        self.timeout = timeout
        # A GET changes nothing and answers fast: it need not hold a worker as long as a
        # create, which the panel may take a while to finish (Wings is called inside it).
        self.read_timeout_get = read_timeout_get if read_timeout_get else timeout[1]
        self.rate_limiter = rate_limiter
        self.max_retries = max(0, max_retries)
        self.backoff_base = backoff_base
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.session = session or requests.Session()
        self.sleep = sleep
        self.random = random

    # ------------------------------------------------------------------ public entry point

    def request(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, Any]] | None = None,
        body: Mapping[str, Any] | None = None,
        retry: RetryPolicy = RetryPolicy.SAFE,
    ) -> _Reply:
        attempt = 0
        ambiguous = False  # an earlier attempt may have been processed
        while True:
            attempt += 1
            try:
                return self._send_once(method, path, params=params, body=body)
            except PanelNotFound:
                if method == "DELETE" and ambiguous:
                    # The earlier attempt did delete it; the reply was lost.
                    logger.info(
                        "panel %s %s: gone after a lost reply, treating as done", method, path
                    )
                    return _Reply(204, None)
                raise
            except PanelError as exc:
                if (
                    isinstance(exc, PanelRateLimited)
                    and exc.status is not None
                    and self.rate_limiter is not None
                ):
                    # The panel itself said 429 (another tool shares the admin's bucket): pause
                    # every worker for its Retry-After, whether or not this call retries.
                    self.rate_limiter.block_for(
                        exc.retry_after if exc.retry_after is not None else 60.0
                    )
                delay = self._retry_delay(exc, attempt, retry)
                if delay is None:
                    raise
                if isinstance(exc, PanelUnavailable) and exc.outcome_unknown:
                    ambiguous = True
                logger.warning(
                    "panel %s %s failed (%s); retry %d/%d in %.2f s",
                    method,
                    self._prefixed(path),
                    self._redact(exc.message),
                    attempt,
                    self.max_retries,
                    delay,
                )
                self.sleep(delay)

    def _retry_delay(self, exc: PanelError, attempt: int, retry: RetryPolicy) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if attempt > self.max_retries or not exc.retryable:
            return None
        if isinstance(exc, PanelRateLimited):
            if exc.status is None:
                return None  # our own limiter already waited as long as allowed
            retry_after = exc.retry_after if exc.retry_after is not None else 60.0
            if retry_after > self.max_retry_after:
                return None
            return retry_after
        if not isinstance(exc, PanelUnavailable):
            return None  # 409 conflicts and the like are the caller's business
        if retry is RetryPolicy.ONCE and exc.outcome_unknown:
            return None  # the panel may have done it: never repeat a create blindly
        backoff = self.backoff_base * (2 ** (attempt - 1))
        # Jitter in [0.5, 1.5) x backoff spreads out workers that failed together.
        return min(self.max_backoff, backoff * (0.5 + self.random()))

    # ------------------------------------------------------------------ one HTTP exchange

    def _prefixed(self, path: str) -> str:
        return f"{self.prefix}{path}"

    def _redact(self, text: str) -> str:
        return redact(text, self._api_key)

    def _send_once(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, Any]] | None,
        body: Mapping[str, Any] | None,
    ) -> _Reply:
        if self.rate_limiter is not None:
            self.rate_limiter.acquire()
        url = f"{self.base_url}{self._prefixed(path)}"
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
            "User-Agent": "gameserver-billing-portal/pterodactyl-client",
        }
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        started = time.monotonic()
        where = f"{method} {self._prefixed(path)}"
        timeout = (self.timeout[0], self.read_timeout_get if method == "GET" else self.timeout[1])
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.exceptions.ConnectTimeout:
            # Never connected, so nothing was sent: safe to repeat even a create.
            raise PanelUnavailable(
                f"{where}: could not connect to the panel within {self.timeout[0]:g} s"
            ) from None
        except requests.exceptions.ReadTimeout:
            raise PanelUnavailable(
                f"{where}: no reply within {timeout[1]:g} s (the request may have been processed)",
                outcome_unknown=method != "GET",
            ) from None
        except requests.exceptions.SSLError as exc:
            raise PanelBadResponse(
                f"{where}: TLS error talking to the panel ({type(exc).__name__})",
                hint="check the certificate of PTERODACTYL_URL, or use its correct https address",
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise PanelUnavailable(
                f"{where}: connection to the panel failed ({type(exc).__name__})",
                outcome_unknown=method != "GET",
            ) from None
        except requests.exceptions.RequestException as exc:
            raise PanelUnavailable(
                f"{where}: request failed ({type(exc).__name__})",
                outcome_unknown=method != "GET",
            ) from None
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.debug("panel %s -> %s in %.0f ms", where, response.status_code, elapsed_ms)
        return self._interpret(method, where, response)

    def _interpret(self, method: str, where: str, response: requests.Response) -> _Reply:
        status = response.status_code
        content_type = response.headers.get("Content-Type", "")
        raw = response.content or b""
        text = raw.decode("utf-8", errors="replace")

        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            if "/auth/login" in location:
                raise PanelAuthError(
                    f"{where}: the panel redirected to its login page ({status})",
                    status=status,
                    hint=(
                        "the API key was not accepted and the request was treated as a browser "
                        "(missing 'Accept: application/json' or the URL points at the web UI): "
                        "check PTERODACTYL_ADMIN_API_KEY and PTERODACTYL_URL"
                    ),
                )
            raise PanelBadResponse(
                f"{where}: the panel answered with a redirect ({status}) to "
                f"{self._redact(location) or 'nowhere'}",
                status=status,
                hint="set PTERODACTYL_URL to the panel's final address (https, no path)",
            )

        parsed: Any = None
        json_ok = False
        if raw:
            try:
                parsed = json.loads(text)
                json_ok = True
            except ValueError:
                json_ok = False

        if 200 <= status < 300:
            if status == 204 or not raw.strip():
                return _Reply(status, None)
            if not json_ok or not isinstance(parsed, dict):
                if _is_html(text, content_type):
                    raise PanelBadResponse(
                        f"{where}: the reply is an HTML page, not JSON: the URL does not look "
                        "like a Pterodactyl panel API",
                        status=status,
                        hint="set PTERODACTYL_URL to the panel's base URL, e.g. "
                        "https://panel.example.com",
                    )
                raise PanelBadResponse(
                    f"{where}: the panel's reply is not a JSON object ({status}, {len(raw)} bytes)",
                    status=status,
                )
            return _Reply(status, parsed)

        errors = parsed.get("errors") if json_ok and isinstance(parsed, dict) else None
        if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
            raise self._non_panel_error(method, where, status, text, content_type, response)
        return self._raise_panel_error(method, where, status, errors, response)

    def _non_panel_error(
        self,
        method: str,
        where: str,
        status: int,
        text: str,
        content_type: str,
        response: requests.Response,
    ) -> PanelError:
        """An error status without the panel's ``{"errors": [...]}`` body (proxy, web server)."""
        body_kind = "an HTML page" if _is_html(text, content_type) else "a non-JSON body"
        if status == 429:
            return PanelRateLimited(
                f"{where}: rate limited (429, {body_kind})",
                status=status,
                retry_after=_parse_retry_after(response.headers.get("Retry-After")),
            )
        if status >= 500:
            return PanelUnavailable(
                f"{where}: {status} with {body_kind} (the web server or a proxy in front of the "
                "panel failed)",
                status=status,
                outcome_unknown=method != "GET",
            )
        if status == 401:
            return PanelAuthError(
                f"{where}: 401 with {body_kind}",
                status=status,
            )
        if status == 403:
            return PanelPermissionError(
                f"{where}: 403 with {body_kind}",
                status=status,
                hint="a proxy or firewall in front of the panel refused the request, or the key "
                "lacks permission",
            )
        return PanelBadResponse(
            f"{where}: {status} with {body_kind}: the URL does not look like a Pterodactyl "
            "panel API",
            status=status,
            hint="set PTERODACTYL_URL to the panel's base URL, e.g. https://panel.example.com",
        )

    def _raise_panel_error(
        self,
        method: str,
        where: str,
        status: int,
        errors: list[dict[str, Any]],
        response: requests.Response,
    ) -> _Reply:
        first = errors[0]
        code = str(first.get("code") or "")
        detail = self._redact(str(first.get("detail") or ""))
        summary = f"{where}: {status} {code}: {detail}".rstrip(": ")
        common: dict[str, Any] = {"status": status, "code": code, "errors": errors}

        if status == 422:
            field_errors = []
            for item in errors:
                meta = item.get("meta") if isinstance(item.get("meta"), dict) else {}
                field_errors.append(
                    FieldError(
                        source_field=str(meta.get("source_field") or ""),
                        rule=str(meta.get("rule") or ""),
                        detail=self._redact(str(item.get("detail") or "")),
                    )
                )
            raise PanelValidationError(
                f"{where}: the panel rejected the data (422)", field_errors=field_errors, **common
            )
        if status == 429:
            raise PanelRateLimited(
                f"{where}: the panel's rate limit was hit (429 {code})",
                retry_after=_parse_retry_after(response.headers.get("Retry-After")),
                **common,
            )
        if code == "DaemonConnectionException":
            if status >= 500:
                raise PanelUnavailable(
                    f"{where}: Wings (the daemon on the node) failed: {detail}",
                    hint="check that Wings runs on the node and the panel can reach it",
                    outcome_unknown=method != "GET",
                    **common,
                )
            if status == 409:
                raise PanelConflict(summary, **common)
            raise PanelBadRequest(f"{where}: Wings refused the request: {detail}", **common)
        if status >= 500:
            raise PanelUnavailable(summary, outcome_unknown=method != "GET", **common)
        if status == 400:
            if code == "NoViableNodeException":
                raise PanelNoViableNode(summary, **common)
            if code == "NoViableAllocationException":
                raise PanelNoViableAllocation(summary, **common)
            if code == "TwoFactorAuthRequiredException":
                raise PanelAuthError(
                    summary,
                    hint="the panel requires 2FA for admins: enable TOTP on the key owner's "
                    "account or relax the panel's 2FA requirement",
                    **common,
                )
            raise PanelBadRequest(summary, **common)
        if status == 401:
            raise PanelAuthError(summary, **common)
        if status == 403:
            raise PanelPermissionError(summary, hint=_forbidden_hint(detail), **common)
        if status == 404:
            if detail.startswith("The route "):
                raise PanelBadResponse(
                    summary,
                    hint="the panel has no such API route: check PTERODACTYL_URL (base URL of the "
                    "panel, no path) and the panel version",
                    **common,
                )
            raise PanelNotFound(summary, **common)
        if status == 409:
            raise PanelConflict(summary, retryable=not _conflict_is_lasting(detail), **common)
        if status == 405:
            raise PanelBadResponse(summary, hint="panel version mismatch?", **common)
        raise PanelBadRequest(summary, **common)


def _include_param(include: Iterable[str]) -> list[tuple[str, Any]]:
    names = [name for name in include if name]
    return [("include", ",".join(names))] if names else []


def _check_external_id(external_id: str) -> str:
    value = str(external_id)
    if not value or "/" in value or len(value) > 191:
        raise ValueError("external_id must be 1..191 characters without '/'")
    return value


def _env_value(value: Any) -> Any:
    """Egg variable values are validated as strings by most rules: send strings."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class _ClientBase:
    _prefix = ""
    _key_setting = ""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        rate_limiter: RateLimiter | None = None,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_backoff: float = 30.0,
        max_retry_after: float = 120.0,
        random: Callable[[], float] = random_module.random,
        read_timeout_get: float | None = None,
    ) -> None:
        self._t = _Transport(
            base_url,
            api_key,
            prefix=self._prefix,
            key_setting=self._key_setting,
            timeout=timeout,
            rate_limiter=(
                rate_limiter
                if rate_limiter is not None
                else InProcessRateLimiter(DEFAULT_LIMIT_PER_MINUTE, sleep=sleep)
            ),
            max_retries=max_retries,
            read_timeout_get=read_timeout_get,
            backoff_base=backoff_base,
            max_backoff=max_backoff,
            max_retry_after=max_retry_after,
            session=session,
            sleep=sleep,
            random=random,
        )

    @property
    def base_url(self) -> str:
        return self._t.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._t.base_url!r}, api_key='***')"

    def _get(self, path: str, params: list[tuple[str, Any]] | None = None) -> Any:
        return self._t.request("GET", path, params=params).body

    def _paginate(
        self,
        path: str,
        factory: Callable[[Any], T],
        what: str,
        *,
        params: list[tuple[str, Any]] | None = None,
        per_page: int = 100,
    ) -> Iterator[T]:
        """Walk every page, building each page URL ourselves so the filters are kept."""
        page_number = 1
        seen: set[Any] = set()
        while True:
            query = [*(params or []), ("page", page_number), ("per_page", per_page)]
            page: Page[T] = Page.from_api(self._get(path, query), factory, what)
            for item in page.items:
                # Rows inserted while we walk shift later pages: do not yield one twice.
                key = getattr(item, "id", None)
                if key is not None:
                    if key in seen:
                        continue
                    seen.add(key)
                yield item
            if not page.items or page.current_page >= page.total_pages:
                return
            if page_number >= 100_000:
                raise PanelBadResponse(f"listing {what}: pagination does not end")
            page_number += 1


_shared_limiters: dict[tuple[str, str, int, str | None], RateLimiter] = {}
_shared_limiters_lock = threading.Lock()


def shared_limiters_reset() -> None:
    """Forget the per-process limiters (their windows and 429 pauses): for tests, and for a
    process that changed its panel settings."""
    with _shared_limiters_lock:
        _shared_limiters.clear()


def _shared_limiter(
    base_url: str, bucket: str, per_minute: int, redis_url: str | None
) -> RateLimiter:
    """One limiter per panel and bucket per process, so every client instance shares it."""
    cache_key = (base_url.rstrip("/").lower(), bucket, per_minute, redis_url)
    with _shared_limiters_lock:
        limiter = _shared_limiters.get(cache_key)
        if limiter is None:
            limiter = build_rate_limiter(
                base_url=base_url,
                limit_per_minute=per_minute,
                redis_url=redis_url,
                bucket=bucket,
            )
            _shared_limiters[cache_key] = limiter
        return limiter


def _settings_kwargs(settings: Any, *, bucket: str, rate_setting: str, rate_default: int) -> dict:
    url = getattr(settings, "PTERODACTYL_URL", "") or ""
    redis_url = getattr(settings, "PTERODACTYL_RATE_LIMIT_REDIS_URL", None) or None
    per_minute = int(getattr(settings, rate_setting, rate_default) or rate_default)
    return {
        "timeout": (
            float(getattr(settings, "PTERODACTYL_TIMEOUT_CONNECT", 5) or 5),
            float(getattr(settings, "PTERODACTYL_TIMEOUT_READ", 30) or 30),
        ),
        "read_timeout_get": float(getattr(settings, "PTERODACTYL_TIMEOUT_READ_GET", 0) or 0)
        or None,
        "rate_limiter": _shared_limiter(url, bucket, per_minute, redis_url) if url else None,
        "max_retries": int(getattr(settings, "PTERODACTYL_HTTP_MAX_RETRIES", 3)),
    }


class PterodactylClient(_ClientBase):
    """The panel's Application API (``/api/application``) with a root admin's ``ptla_`` key."""

    _prefix = "/api/application"
    _key_setting = "PTERODACTYL_ADMIN_API_KEY"

    @classmethod
    def from_settings(
        cls, *, share: RateLimiter | None = None, **overrides: Any
    ) -> PterodactylClient:
        """Build a client from Django settings (the only place this module touches Django).

        `share`: a limiter every request also takes a slot from, before the shared budget (the
        fleet jobs' share, so a fleet-wide read never uses the whole budget)."""
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        url = getattr(settings, "PTERODACTYL_URL", "") or ""
        key = getattr(settings, "PTERODACTYL_ADMIN_API_KEY", "") or ""
        if not url or not key:
            raise ImproperlyConfigured(
                "PTERODACTYL_URL and PTERODACTYL_ADMIN_API_KEY must be set to talk to the panel"
            )
        kwargs = _settings_kwargs(
            settings,
            bucket="application",
            rate_setting="PTERODACTYL_RATE_LIMIT_PER_MINUTE",
            rate_default=DEFAULT_LIMIT_PER_MINUTE,
        )
        kwargs.update(overrides)
        if share is not None:
            kwargs["rate_limiter"] = CombinedRateLimiter(
                share, kwargs.get("rate_limiter") or InProcessRateLimiter(DEFAULT_LIMIT_PER_MINUTE)
            )
        return cls(url, key, **kwargs)

    @classmethod
    def for_workers(cls, **overrides: Any) -> PterodactylClient:
        """A client for Celery workers: one try per request, no sleeping. A retryable error
        (5xx, timeout, 429) goes straight back to the caller, whose scheduler retries later
        with backoff (one retry layer, not two); a rate-limit wait longer than
        PTERODACTYL_WORKER_RATE_WAIT seconds is raised as PanelRateLimited with the wait
        in ``retry_after`` instead of being slept through."""
        from django.conf import settings

        client = cls.from_settings(**{"max_retries": 0, **overrides})
        limiter = client._t.rate_limiter
        if limiter is not None and "rate_limiter" not in overrides:
            client._t.rate_limiter = BoundedWaitLimiter(
                limiter, max_wait=float(getattr(settings, "PTERODACTYL_WORKER_RATE_WAIT", 0.25))
            )
        return client

    # ================================================================== users

    def get_user(self, user_id: int, *, include: Iterable[str] = ()) -> User:
        return User.from_api(self._get(f"/users/{int(user_id)}", _include_param(include)))

    def get_user_by_external_id(self, external_id: str) -> User:
        """Exact lookup; raises PanelNotFound when no user has this external id."""
        path = f"/users/external/{quote(_check_external_id(external_id), safe='')}"
        return User.from_api(self._get(path))

    def find_user_by_external_id(self, external_id: str) -> User | None:
        try:
            return self.get_user_by_external_id(external_id)
        except PanelNotFound:
            return None

    def iter_users(
        self,
        *,
        email: str | None = None,
        username: str | None = None,
        external_id: str | None = None,
        uuid: str | None = None,
        sort: str | None = None,
        per_page: int = 100,
    ) -> Iterator[User]:
        """All users; the filters are the panel's partial, case-insensitive matches."""
        params = self._filters(email=email, username=username, external_id=external_id, uuid=uuid)
        if sort:
            params.append(("sort", sort))
        return self._paginate("/users", User.from_api, "users", params=params, per_page=per_page)

    def list_users(self, **filters: Any) -> list[User]:
        return list(self.iter_users(**filters))

    def find_user_by_email(self, email: str) -> User | None:
        """The user whose email is exactly ``email`` (case-insensitive), across all pages.

        The panel's email filter is a partial match (``bob@x.io`` also finds ``jimbob@x.io``),
        so every candidate is compared, never just the first row.
        """
        wanted = email.strip().lower()
        for user in self.iter_users(email=wanted):
            if user.email.strip().lower() == wanted:
                return user
        return None

    def create_user(
        self,
        *,
        email: str,
        username: str,
        first_name: str,
        last_name: str,
        external_id: str | None = None,
        password: str | None = None,
        root_admin: bool | None = None,
        language: str | None = None,
    ) -> Created[User]:
        """POST /users once. After a lost reply, adopt the user found by ``external_id``."""
        body: dict[str, Any] = {
            "email": email,
            "username": username,
            "first_name": first_name,
            "last_name": last_name,
        }
        if external_id is not None:
            body["external_id"] = _check_external_id(external_id)
        if password:
            body["password"] = password
        if root_admin is not None:
            body["root_admin"] = bool(root_admin)
        if language is not None:
            body["language"] = language
        try:
            reply = self._t.request("POST", "/users", body=body, retry=RetryPolicy.ONCE)
        except PanelUnavailable as exc:
            found = self._recover("user", external_id, self.find_user_by_external_id, exc)
            return Created(found, CreateOrigin.RECOVERED, ("reply lost; adopted by external_id",))
        return Created(User.from_api(reply.body))

    def ensure_user(self, *, external_id: str, **fields: Any) -> Created[User]:
        """The user with this external id: the existing one, or a new one (see create_user)."""
        existing = self.find_user_by_external_id(external_id)
        if existing is not None:
            return Created(existing, CreateOrigin.EXISTING)
        try:
            return self.create_user(external_id=external_id, **fields)
        except PanelValidationError as exc:
            if exc.has("external_id", "unique"):
                found = self.find_user_by_external_id(external_id)
                if found is not None:
                    return Created(found, CreateOrigin.EXISTING, ("created concurrently",))
            raise

    def update_user(
        self,
        user_id: int,
        *,
        email: str | None = None,
        username: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        password: str | None = None,
        external_id: str | _Unset | None = UNSET,
        language: str | None = None,
        root_admin: bool | None = None,
    ) -> User:
        """PATCH /users/{id}. The panel requires email, username and both names again: the
        ones not given are taken from a fresh GET. ``password`` None/empty keeps the current
        one; ``external_id`` UNSET keeps it, None clears it."""
        current = self.get_user(user_id)
        body: dict[str, Any] = {
            "email": email if email is not None else current.email,
            "username": username if username is not None else current.username,
            "first_name": first_name if first_name is not None else current.first_name,
            "last_name": last_name if last_name is not None else current.last_name,
        }
        if external_id is not UNSET:
            body["external_id"] = (
                None if external_id is None else _check_external_id(str(external_id))
            )
        if password:
            body["password"] = password
        if language is not None:
            body["language"] = language
        if root_admin is not None:
            body["root_admin"] = bool(root_admin)
        reply = self._t.request("PATCH", f"/users/{int(user_id)}", body=body)
        return User.from_api(reply.body)

    def delete_user(self, user_id: int, *, missing_ok: bool = False) -> None:
        """DELETE /users/{id}; 400 PanelBadRequest while the user still owns servers."""
        try:
            self._t.request("DELETE", f"/users/{int(user_id)}")
        except PanelNotFound:
            if not missing_ok:
                raise

    # ================================================================== servers

    def get_server(self, server_id: int, *, include: Iterable[str] = ()) -> Server:
        return Server.from_api(self._get(f"/servers/{int(server_id)}", _include_param(include)))

    def get_server_by_external_id(self, external_id: str, *, include: Iterable[str] = ()) -> Server:
        """Exact lookup; raises PanelNotFound when no server has this external id."""
        path = f"/servers/external/{quote(_check_external_id(external_id), safe='')}"
        return Server.from_api(self._get(path, _include_param(include)))

    def find_server_by_external_id(
        self, external_id: str, *, include: Iterable[str] = ()
    ) -> Server | None:
        try:
            return self.get_server_by_external_id(external_id, include=include)
        except PanelNotFound:
            return None

    def iter_servers(
        self,
        *,
        name: str | None = None,
        external_id: str | None = None,
        uuid: str | None = None,
        uuid_short: str | None = None,
        description: str | None = None,
        image: str | None = None,
        sort: str | None = None,
        include: Iterable[str] = (),
        per_page: int = 100,
    ) -> Iterator[Server]:
        params = self._filters(
            name=name,
            external_id=external_id,
            uuid=uuid,
            uuidShort=uuid_short,
            description=description,
            image=image,
        )
        if sort:
            params.append(("sort", sort))
        params += _include_param(include)
        return self._paginate(
            "/servers", Server.from_api, "servers", params=params, per_page=per_page
        )

    def list_servers(self, **filters: Any) -> list[Server]:
        return list(self.iter_servers(**filters))

    def create_server(
        self,
        *,
        name: str,
        user_id: int,
        egg_id: int,
        docker_image: str,
        startup: str,
        environment: Mapping[str, Any],
        limits: Limits,
        feature_limits: FeatureLimits | None = None,
        allocation_id: int | None = None,
        additional_allocation_ids: Iterable[int] = (),
        deploy: Deploy | None = None,
        external_id: str | None = None,
        description: str | None = None,
        skip_scripts: bool = False,
        start_on_completion: bool = False,
    ) -> Created[Server]:
        """POST /servers once, with an explicit ``allocation_id`` or a ``deploy`` block.

        ``environment`` must hold every required egg variable: the panel never applies
        defaults (use ``Egg.environment_with_defaults``). After a timeout or 5xx the server is
        looked up by ``external_id`` and adopted (``Created.origin == RECOVERED``); when it is
        not there (e.g. Wings failed and the panel rolled back) the retryable error is raised.
        """
        if (allocation_id is None) == (deploy is None):
            raise ValueError("give exactly one of allocation_id and deploy")
        feature_limits = feature_limits or FeatureLimits()
        body: dict[str, Any] = {
            "name": name,
            "user": int(user_id),
            "egg": int(egg_id),
            "docker_image": docker_image,
            "startup": startup,
            "environment": {key: _env_value(value) for key, value in environment.items()},
            "limits": limits.to_api(),
            "feature_limits": feature_limits.to_api(),
            "oom_disabled": bool(limits.oom_disabled),
            "skip_scripts": bool(skip_scripts),
            "start_on_completion": bool(start_on_completion),
        }
        if external_id is not None:
            body["external_id"] = _check_external_id(external_id)
        if description is not None:
            body["description"] = description
        if deploy is not None:
            body["deploy"] = deploy.to_api()
        else:
            body["allocation"] = {
                "default": int(allocation_id),  # type: ignore[arg-type]
                "additional": [int(item) for item in additional_allocation_ids],
            }
        try:
            reply = self._t.request("POST", "/servers", body=body, retry=RetryPolicy.ONCE)
        except PanelUnavailable as exc:
            found = self._recover("server", external_id, self.find_server_by_external_id, exc)
            return Created(found, CreateOrigin.RECOVERED, ("reply lost; adopted by external_id",))
        return Created(Server.from_api(reply.body))

    def ensure_server(
        self, *, external_id: str, lookup_first: bool = True, **fields: Any
    ) -> Created[Server]:
        """The server with this external id: the existing one, or a new one (create_server).

        ``lookup_first=False`` skips the GET before the POST, for a caller that knows no
        earlier attempt can have reached the panel: the panel's unique external id still
        turns a duplicate into a 422, which adopts the existing server."""
        if lookup_first:
            existing = self.find_server_by_external_id(external_id)
            if existing is not None:
                return Created(existing, CreateOrigin.EXISTING)
        try:
            return self.create_server(external_id=external_id, **fields)
        except PanelValidationError as exc:
            if exc.has("external_id", "unique"):
                found = self.find_server_by_external_id(external_id)
                if found is not None:
                    return Created(found, CreateOrigin.EXISTING, ("created concurrently",))
            raise

    def update_server_details(
        self,
        server_id: int,
        *,
        name: str | None = None,
        user_id: int | None = None,
        external_id: str | _Unset | None = UNSET,
        description: str | _Unset | None = UNSET,
    ) -> Server:
        """PATCH /servers/{id}/details. The panel writes all four fields on every call (an
        omitted external_id becomes null): what is not given is sent back from a fresh GET."""
        current = self.get_server(server_id)
        body = {
            "name": name if name is not None else current.name,
            "user": int(user_id) if user_id is not None else current.user_id,
            "external_id": current.external_id if external_id is UNSET else external_id,
            "description": current.description if description is UNSET else description,
        }
        if body["external_id"] is not None:
            body["external_id"] = _check_external_id(str(body["external_id"]))
        reply = self._t.request("PATCH", f"/servers/{int(server_id)}/details", body=body)
        return Server.from_api(reply.body)

    def update_server_build(
        self,
        server_id: int,
        *,
        memory: int | None = None,
        swap: int | None = None,
        disk: int | None = None,
        io: int | None = None,
        cpu: int | None = None,
        threads: str | _Unset | None = UNSET,
        oom_disabled: bool | None = None,
        allocation_id: int | None = None,
        add_allocations: Iterable[int] = (),
        remove_allocations: Iterable[int] = (),
        database_limit: int | _Unset | None = UNSET,
        allocation_limit: int | _Unset | None = UNSET,
        backup_limit: int | _Unset | None = UNSET,
    ) -> Server:
        """PATCH /servers/{id}/build with every limit, the primary allocation and all feature
        limits (the panel requires them all), current values filling what is not given.

        The result includes ``allocations``: the panel silently skips ``add_allocations`` ids
        that are on another node or taken, so check ``result.allocation_ids``.
        """
        current = self.get_server(server_id)
        limits = current.limits
        features = current.feature_limits
        body = {
            "allocation": int(allocation_id)
            if allocation_id is not None
            else current.allocation_id,
            "oom_disabled": limits.oom_disabled if oom_disabled is None else bool(oom_disabled),
            "limits": {
                "memory": limits.memory if memory is None else int(memory),
                "swap": limits.swap if swap is None else int(swap),
                "disk": limits.disk if disk is None else int(disk),
                "io": limits.io if io is None else int(io),
                "cpu": limits.cpu if cpu is None else int(cpu),
                "threads": limits.threads if threads is UNSET else threads,
            },
            "feature_limits": {
                "databases": features.databases if database_limit is UNSET else database_limit,
                "allocations": (
                    features.allocations if allocation_limit is UNSET else allocation_limit
                ),
                "backups": features.backups if backup_limit is UNSET else backup_limit,
            },
            "add_allocations": [int(item) for item in add_allocations],
            "remove_allocations": [int(item) for item in remove_allocations],
        }
        # Changing allocations is not safe to repeat (removing the primary a second time is a
        # 400), so such a build is sent once; a limits-only build is idempotent.
        moves_allocations = bool(body["add_allocations"] or body["remove_allocations"])
        reply = self._t.request(
            "PATCH",
            f"/servers/{int(server_id)}/build",
            params=_include_param(["allocations"]),
            body=body,
            **({"retry": RetryPolicy.ONCE} if moves_allocations else {}),
        )
        server = Server.from_api(reply.body)
        skipped = set(body["add_allocations"]) - set(server.allocation_ids or ())
        if skipped:
            logger.warning(
                "panel skipped allocations %s for server %s (other node or already taken)",
                sorted(skipped),
                server_id,
            )
        return server

    def update_server_startup(
        self,
        server_id: int,
        *,
        startup: str | None = None,
        environment: Mapping[str, Any] | None = None,
        egg_id: int | None = None,
        nest_id: int | None = None,
        image: str | None = None,
        skip_scripts: bool = False,
    ) -> Server:
        """PATCH /servers/{id}/startup. The panel blanks every variable left out, so the full
        map is sent: current values (or the new egg's defaults when ``egg_id`` changes) with
        ``environment`` on top. ``skip_scripts`` is not readable from the API; it defaults to
        False, the panel's own default. ``nest_id`` saves a search when changing the egg."""
        current = self.get_server(server_id, include=["variables"])
        target_egg = current.egg_id if egg_id is None else int(egg_id)
        if target_egg == current.egg_id:
            merged: dict[str, Any] = dict(current.egg_environment())
        else:
            merged = self._find_egg(target_egg, nest_id).environment_with_defaults()
        for key, value in (environment or {}).items():
            merged[key] = value
        body = {
            "startup": startup if startup is not None else current.container.startup_command,
            "environment": {key: _env_value(value) for key, value in merged.items()},
            "egg": target_egg,
            "image": image if image is not None else current.container.image,
            "skip_scripts": bool(skip_scripts),
        }
        reply = self._t.request(
            "PATCH",
            f"/servers/{int(server_id)}/startup",
            params=_include_param(["variables"]),
            body=body,
        )
        return Server.from_api(reply.body)

    def suspend_server(self, server_id: int) -> None:
        """Idempotent on the panel (already suspended = 204), so retried like a GET."""
        self._t.request("POST", f"/servers/{int(server_id)}/suspend")

    def unsuspend_server(self, server_id: int) -> None:
        self._t.request("POST", f"/servers/{int(server_id)}/unsuspend")

    def reinstall_server(self, server_id: int) -> None:
        """Starts a new install (and clears a suspension): not repeated after a lost reply."""
        self._t.request("POST", f"/servers/{int(server_id)}/reinstall", retry=RetryPolicy.ONCE)

    def delete_server(
        self, server_id: int, *, force: bool = False, missing_ok: bool = False
    ) -> None:
        """DELETE /servers/{id} (``force``: /force, ignores Wings errors)."""
        path = f"/servers/{int(server_id)}" + ("/force" if force else "")
        try:
            self._t.request("DELETE", path)
        except PanelNotFound:
            if not missing_ok:
                raise

    # ================================================================== nodes & allocations

    def iter_nodes(self, *, include: Iterable[str] = (), per_page: int = 100) -> Iterator[Node]:
        return self._paginate(
            "/nodes", Node.from_api, "nodes", params=_include_param(include), per_page=per_page
        )

    def list_nodes(self, *, include: Iterable[str] = (), per_page: int = 100) -> list[Node]:
        return list(self.iter_nodes(include=include, per_page=per_page))

    def get_node(self, node_id: int, *, include: Iterable[str] = ()) -> Node:
        return Node.from_api(self._get(f"/nodes/{int(node_id)}", _include_param(include)))

    def list_deployable_nodes(
        self, *, memory: int, disk: int, location_ids: Iterable[int] = ()
    ) -> list[Node]:
        """Nodes passing the deploy capacity filter (public, location, memory/disk with
        overallocate). [] when none does. It checks neither free ports nor maintenance mode."""
        params: list[tuple[str, Any]] = [("memory", int(memory)), ("disk", int(disk))]
        params += [("location_ids[]", int(location)) for location in location_ids]
        try:
            payload = self._get("/nodes/deployable", params)
        except PanelNoViableNode:
            return []
        return list(Page.from_api(payload, Node.from_api, "deployable nodes").items)

    def list_allocations(
        self,
        node_id: int,
        *,
        assigned: bool | None = None,
        server_id: int | None = None,
        ip: str | None = None,
        port: int | None = None,
        per_page: int = 500,
    ) -> list[Allocation]:
        """Allocations of a node. ``assigned=False``: free ones only (the panel filters);
        ``assigned=True``: taken ones; ``server_id``: that server's."""
        params: list[tuple[str, Any]] = []
        if server_id is not None:
            params.append(("filter[server_id]", int(server_id)))
        elif assigned is False:
            params.append(("filter[server_id]", "false"))
        if ip is not None:
            params.append(("filter[ip]", ip))
        if port is not None:
            params.append(("filter[port]", int(port)))
        items = self._paginate(
            f"/nodes/{int(node_id)}/allocations",
            Allocation.from_api,
            "allocations",
            params=params,
            per_page=per_page,
        )
        if assigned is None:
            return list(items)
        return [item for item in items if item.assigned == assigned]

    def first_free_allocations(
        self, node_id: int, count: int, *, skip: Iterable[tuple[str, int]] = ()
    ) -> list[Allocation]:
        """Up to ``count`` free allocations of a node, lowest ports first in the panel's
        order, reading only as many pages as it takes (a node with thousands of free ports
        costs one request, not a walk through all of them). ``skip``: (ip, port) pairs the
        caller cannot use (claimed by others), not counted."""
        unusable = set(skip)
        found: list[Allocation] = []
        per_page = min(500, max(10, count + len(unusable)))
        for item in self._paginate(
            f"/nodes/{int(node_id)}/allocations",
            Allocation.from_api,
            "allocations",
            params=[("filter[server_id]", "false")],
            per_page=per_page,
        ):
            if item.assigned or (item.ip, item.port) in unusable:
                continue
            found.append(item)
            if len(found) >= count:
                break
        return found

    def list_free_allocations(self, node_id: int) -> list[Allocation]:
        return self.list_allocations(node_id, assigned=False)

    def create_allocations(
        self,
        node_id: int,
        *,
        ip: str,
        ports: Iterable[int | str],
        alias: str | None = None,
    ) -> list[Allocation]:
        """POST /nodes/{id}/allocations (ports like 25565 or "25565-25600"), then list them.

        The panel returns 204 without ids and skips rows that already exist, so calling this
        again is harmless; it is still sent once per call (creates are never auto-repeated).
        Returns the node's allocations on ``ip`` whose port was asked for.
        """
        port_strings = [str(port) for port in ports]
        body: dict[str, Any] = {"ip": ip, "ports": port_strings}
        if alias is not None:
            body["alias"] = alias
        self._t.request(
            "POST", f"/nodes/{int(node_id)}/allocations", body=body, retry=RetryPolicy.ONCE
        )
        wanted: set[int] = set()
        for entry in port_strings:
            if "-" in entry:
                start, _, end = entry.partition("-")
                wanted.update(range(int(start), int(end) + 1))
            elif entry.isdigit():
                wanted.add(int(entry))
        return [item for item in self.list_allocations(node_id, ip=ip) if item.port in wanted]

    def delete_allocation(
        self, node_id: int, allocation_id: int, *, missing_ok: bool = False
    ) -> None:
        """400 PanelBadRequest (ServerUsingAllocationException) while a server holds it."""
        try:
            self._t.request("DELETE", f"/nodes/{int(node_id)}/allocations/{int(allocation_id)}")
        except PanelNotFound:
            if not missing_ok:
                raise

    # ================================================================== locations, nests, eggs

    def list_locations(
        self, *, short: str | None = None, long: str | None = None
    ) -> list[Location]:
        params = self._filters(short=short, long=long)
        return list(self._paginate("/locations", Location.from_api, "locations", params=params))

    def get_location(self, location_id: int) -> Location:
        return Location.from_api(self._get(f"/locations/{int(location_id)}"))

    def list_nests(self) -> list[Nest]:
        return list(self._paginate("/nests", Nest.from_api, "nests"))

    def get_nest(self, nest_id: int) -> Nest:
        return Nest.from_api(self._get(f"/nests/{int(nest_id)}"))

    def list_eggs(self, nest_id: int, *, include_variables: bool = True) -> list[Egg]:
        """Eggs of a nest (the panel does not paginate this list)."""
        params = _include_param(["variables"] if include_variables else [])
        payload = self._get(f"/nests/{int(nest_id)}/eggs", params)
        return list(Page.from_api(payload, Egg.from_api, "eggs").items)

    def get_egg(self, nest_id: int, egg_id: int) -> Egg:
        """One egg with its variables (for defaults and rules)."""
        payload = self._get(
            f"/nests/{int(nest_id)}/eggs/{int(egg_id)}", _include_param(["variables"])
        )
        return Egg.from_api(payload)

    # ================================================================== helpers

    def _find_egg(self, egg_id: int, nest_id: int | None) -> Egg:
        if nest_id is not None:
            return self.get_egg(nest_id, egg_id)
        for nest in self.list_nests():
            for egg in self.list_eggs(nest.id):
                if egg.id == egg_id:
                    return egg
        raise PanelNotFound(f"egg {egg_id} is in no nest of the panel", status=404)

    @staticmethod
    def _filters(**filters: str | None) -> list[tuple[str, Any]]:
        return [(f"filter[{name}]", value) for name, value in filters.items() if value is not None]

    def _recover(
        self,
        kind: str,
        external_id: str | None,
        lookup: Callable[[str], T | None],
        error: PanelUnavailable,
    ) -> T:
        """After a create's reply was lost: the object if the panel made it, else re-raise."""
        if external_id is None:
            logger.warning(
                "panel %s create: reply lost and no external_id to check whether it exists", kind
            )
            raise error
        try:
            found = lookup(external_id)
        except PanelError as lookup_error:
            logger.warning(
                "panel %s create: reply lost and the lookup by external_id failed too (%s)",
                kind,
                self._t._redact(lookup_error.message),
            )
            raise error from None
        if found is None:
            logger.info(
                "panel %s create: reply lost and no %s with external_id %s exists; safe to retry",
                kind,
                kind,
                external_id,
            )
            raise error
        logger.info(
            "panel %s create: reply lost, adopted the %s with external_id %s",
            kind,
            kind,
            external_id,
        )
        return found


class PterodactylClientAPI(_ClientBase):
    """The panel's Client API (``/api/client``) with a root admin's ``ptlc_`` key: power
    signals and live resource usage, which the Application API does not offer."""

    _prefix = "/api/client"
    _key_setting = "PTERODACTYL_CLIENT_API_KEY"

    @classmethod
    def from_settings(cls, **overrides: Any) -> PterodactylClientAPI:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        url = getattr(settings, "PTERODACTYL_URL", "") or ""
        key = getattr(settings, "PTERODACTYL_CLIENT_API_KEY", "") or ""
        if not url or not key:
            raise ImproperlyConfigured(
                "PTERODACTYL_URL and PTERODACTYL_CLIENT_API_KEY must be set for power signals"
            )
        kwargs = _settings_kwargs(
            settings,
            bucket="client",
            rate_setting="PTERODACTYL_CLIENT_RATE_LIMIT_PER_MINUTE",
            rate_default=600,  # the panel allows 720/min on the client API
        )
        kwargs.update(overrides)
        return cls(url, key, **kwargs)

    def get_resources(self, identifier: str) -> ServerResources:
        """Live state and usage (the panel caches it for 20 s). 409 PanelConflict while the
        server is installing (retryable) or suspended (not retryable)."""
        return ServerResources.from_api(
            self._get(f"/servers/{quote(identifier, safe='')}/resources")
        )

    def send_power_signal(self, identifier: str, signal: PowerSignal) -> None:
        """start / stop / restart / kill. Sent once: a repeated restart restarts again."""
        if signal not in ("start", "stop", "restart", "kill"):
            raise ValueError(f"unknown power signal {signal!r}")
        self._t.request(
            "POST",
            f"/servers/{quote(identifier, safe='')}/power",
            body={"signal": signal},
            retry=RetryPolicy.ONCE,
        )
