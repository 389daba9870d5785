"""Sending requests to the panel: one ``Transport`` per client, shared by the Application API
and the Client API classes, and the settings wiring every client built from Django settings uses.

What it guarantees (see /work/shared/pterodactyl-api.md for the panel's side):

- Every request carries ``Authorization: Bearer``, ``Accept: application/json`` (without it the
  panel answers 302/HTML instead of JSON errors), explicit connect/read timeouts (a GET, which
  changes nothing, may have a shorter read timeout than a write), and is sent with
  ``allow_redirects=False`` so a redirect is reported instead of followed.
- Errors are our own classes (``errors.py``, mapped in ``replies.py``) with ``retryable``; the key
  never appears in a message, a repr or a log line.
- Every attempt first takes a slot from the rate limiter; a 429 from the panel itself pauses
  everyone sharing that limiter for its Retry-After.
- Retries (exponential backoff with jitter, bounded) happen only for retryable errors and only
  for requests that are safe to repeat (``RetryPolicy.SAFE``): GETs and the idempotent writes.
  A DELETE whose earlier attempt's reply was lost is treated as done when the retry finds the
  object gone. A 429 is always safe to repeat (the panel throttles before doing anything) and
  waits for Retry-After. ``RetryPolicy.ONCE`` requests (creates, reinstall, power signals) are
  repeated only when the panel surely did nothing (a connect timeout, a 429).
- Lists are paginated by the client itself (the panel's ``links`` drop filters and per_page).
- Clients built from settings share one rate limiter per panel and bucket per process
  (``shared_limiters_reset`` forgets them).
"""

from __future__ import annotations

import json
import logging
import random as random_module
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from enum import Enum
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from common.metrics import panel_request_observe
from provisioning.pterodactyl.errors import (
    PanelBadResponse,
    PanelError,
    PanelNotFound,
    PanelRateLimited,
    PanelUnavailable,
)
from provisioning.pterodactyl.errors import redact as redact_key
from provisioning.pterodactyl.ratelimit import (
    DEFAULT_LIMIT_PER_MINUTE,
    InProcessRateLimiter,
    RateLimiter,
    build_rate_limiter,
)
from provisioning.pterodactyl.replies import Reply, read_reply
from provisioning.pterodactyl.types import Page

logger = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = [
    "ClientBase",
    "RetryPolicy",
    "Transport",
    "settings_kwargs",
    "shared_limiters_reset",
]


class RetryPolicy(Enum):
    SAFE = "safe"  # idempotent: retry retryable errors with backoff
    ONCE = "once"  # not idempotent: repeat only when the panel surely did nothing (429, connect)


class Transport:
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
    ) -> Reply:
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
                    return Reply(204, None)
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
                    self.redact(exc.message),
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

    def redact(self, text: str) -> str:
        """``text`` with the key (and its secret half) blanked out."""
        return redact_key(text, self._api_key)

    def _send_once(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, Any]] | None,
        body: Mapping[str, Any] | None,
    ) -> Reply:
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
        # Every exchange is counted for /metrics by its status ("timeout" / "no_reply" without).
        status = "no_reply"
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
            status = str(response.status_code)
        except requests.exceptions.ConnectTimeout:
            status = "timeout"
            # Never connected, so nothing was sent: safe to repeat even a create.
            raise PanelUnavailable(
                f"{where}: could not connect to the panel within {self.timeout[0]:g} s"
            ) from None
        except requests.exceptions.ReadTimeout:
            status = "timeout"
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
        finally:
            panel_request_observe(method=method, path=self._prefixed(path), status=status)
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.debug("panel %s -> %s in %.0f ms", where, response.status_code, elapsed_ms)
        return read_reply(method, where, response, self.redact)


class ClientBase:
    """What both API classes share: the transport (built from the keyword arguments), reads and
    pagination. Subclasses set the API prefix and the setting that holds their key."""

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
        self._t = Transport(
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


def settings_kwargs(settings: Any, *, bucket: str, rate_setting: str, rate_default: int) -> dict:
    """The client keyword arguments the PTERODACTYL_* settings give, limiter shared."""
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
