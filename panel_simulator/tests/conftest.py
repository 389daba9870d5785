"""The simulator's tests share the panel-client fakes of provisioning/tests (clock, simulator,
a client talking to it through `responses`), so the contract is checked with our real client."""

from provisioning.tests.conftest import (  # noqa: F401  (pytest fixtures)
    clock,
    rsps,
    sim,
    sim_client,
    sim_rsps,
)
