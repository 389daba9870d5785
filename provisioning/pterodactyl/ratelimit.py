"""Client-side rate limiting for the panel API, shared by every worker process.

The panel allows 240 application-API requests per minute per admin user (one bucket for all of
that admin's keys, across every process that uses them). We stay under a smaller budget (200/min
by default) so we never *send* a request that would come back 429: ``acquire()`` waits for a
free slot, bounded by ``max_wait``, and then raises ``PanelRateLimited`` locally.

Two implementations with the same interface:
- ``RedisRateLimiter``: a sliding-window log in a Redis sorted set, updated atomically by a Lua
  script, keyed per panel URL, so all processes and hosts share one budget. If Redis is down it
  falls back to an in-process limiter (and logs it) rather than stopping provisioning.
- ``InProcessRateLimiter``: the same window in memory, thread-safe, for one process.

Both accept ``block_for(seconds)``: when the panel answers 429 anyway (another tool uses the same
admin), the client calls it so every worker pauses for Retry-After instead of hammering.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from provisioning.pterodactyl.errors import PanelRateLimited

logger = logging.getLogger(__name__)

DEFAULT_LIMIT_PER_MINUTE = 200
DEFAULT_MAX_WAIT_SECONDS = 30.0

__all__ = [
    "DEFAULT_LIMIT_PER_MINUTE",
    "BoundedWaitLimiter",
    "CombinedRateLimiter",
    "InProcessRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
    "build_rate_limiter",
]


class RateLimiter(Protocol):
    def acquire(self) -> None:
        """Take one request slot, waiting if needed; raise PanelRateLimited past max_wait."""

    def block_for(self, seconds: float) -> None:
        """Pause everyone sharing this limiter for ``seconds`` (after a 429 from the panel)."""


def _give_up(
    waited: float, wait: float, limit: int, window: float, *, blocked: bool = False
) -> PanelRateLimited:
    if blocked:
        # The pause came from the panel's own 429 (its Retry-After), not from our budget.
        reason = "the panel answered 429 and asked every request to wait (Retry-After)"
    else:
        reason = f"client-side rate limit: {limit} panel requests per {window:g} s used up"
    return PanelRateLimited(
        f"{reason}; gave up after waiting {waited:.1f} s (next request in {wait:.1f} s)",
        retry_after=round(wait, 3),
    )


class InProcessRateLimiter:
    """Sliding-window limiter for one process (thread-safe)."""

    def __init__(
        self,
        limit_per_minute: int = DEFAULT_LIMIT_PER_MINUTE,
        *,
        window_seconds: float = 60.0,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit_per_minute < 1:
            raise ValueError("limit_per_minute must be at least 1")
        self.limit = limit_per_minute
        self.window = window_seconds
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0
        # Whether the last wait was the panel's Retry-After (for the error message).
        self.last_wait_blocked = False

    def _try_acquire(self) -> float:
        """Take a slot and return 0, or return how long to wait for the next one."""
        with self._lock:
            now = self._clock()
            self.last_wait_blocked = now < self._blocked_until
            if self.last_wait_blocked:
                return self._blocked_until - now
            while self._sent and self._sent[0] <= now - self.window:
                self._sent.popleft()
            if len(self._sent) < self.limit:
                self._sent.append(now)
                return 0.0
            return self._sent[0] + self.window - now

    def acquire(self) -> None:
        waited = 0.0
        while True:
            wait = self._try_acquire()
            if wait <= 0:
                return
            if waited + wait > self.max_wait:
                raise _give_up(
                    waited, wait, self.limit, self.window, blocked=self.last_wait_blocked
                )
            # Sleep outside the lock so other threads can still see the state.
            self._sleep(wait)
            waited += wait

    def try_acquire(self) -> float:
        """Take a slot without waiting: 0 when taken, else the seconds until the next one."""
        return self._try_acquire()

    def block_for(self, seconds: float) -> None:
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + max(0.0, seconds))

    def __repr__(self) -> str:
        return f"InProcessRateLimiter(limit={self.limit}/{self.window:g}s)"


# KEYS[1] = the window's sorted set, KEYS[2] = the "blocked until" key.
# ARGV: now_ms (or "" to use the Redis server's clock), window_ms, limit, member.
# Returns 0 when a slot was taken, else the milliseconds to wait.
_ACQUIRE_LUA = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now then
  -- negative: a pause the panel asked for (429 Retry-After), not our budget
  return now - blocked
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return wait
"""

