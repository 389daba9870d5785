"""Shared fakes for the panel client/simulator tests: no real time, no sockets, no database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from panel_simulator import PanelSimulator
from panel_simulator.testing import install_responses
from provisioning.pterodactyl import InProcessRateLimiter, PterodactylClient

PANEL = "https://panel.example.com"
KEY = "ptla_TESTkey0001" + "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tXY"


class FakeClock:
    """A clock whose ``sleep`` just moves time forward (and remembers how long)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def make_client(clock: FakeClock, **kwargs: object) -> PterodactylClient:
    options: dict[str, object] = {
        "sleep": clock.sleep,
        "random": lambda: 0.5,  # jitter factor 1.0: delays are exactly base * 2^n
        "rate_limiter": InProcessRateLimiter(10_000, clock=clock, sleep=clock.sleep),
    }
    options.update(kwargs)
    return PterodactylClient(PANEL, KEY, **options)  # type: ignore[arg-type]


@pytest.fixture
def client(clock: FakeClock) -> PterodactylClient:
    return make_client(clock)


@pytest.fixture
def sim(clock: FakeClock) -> PanelSimulator:
    return PanelSimulator(install_delay=2, clock=clock, sleep=clock.sleep, rng_seed=7)


@pytest.fixture
def sim_rsps(sim: PanelSimulator) -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        install_responses(mock, sim, PANEL)
        yield mock


@pytest.fixture
def sim_client(sim: PanelSimulator, sim_rsps: responses.RequestsMock, clock: FakeClock):
    assert sim.seed is not None
    return PterodactylClient(
        PANEL,
        sim.seed.admin_api_key,
        sleep=clock.sleep,
        random=lambda: 0.5,
        rate_limiter=InProcessRateLimiter(10_000, clock=clock, sleep=clock.sleep),
    )
