"""sync_panel and pterodactyl_check against the simulator (through responses)."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from servers.models import Egg, EggVariable, Location, Node


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_sync_panel_imports_everything_idempotently(saga):
    first = run("sync_panel")

    assert "locations: 2 created" in first
    assert sorted(Location.objects.values_list("short_code", "panel_id")) == [("eu", 1), ("us", 2)]
    eu_node = Node.objects.get(panel_id=1)
    assert (eu_node.name, eu_node.location.short_code, eu_node.memory_mb) == (
        "eu-fra-1",
        "eu",
        65536,
    )
    assert eu_node.free_allocations == 36
    us_node = Node.objects.get(panel_id=2)
    assert us_node.memory_overallocate_percent == 25
    paper = Egg.objects.get(panel_id=1)
    assert paper.name == "Paper"
    jar = EggVariable.objects.get(egg=paper, env_variable="SERVER_JARFILE")
    assert jar.rules == r"required|regex:/^([\w\d._-]+)(\.jar)$/"
    assert Egg.objects.get(panel_id=2).variables.count() == 10

    second = run("sync_panel")
    assert "locations: 0 created , 0 updated , 2 unchanged" in second
    assert "nodes: 0 created , 0 updated , 2 unchanged" in second
    assert "eggs: 0 created , 0 updated , 2 unchanged" in second

    saga.panel.nodes[1].memory = 70000
    third = run("sync_panel")
    assert "nodes: 0 created , 1 updated ['eu-fra-1']" in third
    assert Node.objects.get(panel_id=1).memory_mb == 70000


def test_demo_rows_match_the_simulator(saga):
    """The demo data `seed_catalog` creates equals what sync_panel imports from the simulator."""
    from servers.demo import demo_servers_seed

    demo_servers_seed()
    before = _snapshot()
    output = run("sync_panel")
    assert _snapshot() == before, output


def _snapshot() -> dict:
    return {
        "locations": sorted(Location.objects.values_list("short_code", "long_name", "panel_id")),
        "nodes": sorted(
            Node.objects.values_list(
                "panel_id", "name", "location__short_code", "memory_mb", "disk_mb"
            )
        ),
        "variables": sorted(
            EggVariable.objects.values_list(
                "egg__panel_id", "env_variable", "rules", "default_value", "user_editable"
            )
        ),
    }


def test_pterodactyl_check_passes_against_the_simulator(saga, catalog):
    output = run("pterodactyl_check")
    assert "[FAIL]" not in output
    assert "Panel reachable" in output
    assert "DEFAULT_NODE_ID=1 is eu-fra-1" in output
    assert "Plan Bronze: egg Paper, image ok" in output
    assert "Node eu-fra-1: 36 free allocation(s)" in output


def test_pterodactyl_check_fails_clearly_with_a_wrong_key(saga, catalog, settings):
    settings.PTERODACTYL_ADMIN_API_KEY = "ptla_WRONGkey001" + "x" * 32
    out = StringIO()
    with pytest.raises(CommandError, match="check failed"):
        call_command("provision_test", stdout=out)
    report = out.getvalue()
    assert "[FAIL] The panel refused the API key" in report
    assert "fix:" in report
    assert settings.PTERODACTYL_ADMIN_API_KEY not in report
    assert "x" * 32 not in report


def test_pterodactyl_check_reports_missing_egg_and_node(saga, catalog, settings):
    from billing.models import Plan

    Plan.objects.filter(slug="gold").update(egg_id=99)
    settings.DEFAULT_NODE_ID = 42
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("pterodactyl_check", stdout=out)
    report = out.getvalue()
    assert "[FAIL] DEFAULT_NODE_ID=42 does not exist" in report
    assert "[FAIL] Plan Gold: egg 99 not found in nest 1" in report


def test_non_admin_key_is_refused_with_a_hint(saga, catalog, settings):
    settings.PTERODACTYL_ADMIN_API_KEY = saga.sim.seed.non_admin_api_key
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("pterodactyl_check", stdout=out)
    assert "[FAIL] The panel refused the API key" in out.getvalue()


def test_local_settings_demo_keys_match_the_simulator():
    import importlib
    import os

    from panel_simulator import DEMO_API_KEY, DEMO_CLIENT_API_KEY

    saved = {k: os.environ.pop(k, None) for k in ("PTERODACTYL_URL", "PTERODACTYL_ADMIN_API_KEY")}
    try:
        local = importlib.import_module("config.django.local")
        local = importlib.reload(local)
        assert local.PTERODACTYL_ADMIN_API_KEY == DEMO_API_KEY
        assert local.PTERODACTYL_CLIENT_API_KEY == DEMO_CLIENT_API_KEY
    finally:
        for key, value in saved.items():
            if value is not None:
                os.environ[key] = value


def test_seed_catalog_after_sync_panel_never_overwrites_a_real_node(saga):
    """A real panel whose node 2 is a small eu node: the demo's node 2 (us-nyc-1 in us) must
    not replace it, and no demo location or egg is added to a synced mirror."""
    saga.panel.nodes[2].name = "eu-node-2-small"
    saga.panel.nodes[2].location_id = 1
    saga.panel.nodes[2].memory = 4096
    run("sync_panel")
    mirrored = sorted(Node.objects.values_list("panel_id", "name", "location__short_code"))
    locations = sorted(Location.objects.values_list("short_code", "long_name"))

    output = run("seed_catalog")

    assert "none created (the panel mirror is not empty)" in output
    assert sorted(Node.objects.values_list("panel_id", "name", "location__short_code")) == (
        mirrored
    )
    assert mirrored == [(1, "eu-fra-1", "eu"), (2, "eu-node-2-small", "eu")]
    assert Node.objects.get(panel_id=2).memory_mb == 4096
    assert sorted(Location.objects.values_list("short_code", "long_name")) == locations


def test_seed_catalog_on_an_empty_mirror_creates_the_demo_servers(db):
    output = run("seed_catalog")
    assert "2 locations created, 2 nodes created, 2 eggs created" in output
    assert Node.objects.get(panel_id=2).name == "us-nyc-1"


def test_panel_check_runs_its_named_checks_in_order():
    from provisioning.panel_check import PANEL_CHECKS

    assert [check.name for check in PANEL_CHECKS] == [
        "url",
        "api_key",
        "connection",
        "default_node",
        "plans",
        "free_allocations",
    ]


def test_panel_check_stops_before_asking_the_panel_when_settings_are_missing(settings):
    from provisioning.panel_check import FAIL, panel_check

    settings.PTERODACTYL_URL, settings.PTERODACTYL_ADMIN_API_KEY = "", ""

    def no_client():
        raise AssertionError("the panel must not be asked")

    results = panel_check(plans=[], client_factory=no_client)

    assert [(r.status, r.title) for r in results] == [
        (FAIL, "PTERODACTYL_URL is not set"),
        (FAIL, "PTERODACTYL_ADMIN_API_KEY is not set"),
    ]