_BLOCK_LUA = """
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local until_ms = now + tonumber(ARGV[2])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ms > current then
  redis.call('SET', KEYS[1], until_ms, 'PX', tonumber(ARGV[2]) + 1000)
end
return until_ms
"""


class RedisRateLimiter:
    """Sliding-window limiter shared through Redis (atomic Lua), keyed per panel URL.

    By default the Redis server's clock is used, so workers on hosts with skewed clocks still
    agree; tests pass ``clock`` (seconds) to drive time themselves.
    """

    def __init__(
        self,
        redis_client: Any,
        *,
        key: str,
        limit_per_minute: int = DEFAULT_LIMIT_PER_MINUTE,
        window_seconds: float = 60.0,
        max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        fallback: InProcessRateLimiter | None = None,
    ) -> None:
        if limit_per_minute < 1:
            raise ValueError("limit_per_minute must be at least 1")
        self.redis = redis_client
        self.key = key
        self.limit = limit_per_minute
        self.window = window_seconds
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._acquire_script = redis_client.register_script(_ACQUIRE_LUA)
        self._block_script = redis_client.register_script(_BLOCK_LUA)
        self._fallback = fallback or InProcessRateLimiter(
            limit_per_minute, window_seconds=window_seconds, max_wait=max_wait, sleep=sleep
        )
        self._redis_failed_logged = False
        self.last_wait_blocked = False
        # After a Redis failure, use the fallback for a while instead of paying a connection
        # timeout on every request (real monotonic time: this is about Redis, not the budget).
        self._redis_retry_at = 0.0
        self.redis_cooldown = 30.0

    @classmethod
    def from_url(cls, redis_url: str, **kwargs: Any) -> RedisRateLimiter:
        import redis  # imported here: only needed when a shared limiter is configured
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(
            redis_url,
            socket_timeout=1,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 1),
        )
        return cls(client, **kwargs)

    def _now_arg(self) -> str:
        return "" if self._clock is None else str(int(self._clock() * 1000))

    def _try_acquire(self) -> float:
        member = f"{time.time_ns()}-{uuid.uuid4().hex}"
        wait_ms = int(
            self._acquire_script(
                keys=[self.key, f"{self.key}:blocked"],
                args=[self._now_arg(), int(self.window * 1000), self.limit, member],
            )
        )
        self.last_wait_blocked = wait_ms < 0
        return abs(wait_ms) / 1000.0

    def acquire(self) -> None:
        waited = 0.0
        while True:
            if time.monotonic() < self._redis_retry_at:
                self._fallback.acquire()
                return
            try:
                wait = self._try_acquire()
            except Exception as exc:  # any Redis failure: degrade to a per-process budget
                self._log_redis_failure(exc)
                self._fallback.acquire()
                return
            self._redis_failed_logged = False
            if wait <= 0:
                return
            if waited + wait > self.max_wait:
                raise _give_up(
                    waited, wait, self.limit, self.window, blocked=self.last_wait_blocked
                )
            self._sleep(wait)
            waited += wait

    def try_acquire(self) -> float:
        """Take a slot without waiting: 0 when taken, else the seconds until the next one."""
        if time.monotonic() < self._redis_retry_at:
            return self._fallback.try_acquire()
        try:
            wait = self._try_acquire()
        except Exception as exc:  # any Redis failure: degrade to a per-process budget
            self._log_redis_failure(exc)
            return self._fallback.try_acquire()
        self._redis_failed_logged = False
        return wait

    def block_for(self, seconds: float) -> None:
        try:
            self._block_script(
                keys=[f"{self.key}:blocked"],
                args=[self._now_arg(), max(1, int(seconds * 1000))],
            )
        except Exception as exc:
            self._log_redis_failure(exc)
            self._fallback.block_for(seconds)

    def _log_redis_failure(self, exc: Exception) -> None:
        self._redis_retry_at = time.monotonic() + self.redis_cooldown
        if not self._redis_failed_logged:
            logger.warning(
                "panel rate limiter: Redis unavailable (%s); using a per-process limit until it "
                "is back",
                type(exc).__name__,
            )
            self._redis_failed_logged = True

    def __repr__(self) -> str:
        return f"RedisRateLimiter(key={self.key!r}, limit={self.limit}/{self.window:g}s)"


