"""Regression tests for review findings on the client and the simulator."""

import pytest

from panel_simulator.api import PanelSimulator
from panel_simulator.testing import simulated_panel
from provisioning.pterodactyl import PanelUnavailable, PterodactylClient
from provisioning.pterodactyl.types import FeatureLimits, Limits

BASE = "http://panel.test"


def test_build_patch_replayed_after_lost_reply():
    sim = PanelSimulator(install_delay=0)
    seed = sim.seed
    with simulated_panel(sim, BASE):
        client = PterodactylClient(BASE, seed.admin_api_key, sleep=lambda s: None)
        free = client.list_free_allocations(seed.eu_node_id)
        a, b, c = free[0].id, free[1].id, free[2].id
        egg = client.get_egg(seed.minecraft_nest_id, seed.paper_egg_id)
        server = client.create_server(
            name="s",
            user_id=seed.admin_user_id,
            egg_id=egg.id,
            docker_image=egg.docker_image,
            startup=egg.startup,
            environment=egg.environment_with_defaults(),
            limits=Limits(memory=1024, swap=0, disk=1024, io=500, cpu=100),
            feature_limits=FeatureLimits(),
            allocation_id=a,
            additional_allocation_ids=[b],
        ).resource
        # the panel applies the PATCH, the reply is lost (read timeout): not sent again
        sim.faults.add("read_timeout", method="PATCH", path="/build$", seconds=1)
        with pytest.raises(PanelUnavailable):
            client.update_server_build(server.id, add_allocations=[c], remove_allocations=[a])
        builds = [call for call in sim.calls if call[0] == "PATCH" and call[1].endswith("/build")]
        assert len(builds) == 1
        assert client.get_server(server.id).allocation_id != a  # it was applied, once


def test_suspend_with_wings_down_changes_nothing():
    sim = PanelSimulator(install_delay=3600)
    seed = sim.seed
    with simulated_panel(sim, BASE):
        client = PterodactylClient(BASE, seed.admin_api_key, sleep=lambda s: None, max_retries=0)
        egg = client.get_egg(seed.minecraft_nest_id, seed.paper_egg_id)
        free = client.list_free_allocations(seed.eu_node_id)
        server = client.create_server(
            name="s",
            user_id=seed.admin_user_id,
            egg_id=egg.id,
            docker_image=egg.docker_image,
            startup=egg.startup,
            environment=egg.environment_with_defaults(),
            limits=Limits(memory=1024, swap=0, disk=1024, io=500, cpu=100),
            allocation_id=free[0].id,
        ).resource
        assert server.status == "installing"
        sim.panel.set_wings_failure(seed.eu_node_id, 0)  # Wings down
        with pytest.raises(PanelUnavailable):
            client.suspend_server(server.id)  # 504
        # doc 4.2 "If Wings fails, the status is rolled back"; 10.11 "... change nothing"
        assert client.get_server(server.id).status == "installing"


def test_application_key_on_client_api_gets_404_for_a_missing_server_first():
    """Doc 1.2: binding (404) comes before the application-key refusal (403)."""
    import requests

    sim = PanelSimulator()
    with simulated_panel(sim, BASE):
        headers = {
            "Authorization": f"Bearer {sim.seed.admin_api_key}",
            "Accept": "application/json",
        }
        missing = requests.get(f"{BASE}/api/client/servers/zzzzzzzz", headers=headers, timeout=5)
        assert missing.status_code == 404
