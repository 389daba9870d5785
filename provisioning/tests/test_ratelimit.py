"""Client-side rate limiting: in-process and Redis-backed (real Redis, db 15), fake time."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator

import pytest
from django.conf import settings as django_settings

from provisioning.pterodactyl import PanelRateLimited
from provisioning.pterodactyl.ratelimit import (
    InProcessRateLimiter,
    RedisRateLimiter,
    build_rate_limiter,
    limiter_key,
)
from provisioning.tests.conftest import FakeClock

# The suite's own Redis (TEST_REDIS_URL), never a hard-coded database.
REDIS_URL = django_settings.TEST_REDIS_URL


# =========================================================================== in-process


def test_in_process_allows_the_budget_then_waits_for_the_oldest_slot(clock):
    limiter = InProcessRateLimiter(
        3, window_seconds=60, max_wait=120, clock=clock, sleep=clock.sleep
    )
    for _ in range(3):
        limiter.acquire()
        clock.now += 1
    assert clock.sleeps == []
    limiter.acquire()  # the first slot (t=0) frees at t=60; now is t=3
    assert clock.sleeps == [57.0]


def test_in_process_gives_up_past_max_wait(clock):
    limiter = InProcessRateLimiter(1, max_wait=10, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    with pytest.raises(PanelRateLimited) as info:
        limiter.acquire()
    assert info.value.status is None  # raised locally: no request was sent
    assert info.value.retry_after == 60.0
    assert info.value.retryable is True
    assert clock.sleeps == []


def test_a_pause_the_panel_asked_for_is_named_as_such(clock):
    limiter = InProcessRateLimiter(100, max_wait=30, clock=clock, sleep=clock.sleep)
    limiter.block_for(45)  # the panel's 429 said Retry-After: 45
    with pytest.raises(PanelRateLimited) as info:
        limiter.acquire()
    assert "the panel answered 429" in info.value.message
    assert "used up" not in info.value.message
    assert info.value.retry_after == 45.0


def test_in_process_block_for_pauses_everyone(clock):
    limiter = InProcessRateLimiter(100, clock=clock, sleep=clock.sleep)
    limiter.block_for(5)
    limiter.acquire()
    assert clock.sleeps == [5.0]


def test_in_process_is_thread_safe():
    clock = FakeClock()
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            clock.now += seconds

    limiter = InProcessRateLimiter(50, max_wait=0, clock=clock, sleep=sleep)
    granted: list[int] = []
    refused: list[int] = []

    def worker() -> None:
        for _ in range(20):
            try:
                limiter.acquire()
                granted.append(1)
            except PanelRateLimited:
                refused.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 50
    assert len(refused) == 110


def test_invalid_budget():
    with pytest.raises(ValueError, match="at least 1"):
        InProcessRateLimiter(0)


def test_build_rate_limiter_without_redis_is_in_process():
    limiter = build_rate_limiter(base_url="https://panel.example.com", limit_per_minute=200)
    assert isinstance(limiter, InProcessRateLimiter)
    assert limiter.limit == 200


def test_limiter_key_has_no_credentials_and_is_per_panel():
    key = limiter_key("https://panel.example.com/")
    assert key == limiter_key("https://PANEL.example.com")
    assert key != limiter_key("https://other.example.com")
    assert key.startswith("pterodactyl:ratelimit:application:")


# =========================================================================== Redis


@pytest.fixture
def redis_client() -> Iterator[object]:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"Redis at {REDIS_URL} is unreachable ({type(exc).__name__})")
    yield client
    client.close()


@pytest.fixture
def redis_key(redis_client) -> Iterator[str]:
    key = f"test:ptero:{uuid.uuid4().hex}"
    yield key
    redis_client.delete(key, f"{key}:blocked")


def make_redis_limiter(redis_client, key: str, clock: FakeClock, **kwargs) -> RedisRateLimiter:
    options = {"limit_per_minute": 3, "max_wait": 120, "clock": clock, "sleep": clock.sleep}
    options.update(kwargs)
    return RedisRateLimiter(redis_client, key=key, **options)


def test_redis_limiter_budget_and_wait(redis_client, redis_key, clock):
    limiter = make_redis_limiter(redis_client, redis_key, clock)
    for _ in range(3):
        limiter.acquire()
        clock.now += 1
    assert clock.sleeps == []
    limiter.acquire()
    assert clock.sleeps == [57.0]
    # The window is a sorted set that expires by itself.
    assert redis_client.zcard(redis_key) == 3
    assert 0 < redis_client.pttl(redis_key) <= 60_000


def test_redis_limiter_is_shared_between_processes(redis_client, redis_key, clock):
    worker_a = make_redis_limiter(redis_client, redis_key, clock, max_wait=0)
    worker_b = make_redis_limiter(redis_client, redis_key, clock, max_wait=0)
    worker_a.acquire()
    worker_b.acquire()
    worker_a.acquire()
    with pytest.raises(PanelRateLimited) as info:
        worker_b.acquire()
    assert info.value.retry_after == pytest.approx(60.0)


def test_redis_block_for_is_seen_by_every_worker(redis_client, redis_key, clock):
    worker_a = make_redis_limiter(redis_client, redis_key, clock, limit_per_minute=100)
    worker_b = make_redis_limiter(redis_client, redis_key, clock, limit_per_minute=100)
    worker_a.block_for(7)
    worker_b.acquire()
    assert clock.sleeps == [7.0]


def test_redis_names_a_pause_the_panel_asked_for(redis_client, redis_key, clock):
    worker_a = make_redis_limiter(redis_client, redis_key, clock, limit_per_minute=100)
    worker_b = make_redis_limiter(redis_client, redis_key, clock, limit_per_minute=100, max_wait=30)
    worker_a.block_for(45)
    with pytest.raises(PanelRateLimited) as info:
        worker_b.acquire()
    assert "the panel answered 429" in info.value.message
    assert info.value.retry_after == pytest.approx(45.0)


def test_redis_limiter_with_the_servers_clock(redis_client, redis_key):
    limiter = RedisRateLimiter(redis_client, key=redis_key, limit_per_minute=2, max_wait=0)
    limiter.acquire()
    limiter.acquire()
    with pytest.raises(PanelRateLimited):
        limiter.acquire()


def test_redis_down_falls_back_to_in_process(caplog, clock):
    redis = pytest.importorskip("redis")
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # Nothing listens on port 1: every Redis call fails at once.
    unreachable = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    fallback = InProcessRateLimiter(1, max_wait=0, clock=clock, sleep=clock.sleep)
    limiter = RedisRateLimiter(
        unreachable, key="unused", limit_per_minute=1, clock=clock, fallback=fallback
    )
    caplog.set_level(logging.WARNING)
    limiter.acquire()
    with pytest.raises(PanelRateLimited):
        limiter.acquire()  # the fallback's budget (1/min) is used up
    assert caplog.text.count("Redis unavailable") == 1


def test_build_rate_limiter_with_redis(redis_client):
    limiter = build_rate_limiter(
        base_url="https://panel.example.com", limit_per_minute=120, redis_url=REDIS_URL
    )
    assert isinstance(limiter, RedisRateLimiter)
    assert limiter.limit == 120
    assert "redis://" not in repr(limiter)
