"""Fixtures for cross-app flows: the saga against the panel simulator, with Celery eager.

The simulator answers through `responses` (no socket). Tasks run eagerly in-process, and the
database is transactional so `on_commit` hooks fire as in production: confirming a payment runs
the whole saga before the call returns.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import responses

from config.celery import app as celery_app
from panel_simulator import PanelSimulator
from panel_simulator.testing import install_responses
from provisioning.pterodactyl.transport import shared_limiters_reset
from tests.support import redis_clear_own_keys

PANEL_URL = "https://panel.test"


@dataclass
class SagaWorld:
    sim: PanelSimulator
    rsps: responses.RequestsMock

    @property
    def panel(self):
        return self.sim.panel

    def fault(self, kind: str, **options: object) -> None:
        self.sim.faults.add(kind, **options)

    def calls(self, method: str, path_prefix: str) -> list[tuple[str, str, int]]:
        return [c for c in self.sim.calls if c[0] == method and c[1].startswith(path_prefix)]


@pytest.fixture
def saga(settings, transactional_db) -> Iterator[SagaWorld]:
    sim = PanelSimulator(install_delay=0, rng_seed=1)
    shared_limiters_reset()  # no budget window or 429 pause carried over from another test
    settings.PTERODACTYL_URL = PANEL_URL
    settings.PTERODACTYL_ADMIN_API_KEY = sim.seed.admin_api_key
    settings.PTERODACTYL_RATE_LIMIT_PER_MINUTE = 1_000_000
    settings.PTERODACTYL_RATE_LIMIT_REDIS_URL = None
    settings.PTERODACTYL_HTTP_MAX_RETRIES = 0  # retries are the saga's job in these tests
    settings.PROVISIONING_POLL_INTERVAL = 0
    settings.PROVISIONING_RETRY_BACKOFF = 0
    settings.PANEL_OPERATIONS_RETRY_BACKOFF = 0  # the drain retries at once in these tests
    settings.PANEL_OPERATIONS_RATE_LIMIT_PER_MINUTE = 1_000_000
    settings.FLEET_READ_RATE_LIMIT_PER_MINUTE = 1_000_000
    settings.PROVISIONING_ENABLED = True
    settings.ADMINS = [("", "ops@example.com")]  # staff alerts need a recipient
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install_responses(rsps, sim, PANEL_URL)
        yield SagaWorld(sim=sim, rsps=rsps)
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def manual_steps(settings):
    """Saga steps are queued on the test broker but not run: the test drives them itself."""

    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True
    redis_clear_own_keys()
