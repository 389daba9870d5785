"""Two suites, or two xdist workers of one suite, share a Redis database without touching each
other's keys: the broker's keys carry the test process's prefix and the tests clear only those."""

import os
import uuid

import pytest
import redis
from django.conf import settings

from config.celery import app as celery_app
from tests.support import redis_clear_own_keys

pytestmark = pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("redis"), reason="the Redis broker's key prefix"
)


def test_the_broker_key_prefix_names_this_test_process():
    expected = f"test:{os.environ.get('PYTEST_XDIST_WORKER', 'main')}:"
    prefix = settings.TEST_REDIS_KEY_PREFIX
    assert prefix == expected
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] == prefix


def test_queued_tasks_live_under_our_prefix_and_clearing_spares_other_keys():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = f"isolation-probe-{uuid.uuid4().hex[:8]}"
    someone_elses = f"test:another-suite:{queue}"
    client.set(someone_elses, "theirs")
    try:
        celery_app.send_task("tests.isolation_probe", queue=queue)
        assert client.llen(f"{settings.TEST_REDIS_KEY_PREFIX}{queue}") == 1
        assert not client.exists(queue)  # nothing outside our namespace

        assert redis_clear_own_keys() >= 1
        assert not client.exists(f"{settings.TEST_REDIS_KEY_PREFIX}{queue}")
        assert client.get(someone_elses) == b"theirs"
    finally:
        client.delete(someone_elses)