class CombinedRateLimiter:
    """Takes a slot from each limiter in turn: a share of the budget (e.g. the fleet jobs'),
    then the budget itself, so work inside a share can never crowd out the rest."""

    def __init__(self, *limiters: Any) -> None:
        self.limiters = limiters

    def acquire(self) -> None:
        for limiter in self.limiters:
            limiter.acquire()

    def try_acquire(self) -> float:
        for limiter in self.limiters:
            wait = limiter.try_acquire()
            if wait > 0:
                return wait
        return 0.0

    def block_for(self, seconds: float) -> None:
        for limiter in self.limiters:
            limiter.block_for(seconds)

    def __repr__(self) -> str:
        return f"CombinedRateLimiter{self.limiters!r}"


class BoundedWaitLimiter:
    """Waits at most `max_wait` seconds for a slot of `limiter`, else raises PanelRateLimited at
    once with the wait in `retry_after`: for workers, which hand the wait to a scheduled retry
    (a countdown) instead of sleeping in a process other work needs."""

    def __init__(self, limiter: Any, *, max_wait: float = 0.0, sleep: Any = time.sleep) -> None:
        self.limiter = limiter
        self.max_wait = max(0.0, max_wait)
        self._sleep = sleep

    def acquire(self) -> None:
        waited = 0.0
        while True:
            wait = self.limiter.try_acquire()
            if wait <= 0:
                return
            if waited + wait > self.max_wait:
                blocked = bool(getattr(self.limiter, "last_wait_blocked", False))
                limit = int(getattr(self.limiter, "limit", 0) or 0)
                window = float(getattr(self.limiter, "window", 60.0) or 60.0)
                raise _give_up(waited, wait, limit, window, blocked=blocked)
            self._sleep(wait)
            waited += wait

    def try_acquire(self) -> float:
        return self.limiter.try_acquire()

    def block_for(self, seconds: float) -> None:
        self.limiter.block_for(seconds)

    @property
    def last_wait_blocked(self) -> bool:
        return bool(getattr(self.limiter, "last_wait_blocked", False))

    def __repr__(self) -> str:
        return f"BoundedWaitLimiter({self.limiter!r}, max_wait={self.max_wait:g})"


def limiter_key(base_url: str, bucket: str = "application") -> str:
    """Redis key of a panel's budget: per panel URL (hashed, no credentials in it)."""
    digest = hashlib.sha256(base_url.rstrip("/").lower().encode()).hexdigest()[:16]
    return f"pterodactyl:ratelimit:{bucket}:{digest}"


def build_rate_limiter(
    *,
    base_url: str,
    limit_per_minute: int = DEFAULT_LIMIT_PER_MINUTE,
    redis_url: str | None = None,
    max_wait: float = DEFAULT_MAX_WAIT_SECONDS,
    bucket: str = "application",
) -> InProcessRateLimiter | RedisRateLimiter:
    """A Redis-backed limiter when ``redis_url`` is set, else an in-process one."""
    if redis_url:
        return RedisRateLimiter.from_url(
            redis_url,
            key=limiter_key(base_url, bucket),
            limit_per_minute=limit_per_minute,
            max_wait=max_wait,
        )
    return InProcessRateLimiter(limit_per_minute, max_wait=max_wait)
