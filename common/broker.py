"""Looking at the Celery broker from outside a worker: is it up, how many messages wait per queue.

For /readyz and /metrics, so both use a short timeout and never raise: an answer is a value or
"unknown". Redis keys honour the configured `global_keyprefix` (the test suite sets one per
process) and kombu's priority sub-queues (`<queue>\\x06\\x16<priority>`); the filesystem broker
of the local demo is a folder of `<time>_<uuid>.<queue>.msg` files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import redis
from django.conf import settings

# kombu's Redis transport: a message with priority p > 0 sits in "<queue><SEP><step>".
_KOMBU_PRIORITY_SEP = "\x06\x16"
_KOMBU_PRIORITY_STEPS = (0, 3, 6, 9)


@dataclass(frozen=True)
class BrokerStatus:
    up: bool
    # Short and secret-free ("timeout", "connection refused"); the URL is never included.
    detail: str = ""


def broker_queue_names() -> list[str]:
    queues = getattr(settings, "CELERY_TASK_QUEUES", None) or []
    names = [getattr(queue, "name", str(queue)) for queue in queues]
    return names or [getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")]


def _transport_options() -> dict:
    return dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {})


def _redis_client(timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        settings.CELERY_BROKER_URL,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry_on_timeout=False,
    )


def _kind() -> str:
    url = settings.CELERY_BROKER_URL or ""
    if url.startswith(("redis://", "rediss://", "redis+socket://")):
        return "redis"
    if url.startswith("filesystem"):
        return "filesystem"
    if url.startswith("memory"):
        return "memory"
    return "other"


def _describe(exc: Exception) -> str:
    if isinstance(exc, redis.exceptions.TimeoutError):
        return "timeout"
    if isinstance(exc, redis.exceptions.AuthenticationError):
        return "authentication failed"
    if isinstance(exc, redis.exceptions.ConnectionError):
        return "connection failed"
    return type(exc).__name__


def broker_ping(*, timeout: float) -> BrokerStatus:
    kind = _kind()
    try:
        if kind == "redis":
            client = _redis_client(timeout)
            try:
                client.ping()
            finally:
                client.close()
            return BrokerStatus(up=True)
        if kind == "filesystem":
            folder = _transport_options().get("data_folder_in", "")
            if folder and os.path.isdir(folder) and os.access(folder, os.W_OK):
                return BrokerStatus(up=True)
            return BrokerStatus(up=False, detail="broker folder missing or not writable")
        if kind == "memory":
            return BrokerStatus(up=True)
        # RabbitMQ and the rest: one connection attempt through kombu.
        from kombu import Connection

        with Connection(settings.CELERY_BROKER_URL, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
        return BrokerStatus(up=True)
    except Exception as exc:  # a probe reports, it does not raise
        return BrokerStatus(up=False, detail=_describe(exc))


def broker_queue_depths(*, timeout: float) -> dict[str, int] | None:
    """Messages waiting per queue, or None when the broker cannot be read (or its kind is not
    one we can count)."""
    names = broker_queue_names()
    kind = _kind()
    if kind == "redis":
        prefix = _transport_options().get("global_keyprefix", "") or ""
        client = _redis_client(timeout)
        try:
            pipe = client.pipeline(transaction=False)
            for name in names:
                for step in _KOMBU_PRIORITY_STEPS:
                    key = name if step == 0 else f"{name}{_KOMBU_PRIORITY_SEP}{step}"
                    pipe.llen(f"{prefix}{key}")
            lengths = pipe.execute()
        except redis.exceptions.RedisError:
            return None
        finally:
            client.close()
        per_queue = len(_KOMBU_PRIORITY_STEPS)
        return {
            name: sum(int(n) for n in lengths[i * per_queue : (i + 1) * per_queue])
            for i, name in enumerate(names)
        }
    if kind == "filesystem":
        folder = _transport_options().get("data_folder_in", "")
        depths = dict.fromkeys(names, 0)
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    # "<time>_<uuid>.<queue>.msg"
                    queue = entry.name.partition(".")[2].removesuffix(".msg")
                    if queue in depths:
                        depths[queue] += 1
        except OSError:
            return None
        return depths
    return None
