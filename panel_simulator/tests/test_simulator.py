"""The simulated panel's rules, driven through ``PanelSimulator.handle`` (no HTTP, no sockets)."""

from __future__ import annotations

import json
import threading
from typing import Any

from panel_simulator import (
    DEMO_API_KEY,
    DEMO_CLIENT_API_KEY,
    DEMO_NON_ADMIN_API_KEY,
    PanelSimulator,
    SimRequest,
    SimResponse,
)
from panel_simulator.api import parse_php_query
from panel_simulator.state import READ
from provisioning.tests.conftest import FakeClock

A = "/api/application"


def call(
    sim: PanelSimulator,
    method: str,
    path: str,
    body: Any = None,
    *,
    key: str | None = DEMO_API_KEY,
    query: str = "",
    accept: str | None = "application/json",
    content_type: str | None = "application/json",
    raw: bytes | None = None,
    remote: str = "127.0.0.1",
) -> SimResponse:
    headers: dict[str, str] = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if accept:
        headers["Accept"] = accept
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    if data and content_type:
        headers["Content-Type"] = content_type
    return sim.handle(SimRequest(method, path, query, headers, data, remote))


def errors(response: SimResponse) -> list[tuple[str, str, str]]:
    return [
        (e["meta"]["source_field"], e["meta"]["rule"], e["detail"])
        for e in response.json()["errors"]
    ]


def free_allocation(sim: PanelSimulator, node_id: int | None = None) -> int:
    assert sim.seed is not None
    node_id = node_id or sim.seed.eu_node_id
    return next(
        a.id for a in sim.panel.sorted_allocations() if a.node_id == node_id and a.server_id is None
    )


def server_body(sim: PanelSimulator, **overrides: Any) -> dict[str, Any]:
    assert sim.seed is not None
    body: dict[str, Any] = {
        "name": "Survival",
        "user": sim.seed.admin_user_id,
        "egg": sim.seed.paper_egg_id,
        "docker_image": "ghcr.io/pterodactyl/yolks:java_17",
        "startup": "java -Xms128M -jar {{SERVER_JARFILE}}",
        "environment": {"SERVER_JARFILE": "server.jar", "BUILD_NUMBER": "latest"},
        "limits": {"memory": 2048, "swap": 0, "disk": 10240, "io": 500, "cpu": 200},
        "feature_limits": {"databases": 0, "backups": 1},
        "allocation": {"default": free_allocation(sim)},
    }
    body.update(overrides)
    return body


def create_server(sim: PanelSimulator, **overrides: Any) -> dict[str, Any]:
    response = call(sim, "POST", f"{A}/servers", server_body(sim, **overrides))
    assert response.status == 201, response.body
    return response.json()["attributes"]


def get_server(sim: PanelSimulator, server_id: int, query: str = "") -> dict[str, Any]:
    response = call(sim, "GET", f"{A}/servers/{server_id}", query=query)
    assert response.status == 200, response.body
    return response.json()["attributes"]


def build_body(server: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    limits = {k: v for k, v in server["limits"].items() if k != "oom_disabled"}
    body = {
        "allocation": server["allocation"],
        "limits": limits,
        "feature_limits": dict(server["feature_limits"]),
    }
    body.update(overrides)
    return body


# =========================================================================== seed


def test_seed_matches_the_brief(sim):
    seed = sim.seed
    panel = sim.panel
    assert {loc.short: loc.long for loc in panel.locations.values()} == {
        "eu": "Europe",
        "us": "United States",
    }
    assert {n.location_id for n in panel.nodes.values()} == {
        seed.eu_location_id,
        seed.us_location_id,
    }
    for node_id in (seed.eu_node_id, seed.us_node_id):
        ports = sorted(a.port for a in panel.allocations.values() if a.node_id == node_id)
        assert ports == list(range(25565, 25601))
    paper = {v.env_variable: v.rules for v in panel.variables_of(seed.paper_egg_id)}
    assert paper["SERVER_JARFILE"] == r"required|regex:/^([\w\d._-]+)(\.jar)$/"
    assert paper["BUILD_NUMBER"] == "required|string|max:20"
    bot = {v.env_variable for v in panel.variables_of(seed.bot_egg_id)}
    assert {"GIT_ADDRESS", "BRANCH", "USER_UPLOAD", "AUTO_UPDATE", "NODE_PACKAGES"} <= bot
    assert {"UNNODE_PACKAGES", "MAIN_FILE"} <= bot
    for key in (DEMO_API_KEY, DEMO_NON_ADMIN_API_KEY, DEMO_CLIENT_API_KEY):
        assert len(key) == 48
        assert key[:5] in ("ptla_", "ptlc_")
    assert panel.users[seed.admin_user_id].root_admin
    assert not panel.users[seed.non_admin_user_id].root_admin


def test_egg_variables_use_laravel_native_timestamps(sim):
    seed = sim.seed
    response = call(
        sim,
        "GET",
        f"{A}/nests/{seed.minecraft_nest_id}/eggs/{seed.paper_egg_id}",
        query="include=variables",
    )
    egg = response.json()["attributes"]
    variable = egg["relationships"]["variables"]["data"][0]
    assert variable["object"] == "egg_variable"
    assert variable["attributes"]["created_at"].endswith(".000000Z")
    assert egg["created_at"].endswith("+00:00")
    assert egg["docker_images"]["Java 17"] == "ghcr.io/pterodactyl/yolks:java_17"
    assert egg["docker_image"] == "ghcr.io/pterodactyl/yolks:java_21"


# =========================================================================== install lifecycle


def test_create_then_installing_then_ready_after_the_delay(sim, clock):
    server = create_server(sim)
    assert server["status"] == "installing"
    assert server["container"]["installed"] == 0
    assert server["suspended"] is False
    clock.now += 1.9
    assert get_server(sim, server["id"])["status"] == "installing"
    clock.now += 0.2
    ready = get_server(sim, server["id"])
    assert ready["status"] is None
    assert ready["container"]["installed"] == 1


def test_install_delay_zero_is_ready_on_the_next_request(clock):
    sim = PanelSimulator(install_delay=0, clock=clock)
    server = create_server(sim)
    assert server["status"] == "installing"
    assert get_server(sim, server["id"])["status"] is None


def test_failing_egg_gives_install_failed_and_reinstall_failed(sim, clock):
    sim.panel.eggs[sim.seed.paper_egg_id].fail_install = True
    server = create_server(sim)
    clock.now += 5
    assert get_server(sim, server["id"])["status"] == "install_failed"
    assert get_server(sim, server["id"])["container"]["installed"] == 0
    assert call(sim, "POST", f"{A}/servers/{server['id']}/reinstall").status == 204
    clock.now += 5
    failed = get_server(sim, server["id"])
    assert failed["status"] == "reinstall_failed"
    assert failed["container"]["installed"] == 1


def test_skip_scripts_cannot_fail_an_install(sim, clock):
    sim.panel.eggs[sim.seed.paper_egg_id].fail_install = True
    server = create_server(sim, skip_scripts=True)
    clock.now += 5
    assert get_server(sim, server["id"])["status"] is None


def test_a_suspension_survives_the_install_callback(sim, clock):
    server = create_server(sim)
    assert call(sim, "POST", f"{A}/servers/{server['id']}/suspend").status == 204
    clock.now += 5
    state = get_server(sim, server["id"])
    assert state["status"] == "suspended"
    assert state["suspended"] is True
    # Unsuspending always sets null.
    call(sim, "POST", f"{A}/servers/{server['id']}/unsuspend")
    assert get_server(sim, server["id"])["status"] is None


def test_control_can_finish_an_install_now(sim):
    server = create_server(sim)
    sim.panel.complete_install(sim.panel.servers[server["id"]], success=False)
    assert get_server(sim, server["id"])["status"] == "install_failed"


# =========================================================================== create validation


def test_empty_environment_fails_on_required_variables(sim):
    response = call(sim, "POST", f"{A}/servers", server_body(sim, environment={}))
    assert response.status == 422
    assert errors(response) == [
        (
            "environment.SERVER_JARFILE",
            "required",
            "The Server Jar File variable field is required.",
        ),
        ("environment.BUILD_NUMBER", "required", "The Build Number variable field is required."),
    ]


def test_variable_rules_regex_and_string(sim):
    response = call(
        sim,
        "POST",
        f"{A}/servers",
        server_body(sim, environment={"SERVER_JARFILE": "server.zip", "BUILD_NUMBER": 123}),
    )
    assert errors(response) == [
        ("environment.SERVER_JARFILE", "regex", "The Server Jar File variable format is invalid."),
        ("environment.BUILD_NUMBER", "string", "The Build Number variable must be a string."),
    ]


def test_environment_must_be_present_and_an_object(sim):
    body = server_body(sim)
    del body["environment"]
    response = call(sim, "POST", f"{A}/servers", body)
    assert errors(response) == [
        ("environment", "present", "The environment field must be present.")
    ]
    response = call(sim, "POST", f"{A}/servers", server_body(sim, environment="x"))
    assert errors(response) == [("environment", "array", "The environment must be an array.")]


def test_form_validation_messages_and_order(sim):
    body = server_body(
        sim,
        external_id=123,
        name=None,
        user=9999,
        docker_image="bad image!",
        limits={"memory": 1024, "swap": -2, "disk": 1, "io": 5},
        feature_limits={"databases": 0},
    )
    response = call(sim, "POST", f"{A}/servers", body)
    assert response.status == 422
    assert errors(response) == [
        ("external_id", "string", "The external id must be a string."),
        ("name", "required", "The name field is required."),
        ("user", "exists", "The selected user is invalid."),
        ("docker_image", "regex", "The docker image format is invalid."),
        ("limits.swap", "min", "The limits.swap must be at least -1."),
        ("limits.io", "between", "The limits.io must be between 10 and 1000."),
        ("limits.cpu", "required", "The limits.cpu field is required."),
        ("feature_limits.backups", "present", "The feature limits.backups field must be present."),
    ]
    element = response.json()["errors"][0]
    assert element["code"] == "ValidationException"
    assert element["status"] == "422"


def test_one_error_element_per_message(sim):
    response = call(
        sim,
        "POST",
        f"{A}/users",
        {"email": "x" * 200, "username": "abc", "first_name": "a", "last_name": "b"},
    )
    assert errors(response) == [
        ("email", "email", "The email must be a valid email address."),
        ("email", "between", "The email must be between 1 and 191 characters."),
    ]


def test_taken_allocation_and_duplicate_external_id(sim):
    first = create_server(sim, external_id="Order-1")
    response = call(
        sim,
        "POST",
        f"{A}/servers",
        server_body(sim, external_id="order-1", allocation={"default": first["allocation"]}),
    )
    assert errors(response) == [
        ("external_id", "unique", "The external id has already been taken."),
        ("allocation.default", "exists", "The selected allocation.default is invalid."),
    ]


def test_inputs_are_trimmed_and_empty_strings_become_null(sim):
    server = create_server(sim, name="  Padded  ", external_id="", description="")
    assert server["name"] == "Padded"
    assert server["external_id"] is None
    assert server["description"] == ""


def test_defaults_of_a_created_server(sim):
    server = create_server(sim, feature_limits={"databases": None, "backups": None})
    assert server["limits"]["oom_disabled"] is True
    assert server["feature_limits"] == {"databases": 0, "allocations": 0, "backups": 0}
    env = server["container"]["environment"]
    assert env["MINECRAFT_VERSION"] == ""  # stored "" (missing) is kept, not the default
    assert env["P_SERVER_LOCATION"] == "eu"
    assert env["P_SERVER_UUID"] == server["uuid"]
    assert server["identifier"] == server["uuid"][:8]


def test_explicit_allocation_bypasses_capacity_and_attaches_other_nodes(sim):
    us_allocation = free_allocation(sim, sim.seed.us_node_id)
    server = create_server(
        sim,
        limits={"memory": 10_000_000, "swap": 0, "disk": 1, "io": 500, "cpu": 0},
        allocation={"default": free_allocation(sim), "additional": [us_allocation]},
    )
    attached = get_server(sim, server["id"], "include=allocations")
    ids = [a["attributes"]["id"] for a in attached["relationships"]["allocations"]["data"]]
    assert us_allocation in ids
    node = call(sim, "GET", f"{A}/nodes/{server['node']}").json()["attributes"]
    assert node["allocated_resources"]["memory"] == 10_000_000


def test_wings_down_on_create_leaves_nothing_behind(sim):
    sim.panel.set_wings_failure(sim.seed.eu_node_id, 0)
    allocation_id = free_allocation(sim)
    before = len(sim.panel.servers)
    response = call(sim, "POST", f"{A}/servers", server_body(sim, external_id="x-1"))
    assert response.status == 504
    assert response.json()["errors"] == [
        {
            "code": "DaemonConnectionException",
            "status": "504",
            "detail": "Could not establish a connection to the machine running this server. "
            "Please try again.",
        }
    ]
    assert len(sim.panel.servers) == before
    assert sim.panel.allocations[allocation_id].server_id is None
    assert call(sim, "GET", f"{A}/servers/external/x-1").status == 404


def test_wings_5xx_message(sim):
    sim.panel.set_wings_failure(sim.seed.eu_node_id, 500)
    response = call(sim, "POST", f"{A}/servers", server_body(sim))
    assert response.status == 500
    assert "(code: 500) (request_id: " in response.json()["errors"][0]["detail"]


# =========================================================================== deploy


def deploy_body(sim: PanelSimulator, memory: int = 1024, **deploy: Any) -> dict[str, Any]:
    body = server_body(sim, limits={"memory": memory, "swap": 0, "disk": 1024, "io": 500, "cpu": 0})
    del body["allocation"]
    body["deploy"] = {"locations": [], "dedicated_ip": False, "port_range": [], **deploy}
    return body


def test_deploy_picks_a_free_allocation_in_the_location(sim):
    response = call(
        sim, "POST", f"{A}/servers", deploy_body(sim, locations=[sim.seed.us_location_id])
    )
    assert response.status == 201
    assert response.json()["attributes"]["node"] == sim.seed.us_node_id


def test_deploy_no_viable_node(sim):
    response = call(sim, "POST", f"{A}/servers", deploy_body(sim, memory=10**9))
    assert response.status == 400
    assert response.json()["errors"] == [
        {
            "code": "NoViableNodeException",
            "status": "400",
            "detail": "No nodes satisfying the requirements specified for automatic deployment "
            "could be found.",
        }
    ]


def test_overallocate_minus_one_is_99_percent(sim):
    node = sim.panel.nodes[sim.seed.eu_node_id]
    node.memory, node.memory_overallocate = 1000, -1
    eu = [sim.seed.eu_location_id]
    assert call(sim, "POST", f"{A}/servers", deploy_body(sim, 991, locations=eu)).status == 400
    assert call(sim, "POST", f"{A}/servers", deploy_body(sim, 990, locations=eu)).status == 201


def test_private_nodes_are_skipped_but_maintenance_is_not_checked(sim):
    sim.panel.nodes[sim.seed.eu_node_id].public = False
    eu = [sim.seed.eu_location_id]
    assert call(sim, "POST", f"{A}/servers", deploy_body(sim, locations=eu)).status == 400
    sim.panel.nodes[sim.seed.eu_node_id].public = True
    sim.panel.nodes[sim.seed.eu_node_id].maintenance_mode = True
    assert call(sim, "POST", f"{A}/servers", deploy_body(sim, locations=eu)).status == 201


def test_deploy_port_range_rules(sim):
    response = call(sim, "POST", f"{A}/servers", deploy_body(sim, port_range=["30000"]))
    assert response.json()["errors"][0]["code"] == "NoViableAllocationException"
    assert response.json()["errors"][0]["detail"] == (
        "No allocations satisfying the requirements for automatic deployment were found."
    )
    response = call(sim, "POST", f"{A}/servers", deploy_body(sim, port_range=["25000-26001"]))
    assert response.json()["errors"][0] == {
        "code": "DisplayException",
        "status": "400",
        "detail": "Adding more than 1000 ports in a single range at once is not supported.",
    }
    # Entries that are neither a port nor a range are dropped: any port qualifies.
    response = call(sim, "POST", f"{A}/servers", deploy_body(sim, port_range=["abc"]))
    assert response.status == 201
    response = call(sim, "POST", f"{A}/servers", deploy_body(sim, port_range=["25600"]))
    server = response.json()["attributes"]
    assert sim.panel.allocations[server["allocation"]].port == 25600


def test_dedicated_ip_excludes_addresses_in_use(sim):
    eu = [sim.seed.eu_location_id]
    assert call(sim, "POST", f"{A}/servers", deploy_body(sim, locations=eu)).status == 201
    response = call(sim, "POST", f"{A}/servers", deploy_body(sim, locations=eu, dedicated_ip=True))
    assert response.json()["errors"][0]["code"] == "NoViableAllocationException"


def test_deploy_block_validation(sim):
    body = server_body(sim, deploy={})
    del body["allocation"]
    assert errors(call(sim, "POST", f"{A}/servers", body)) == [
        ("allocation.default", "required", "The allocation.default field is required."),
        ("deploy", "required", "The deploy field is required."),
    ]
    body = deploy_body(sim, port_range=[25565])
    del body["deploy"]["dedicated_ip"]
    del body["deploy"]["locations"]
    assert errors(call(sim, "POST", f"{A}/servers", body)) == [
        ("deploy.locations", "present", "The deploy.locations field must be present."),
        (
            "deploy.dedicated_ip",
            "required_with",
            "The deploy.dedicated ip field is required when deploy / boolean is present.",
        ),
        ("deploy.port_range.0", "string", "The deploy.port range.0 must be a string."),
    ]


def test_concurrent_deploys_never_share_an_allocation(clock):
    sim = PanelSimulator(install_delay=0, clock=clock, rng_seed=3)
    statuses: list[int] = []

    def worker() -> None:
        for _ in range(6):
            statuses.append(call(sim, "POST", f"{A}/servers", deploy_body(sim)).status)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count(201) == 36
    used = [s.allocation_id for s in sim.panel.servers.values()]
    assert len(used) == len(set(used)) == 36


# ======================================================================= build, details, startup


def test_build_requires_every_field(sim):
    server = create_server(sim)
    path = f"{A}/servers/{server['id']}/build"
    assert errors(call(sim, "PATCH", path, {"allocation": server["allocation"]})) == [
        ("memory", "required_without", "The memory field is required when limits is not present."),
        ("swap", "required_without", "The swap field is required when limits is not present."),
        ("io", "required_without", "The io field is required when limits is not present."),
        ("cpu", "required_without", "The cpu field is required when limits is not present."),
        ("disk", "required_without", "The disk field is required when limits is not present."),
        ("feature_limits", "required", "The feature limits field is required."),
        # "present" is implicit: it runs (and fails) under a missing parent too.
        ("feature_limits.databases", "present", "The Database Limit field must be present."),
        ("feature_limits.backups", "present", "The Backup Limit field must be present."),
    ]
    body = build_body(server, limits={"memory": 1}, feature_limits={"databases": 0})
    assert errors(call(sim, "PATCH", path, body)) == [
        (
            "limits.swap",
            "required_with",
            "The limits.swap field is required when limits is present.",
        ),
        ("limits.io", "required_with", "The limits.io field is required when limits is present."),
        ("limits.cpu", "required_with", "The limits.cpu field is required when limits is present."),
        (
            "limits.disk",
            "required_with",
            "The limits.disk field is required when limits is present.",
        ),
        ("feature_limits.backups", "present", "The Backup Limit field must be present."),
    ]


def test_build_updates_limits_and_feature_limit_nulls(sim):
    server = create_server(sim)
    body = build_body(server, feature_limits={"databases": None, "backups": None})
    body["limits"]["memory"] = 4096
    updated = call(sim, "PATCH", f"{A}/servers/{server['id']}/build", body).json()["attributes"]
    assert updated["limits"]["memory"] == 4096
    assert updated["feature_limits"] == {"databases": None, "allocations": None, "backups": 0}


def test_build_allocation_rules(sim):
    server = create_server(sim)
    other = create_server(sim)
    path = f"{A}/servers/{server['id']}/build"
    primary = server["allocation"]
    # Another server's primary.
    response = call(sim, "PATCH", path, build_body(server, allocation=other["allocation"]))
    assert errors(response) == [("allocation", "unique", "The allocation has already been taken.")]
    # Removing the primary with no replacement.
    response = call(sim, "PATCH", path, build_body(server, remove_allocations=[primary]))
    assert response.status == 400
    assert response.json()["errors"][0]["detail"] == (
        "You are attempting to delete the default allocation for this server but there is no "
        "fallback allocation to use."
    )
    # A free allocation that is not (yet) the server's.
    spare = free_allocation(sim)
    response = call(sim, "PATCH", path, build_body(server, allocation=spare))
    assert response.json()["errors"][0]["detail"] == (
        "The requested default allocation is not currently assigned to this server."
    )
    # Add + make primary in one call works; ids on another node are skipped silently.
    us_spare = free_allocation(sim, sim.seed.us_node_id)
    response = call(
        sim,
        "PATCH",
        path + "",
        build_body(server, allocation=spare, add_allocations=[spare, us_spare]),
        query="include=allocations",
    )
    assert response.status == 200
    attached = response.json()["attributes"]
    ids = [a["attributes"]["id"] for a in attached["relationships"]["allocations"]["data"]]
    assert attached["allocation"] == spare
    assert spare in ids
    assert us_spare not in ids
    # Removing the primary while adding one moves the primary to the new allocation.
    third = free_allocation(sim)
    response = call(
        sim,
        "PATCH",
        path,
        build_body(attached, remove_allocations=[spare], add_allocations=[third]),
    )
    assert response.json()["attributes"]["allocation"] == third
    assert sim.panel.allocations[spare].server_id is None


def test_build_succeeds_while_wings_is_down(sim):
    server = create_server(sim)
    sim.panel.set_wings_failure(sim.seed.eu_node_id, 0)
    response = call(sim, "PATCH", f"{A}/servers/{server['id']}/build", build_body(server))
    assert response.status == 200


def test_details_patch_wipes_what_is_omitted(sim):
    server = create_server(sim, external_id="keep-me", description="desc")
    path = f"{A}/servers/{server['id']}/details"
    assert errors(call(sim, "PATCH", path, {})) == [
        ("name", "required", "The Server Name field is required."),
        ("user", "required", "The User ID field is required."),
    ]
    updated = call(sim, "PATCH", path, {"name": "New", "user": server["user"]}).json()
    assert updated["attributes"]["external_id"] is None
    assert updated["attributes"]["description"] == ""


def test_startup_patch_blanks_omitted_variables(sim):
    server = create_server(
        sim,
        environment={"SERVER_JARFILE": "x.jar", "BUILD_NUMBER": "12", "MINECRAFT_VERSION": "1.20"},
    )
    path = f"{A}/servers/{server['id']}/startup"
    body = {
        "startup": server["container"]["startup_command"],
        "environment": {"SERVER_JARFILE": "y.jar"},
        "egg": server["egg"],
        "image": server["container"]["image"],
        "skip_scripts": False,
    }
    assert errors(call(sim, "PATCH", path, body)) == [
        ("environment.BUILD_NUMBER", "required", "The Build Number variable field is required.")
    ]
    body["environment"]["BUILD_NUMBER"] = "13"
    env = call(sim, "PATCH", path, body).json()["attributes"]["container"]["environment"]
    assert (env["SERVER_JARFILE"], env["BUILD_NUMBER"], env["MINECRAFT_VERSION"]) == (
        "y.jar",
        "13",
        "",
    )
    # {} touches no variable.
    body["environment"] = {}
    env = call(sim, "PATCH", path, body).json()["attributes"]["container"]["environment"]
    assert env["SERVER_JARFILE"] == "y.jar"
    del body["skip_scripts"]
    assert errors(call(sim, "PATCH", path, body)) == [
        ("skip_scripts", "present", "The skip scripts field must be present.")
    ]


def test_startup_egg_change_moves_the_nest(sim):
    server = create_server(sim)
    body = {
        "startup": "node index.js",
        "environment": {"USER_UPLOAD": "0", "AUTO_UPDATE": "0", "MAIN_FILE": "bot.js"},
        "egg": sim.seed.bot_egg_id,
        "image": "ghcr.io/parkervcp/yolks:nodejs_20",
        "skip_scripts": False,
    }
    updated = call(sim, "PATCH", f"{A}/servers/{server['id']}/startup", body).json()["attributes"]
    assert (updated["egg"], updated["nest"]) == (sim.seed.bot_egg_id, sim.seed.bot_nest_id)
    assert updated["container"]["environment"]["MAIN_FILE"] == "bot.js"


# =========================================================================== actions


def test_suspend_is_idempotent_and_reinstall_clears_it(sim, clock):
    server = create_server(sim)
    clock.now += 5
    path = f"{A}/servers/{server['id']}"
    for _ in range(2):
        response = call(sim, "POST", f"{path}/suspend")
        assert (response.status, response.body) == (204, b"")
    assert get_server(sim, server["id"])["status"] == "suspended"
    call(sim, "POST", f"{path}/reinstall")
    assert get_server(sim, server["id"])["status"] == "installing"


def test_suspend_conflicts_during_a_transfer_and_rolls_back_when_wings_fails(sim, clock):
    server = create_server(sim)
    clock.now += 5
    row = sim.panel.servers[server["id"]]
    row.transferring = True
    response = call(sim, "POST", f"{A}/servers/{server['id']}/suspend")
    assert response.status == 409
    assert response.json()["errors"][0] == {
        "code": "ConflictHttpException",
        "status": "409",
        "detail": "Cannot toggle suspension status on a server that is currently being "
        "transferred.",
    }
    row.transferring = False
    sim.panel.set_wings_failure(sim.seed.eu_node_id, 0)
    assert call(sim, "POST", f"{A}/servers/{server['id']}/suspend").status == 504
    assert call(sim, "POST", f"{A}/servers/{server['id']}/reinstall").status == 504
    assert get_server(sim, server["id"])["status"] is None


def test_delete_frees_allocations_and_respects_wings(sim):
    server = create_server(sim)
    path = f"{A}/servers/{server['id']}"
    sim.panel.set_wings_failure(sim.seed.eu_node_id, 0)
    assert call(sim, "DELETE", path).status == 504
    assert call(sim, "DELETE", f"{path}/force").status == 204
    assert sim.panel.allocations[server["allocation"]].server_id is None
    assert call(sim, "GET", path).status == 404
    sim.panel.set_wings_failure(sim.seed.eu_node_id, None)
    other = create_server(sim)
    sim.panel.set_wings_failure(sim.seed.eu_node_id, 404)  # Wings lost it: ignored
    assert call(sim, "DELETE", f"{A}/servers/{other['id']}/anything").status == 204


# =========================================================================== users


def test_user_create_rules(sim):
    response = call(
        sim,
        "POST",
        f"{A}/users",
        {"email": "ADMIN@example.com", "username": "-bad", "first_name": "A"},
    )
    assert errors(response) == [
        ("email", "unique", "The email has already been taken."),
        (
            "username",
            "p_username",
            "The username must start and end with alpha-numeric characters and\n"
            "                contain only letters, numbers, dashes, underscores, and periods.",
        ),
        ("last_name", "required", "The last name field is required."),
    ]
    response = call(
        sim,
        "POST",
        f"{A}/users",
        {
            "email": "n@x.io",
            "username": "Bob.Smith",
            "first_name": "B",
            "last_name": "S",
            "external_id": 5,
            "language": "de",
        },
    )
    assert errors(response) == [
        ("external_id", "string", "The Third Party Identifier must be a string."),
        ("language", "in", "The selected language is invalid."),
    ]
    response = call(
        sim,
        "POST",
        f"{A}/users",
        {
            "email": "n@x.io",
            "username": "Bob.Smith",
            "first_name": "B",
            "last_name": "S",
            "external_id": "c-1",
        },
    )
    assert response.status == 201
    payload = response.json()
    assert payload["attributes"]["username"] == "bob.smith"
    assert payload["meta"] == {
        "resource": f"http://panel.test/api/application/users/{payload['attributes']['id']}"
    }
    response = call(
        sim,
        "POST",
        f"{A}/users",
        {
            "email": "m@x.io",
            "username": "other",
            "first_name": "B",
            "last_name": "S",
            "external_id": "c-1",
        },
    )
    assert errors(response) == [
        ("external_id", "unique", "The Third Party Identifier has already been taken.")
    ]


def test_user_patch_is_a_full_replace_of_required_fields(sim):
    created = call(
        sim,
        "POST",
        f"{A}/users",
        {
            "email": "p@x.io",
            "username": "pat",
            "first_name": "P",
            "last_name": "Q",
            "external_id": "c-9",
            "password": "first-pass",
        },
    ).json()["attributes"]
    path = f"{A}/users/{created['id']}"
    assert [e[0] for e in errors(call(sim, "PATCH", path, {"first_name": "Z"}))] == [
        "email",
        "username",
        "last_name",
    ]
    body = {
        "email": "p@x.io",
        "username": "pat",
        "first_name": "Z",
        "last_name": "Q",
        "password": "",
    }
    updated = call(sim, "PATCH", path, body).json()["attributes"]
    assert updated["first_name"] == "Z"
    assert updated["external_id"] == "c-9"
    assert sim.panel.users[created["id"]].password == "first-pass"


def test_user_delete_blocked_by_owned_servers(sim):
    server = create_server(sim, user=sim.seed.non_admin_user_id)
    response = call(sim, "DELETE", f"{A}/users/{sim.seed.non_admin_user_id}")
    assert response.status == 400
    assert response.json()["errors"][0]["detail"] == (
        "Cannot delete a user with active servers attached to their account. Please delete their "
        "servers before continuing."
    )
    call(sim, "DELETE", f"{A}/servers/{server['id']}")
    response = call(sim, "DELETE", f"{A}/users/{sim.seed.non_admin_user_id}")
    assert (response.status, response.body) == (204, b"")


# =========================================================================== allocations


def test_allocation_create_rules(sim):
    node = sim.seed.eu_node_id
    path = f"{A}/nodes/{node}/allocations"
    before = len(sim.panel.allocations)
    response = call(sim, "POST", path, {"ip": "203.0.113.20", "ports": ["30000-30002", "30010"]})
    assert (response.status, response.body) == (204, b"")
    assert len(sim.panel.allocations) == before + 4
    # Existing rows are skipped silently.
    assert call(sim, "POST", path, {"ip": "203.0.113.20", "ports": ["30000"]}).status == 204
    assert len(sim.panel.allocations) == before + 4
    cases = [
        (
            {"ip": "203.0.113.0/24", "ports": ["30000"]},
            "CidrOutOfRangeException",
            "CIDR notation only allows masks between /25 and /32.",
        ),
        (
            {"ip": "203.0.113.30", "ports": ["1024"]},
            "PortOutOfRangeException",
            "Ports in an allocation must be greater than 1024 and less than or equal to 65535.",
        ),
        (
            {"ip": "203.0.113.30", "ports": ["40000", "abc"]},
            "InvalidPortMappingException",
            "The mapping provided for abc was invalid and could not be processed.",
        ),
        (
            {"ip": "203.0.113.30", "ports": ["30000-31000"]},
            "TooManyPortsInRangeException",
            "Adding more than 1000 ports in a single range at once is not supported.",
        ),
        (
            {"ip": "not-an-ip", "ports": ["30000"]},
            "DisplayException",
            "Could not parse provided allocation IP address (not-an-ip): Invalid IP address format",
        ),
    ]
    for body, code, detail in cases:
        response = call(sim, "POST", path, body)
        assert response.status == 400
        assert response.json()["errors"][0] == {"code": code, "status": "400", "detail": detail}
    assert len(sim.panel.allocations) == before + 4  # all or nothing
    assert errors(call(sim, "POST", path, {"ip": "203.0.113.30", "ports": [30000]})) == [
        ("ports.0", "string", "The ports.0 must be a string.")
    ]
    call(sim, "POST", path, {"ip": "203.0.113.40/30", "ports": ["30000"]})
    assert len(sim.panel.allocations) == before + 8


def test_allocation_delete(sim):
    server = create_server(sim)
    node = sim.seed.eu_node_id
    response = call(sim, "DELETE", f"{A}/nodes/{node}/allocations/{server['allocation']}")
    assert response.json()["errors"][0]["code"] == "ServerUsingAllocationException"
    spare = free_allocation(sim)
    assert call(sim, "DELETE", f"{A}/nodes/{node}/allocations/{spare}").status == 204
    # Scoped to the node: an allocation of another node is a 404.
    us_spare = free_allocation(sim, sim.seed.us_node_id)
    assert call(sim, "DELETE", f"{A}/nodes/{node}/allocations/{us_spare}").status == 404


def test_allocation_server_id_filter(sim):
    server = create_server(sim)
    path = f"{A}/nodes/{sim.seed.eu_node_id}/allocations"

    def total(query: str) -> int:
        return call(sim, "GET", path, query=query).json()["meta"]["pagination"]["total"]

    assert total(f"filter[server_id]={server['id']}") == 1
    assert total("filter[server_id]=false") == 35
    assert total("filter[server_id]=") == 36
    assert total("filter[port]=25565") == 1
    assert total("filter[port]=2556") == 0  # exact, unlike the partial filters


# =========================================================================== lists


def test_filters_are_partial_and_commas_or(sim):
    for name in ("bob", "jimbob", "alice"):
        call(
            sim,
            "POST",
            f"{A}/users",
            {"email": f"{name}@x.io", "username": name, "first_name": "a", "last_name": "b"},
        )

    def emails(query: str) -> list[str]:
        data = call(sim, "GET", f"{A}/users", query=query).json()["data"]
        return [u["attributes"]["email"] for u in data]

    assert emails("filter[email]=BOB@x") == ["bob@x.io", "jimbob@x.io"]
    assert emails("filter[email]=alice,jimbob") == ["jimbob@x.io", "alice@x.io"]
    assert emails("filter[email]=bob&sort=-id") == ["jimbob@x.io", "bob@x.io"]


def test_unknown_filter_and_sort_are_400(sim):
    response = call(sim, "GET", f"{A}/users", query="filter[foo]=1")
    assert response.json()["errors"][0] == {
        "code": "InvalidFilterQuery",
        "status": "400",
        "detail": "Requested filter(s) `foo` are not allowed. Allowed filter(s) are `email, uuid, "
        "username, external_id`.",
    }
    response = call(sim, "GET", f"{A}/users", query="sort=email")
    assert response.json()["errors"][0]["detail"] == (
        "Requested sort(s) `email` is not allowed. Allowed sort(s) are `id, uuid`."
    )
    # Nests declare no filters: ignored.
    assert call(sim, "GET", f"{A}/nests", query="filter[foo]=1&sort=x").status == 200


def test_pagination_defaults_and_edges(sim):
    for i in range(18):
        call(
            sim,
            "POST",
            f"{A}/users",
            {"email": f"u{i}@x.io", "username": f"user{i}", "first_name": "a", "last_name": "b"},
        )
    meta = call(sim, "GET", f"{A}/users").json()["meta"]["pagination"]
    assert (meta["per_page"], meta["total"], meta["total_pages"], meta["links"]) == (50, 20, 1, {})
    meta = call(sim, "GET", f"{A}/users", query="per_page=0").json()["meta"]["pagination"]
    assert (meta["per_page"], meta["count"], meta["total_pages"]) == (15, 15, 2)
    response = call(sim, "GET", f"{A}/users", query="per_page=5&page=9&filter[email]=x.io")
    payload = response.json()
    assert payload["data"] == []
    assert payload["meta"]["pagination"] == {
        "total": 18,
        "count": 0,
        "per_page": 5,
        "current_page": 9,
        "total_pages": 4,
        "links": {"previous": "http://panel.test/api/application/users?page=8"},
    }
    assert call(sim, "GET", f"{A}/users", query="per_page=abc").status == 500


def test_eggs_are_not_paginated_and_deployable_nodes_only_with_page(sim):
    payload = call(sim, "GET", f"{A}/nests/{sim.seed.minecraft_nest_id}/eggs").json()
    assert payload["object"] == "list"
    assert "meta" not in payload
    payload = call(sim, "GET", f"{A}/nodes/deployable", query="memory=1024&disk=1024").json()
    assert "meta" not in payload
    assert len(payload["data"]) == 2
    payload = call(
        sim,
        "GET",
        f"{A}/nodes/deployable",
        query=f"memory=1024&disk=1024&page=1&location_ids[]={sim.seed.us_location_id}",
    ).json()
    assert payload["meta"]["pagination"]["total"] == 1
    response = call(sim, "GET", f"{A}/nodes/deployable", query="memory=99999999&disk=1")
    assert response.json()["errors"][0]["code"] == "NoViableNodeException"
    assert errors(call(sim, "GET", f"{A}/nodes/deployable", query="disk=1")) == [
        ("memory", "required", "The memory field is required.")
    ]


def test_includes_nesting_null_resource_and_transfer(sim):
    server = create_server(sim)
    attrs = get_server(sim, server["id"], "include=allocations.node,user,bogus,location")
    relationships = attrs["relationships"]
    assert set(relationships) == {"allocations", "user", "location"}
    allocation = relationships["allocations"]["data"][0]["attributes"]
    assert allocation["relationships"]["node"]["object"] == "node"
    free = call(
        sim,
        "GET",
        f"{A}/nodes/{sim.seed.eu_node_id}/allocations",
        query="include=server&filter[server_id]=false&per_page=1",
    ).json()["data"][0]["attributes"]
    assert free["relationships"]["server"] == {"object": "null_resource", "attributes": None}
    response = call(sim, "GET", f"{A}/servers/{server['id']}", query="include=transfer")
    assert response.status == 500
    assert response.json()["errors"][0]["detail"] == (
        "An unexpected error was encountered while processing this request, please try again."
    )


def test_php_query_parsing():
    assert parse_php_query("filter[email]=a%40b&location_ids[]=1&location_ids[]=2&page=2") == {
        "filter": {"email": "a@b"},
        "location_ids": ["1", "2"],
        "page": "2",
    }


# =========================================================================== pipeline


def test_unknown_route_and_method_come_before_auth(sim):
    response = call(sim, "GET", f"{A}/userz", key=None)
    assert response.status == 404
    assert response.json()["errors"][0]["detail"] == (
        "The route api/application/userz could not be found."
    )
    response = call(sim, "PUT", f"{A}/users/1", key=None)
    assert response.status == 405
    assert response.json()["errors"][0]["detail"] == (
        "The PUT method is not supported for route api/application/users/1. Supported methods: "
        "GET, HEAD, PATCH, DELETE."
    )


def test_auth_errors(sim):
    for key in (None, "ptla_unknownkey00" + "x" * 31, DEMO_API_KEY[:-1] + "X"):
        response = call(sim, "GET", f"{A}/users", key=key)
        assert response.status == 401
        assert response.json() == {
            "errors": [
                {"code": "AuthenticationException", "status": "401", "detail": "Unauthenticated."}
            ]
        }


def test_without_accept_json_401_redirects_and_errors_are_html(sim):
    response = call(sim, "GET", f"{A}/users", key=None, accept=None)
    assert response.status == 302
    assert response.header("Location") == "http://panel.test/auth/login"
    response = call(sim, "GET", f"{A}/users/999", accept="text/html")
    assert response.status == 404
    assert response.header("Content-Type").startswith("text/html")
    # Successful responses are JSON either way; the vendor type counts as JSON.
    assert call(sim, "GET", f"{A}/users", accept=None).json()["object"] == "list"
    response = call(sim, "GET", f"{A}/users/999", accept="Application/vnd.pterodactyl.v1+json")
    assert response.json()["errors"][0]["code"] == "NotFoundHttpException"


def test_non_admin_key_and_binding_order(sim):
    response = call(sim, "GET", f"{A}/users/1", key=DEMO_NON_ADMIN_API_KEY)
    assert response.status == 403
    assert response.json()["errors"][0]["detail"] == (
        "This account does not have permission to access the API."
    )
    # Route-model binding runs before the admin check.
    assert call(sim, "GET", f"{A}/users/999", key=DEMO_NON_ADMIN_API_KEY).status == 404
    assert call(sim, "GET", f"{A}/users/abc").status == 404


def test_key_acl_and_null_resource_includes(sim):
    acl = {"servers": READ, "users": 0}
    key = sim.panel.add_api_key(sim.seed.admin_user_id, acl=acl)
    server = create_server(sim)
    response = call(sim, "GET", f"{A}/users", key=key)
    assert (response.status, response.json()["errors"][0]["detail"]) == (
        403,
        "This action is unauthorized.",
    )
    assert call(sim, "POST", f"{A}/servers/{server['id']}/suspend", key=key).status == 403
    attrs = call(sim, "GET", f"{A}/servers/{server['id']}", key=key, query="include=user")
    assert attrs.json()["attributes"]["relationships"]["user"] == {
        "object": "null_resource",
        "attributes": None,
    }
    # A root admin's client key passes every ACL check on the application API.
    assert call(sim, "GET", f"{A}/users", key=DEMO_CLIENT_API_KEY).status == 200


def test_ip_allow_list_and_2fa(sim):
    key = sim.panel.add_api_key(sim.seed.admin_user_id, allowed_ips=["10.0.0.0/8"])
    assert call(sim, "GET", f"{A}/users", key=key, remote="10.1.2.3").status == 200
    response = call(sim, "GET", f"{A}/users", key=key, remote="192.0.2.7")
    assert response.json()["errors"][0]["detail"] == (
        "This IP address (192.0.2.7) does not have permission to access the API using these "
        "credentials."
    )
    sim.panel.require_2fa = "admins"
    response = call(sim, "GET", f"{A}/users")
    assert response.json()["errors"][0]["code"] == "TwoFactorAuthRequiredException"


def test_malformed_json_and_missing_content_type(sim):
    response = call(sim, "POST", f"{A}/users", raw=b'{"email": ')
    assert response.status == 400
    assert response.json()["errors"][0] == {
        "code": "BadRequestHttpException",
        "status": "400",
        "detail": "The JSON data passed in the request appears to be malformed: Syntax error",
    }
    # Authentication runs first.
    assert call(sim, "POST", f"{A}/users", raw=b'{"email": ', key=None).status == 401
    body = {"email": "a@b.io", "username": "abc", "first_name": "a", "last_name": "b"}
    response = call(sim, "POST", f"{A}/users", body, content_type=None)
    assert response.status == 422
    assert [e[0] for e in errors(response)] == ["email", "username", "first_name", "last_name"]


def test_rate_limit_per_key_owner(clock):
    sim = PanelSimulator(clock=clock, rate_limit_per_minute=5)
    for remaining in (4, 3, 2, 1, 0):
        response = call(sim, "GET", f"{A}/nests")
        assert response.header("X-RateLimit-Remaining") == str(remaining)
    # The admin's client key shares the application bucket of the same user.
    response = call(sim, "GET", f"{A}/nests", key=DEMO_CLIENT_API_KEY)
    assert response.status == 429
    assert response.json() == {
        "errors": [
            {"code": "ThrottleRequestsException", "status": "429", "detail": "Too Many Attempts."}
        ]
    }
    assert response.header("Retry-After") == "60"
    assert response.header("X-RateLimit-Reset") == str(int(clock.now) + 60)
    assert response.header("X-RateLimit-Remaining") == "0"
    # Bad keys are rejected before the throttle and do not count; other users have own buckets.
    assert call(sim, "GET", f"{A}/nests", key=None).status == 401
    assert call(sim, "GET", f"{A}/nests", key=DEMO_NON_ADMIN_API_KEY).status == 403
    clock.now += 60
    assert call(sim, "GET", f"{A}/nests").status == 200


# =========================================================================== client API


def test_client_api_power_resources_and_conflicts(sim, clock):
    server = create_server(sim)
    ident = server["identifier"]
    path = f"/api/client/servers/{ident}"
    response = call(sim, "GET", f"{path}/resources", key=DEMO_CLIENT_API_KEY)
    assert response.status == 409
    assert response.json()["errors"][0]["detail"] == (
        "This server has not yet completed its installation process, please try again later."
    )
    clock.now += 5
    assert (
        call(sim, "POST", f"{path}/power", {"signal": "start"}, key=DEMO_CLIENT_API_KEY).status
        == 204
    )
    stats = call(sim, "GET", f"{path}/resources", key=DEMO_CLIENT_API_KEY).json()
    assert stats["object"] == "stats"
    assert stats["attributes"]["current_state"] == "running"
    # Cached for 20 s.
    call(sim, "POST", f"{path}/power", {"signal": "stop"}, key=DEMO_CLIENT_API_KEY)
    stats = call(sim, "GET", f"{path}/resources", key=DEMO_CLIENT_API_KEY).json()
    assert stats["attributes"]["current_state"] == "running"
    clock.now += 21
    stats = call(sim, "GET", f"{path}/resources", key=DEMO_CLIENT_API_KEY).json()
    assert stats["attributes"]["current_state"] == "offline"
    assert errors(call(sim, "POST", f"{path}/power", {"signal": "x"}, key=DEMO_CLIENT_API_KEY)) == [
        ("signal", "in", "The selected signal is invalid.")
    ]
    call(sim, "POST", f"{A}/servers/{server['id']}/suspend")
    response = call(sim, "GET", f"{path}/resources", key=DEMO_CLIENT_API_KEY)
    assert response.json()["errors"][0]["detail"] == (
        "This server is currently suspended and the functionality requested is unavailable."
    )
    # Always allowed: the server view.
    view = call(sim, "GET", path, key=DEMO_CLIENT_API_KEY).json()["attributes"]
    assert view["is_suspended"] is True
    assert view["identifier"] == ident


def test_client_api_key_rules(sim):
    server = create_server(sim)
    path = f"/api/client/servers/{server['identifier']}"
    response = call(sim, "GET", path)
    assert response.status == 403
    assert response.json()["errors"][0]["detail"] == (
        "You are attempting to use an application API key on an endpoint that requires a client "
        "API key."
    )
    stranger = sim.panel.add_api_key(sim.seed.non_admin_user_id, key_type="client")
    response = call(sim, "GET", path, key=stranger)
    assert response.json()["errors"][0]["detail"] == (
        "The requested resource does not exist on this server."
    )
    listing = call(sim, "GET", "/api/client", key=DEMO_CLIENT_API_KEY, query="type=admin-all")
    assert listing.json()["meta"]["pagination"]["total"] == 1


def test_debug_mode_adds_source_and_trace(clock):
    sim = PanelSimulator(clock=clock, debug=True)
    response = call(sim, "GET", f"{A}/users/77")
    element = response.json()["errors"][0]
    assert element["detail"] == "No query results for model [Pterodactyl\\Models\\User] 77"
    assert "source" in element
    assert "trace" in element["meta"]


def test_fake_clock_helper():
    clock = FakeClock(10)
    clock.sleep(2.5)
    assert (clock(), clock.sleeps) == (12.5, [2.5])


def test_location_and_node_crud(sim):
    response = call(sim, "POST", f"{A}/locations", {"short": "ap", "long": "Asia Pacific"})
    assert response.status == 201
    location = response.json()
    assert location["meta"]["resource"].endswith(f"/locations/{location['attributes']['id']}")
    assert errors(call(sim, "POST", f"{A}/locations", {"short": "EU"})) == [
        ("short", "unique", "The short has already been taken.")
    ]
    node_body = {
        "name": "ap-sgp-1",
        "location_id": location["attributes"]["id"],
        "fqdn": "ap-sgp-1.nodes.example.com",
        "scheme": "https",
        "memory": 8192,
        "disk": 100000,
        "memory_overallocate": -1,
    }
    response = call(sim, "POST", f"{A}/nodes", node_body)
    assert response.status == 201
    node = response.json()["attributes"]
    assert (node["daemon_sftp"], node["daemon_listen"], node["public"]) == (2022, 8080, True)
    assert node["daemon_base"] == "/var/lib/pterodactyl/volumes"
    assert node["allocated_resources"] == {"memory": 0, "disk": 0}
    response = call(sim, "DELETE", f"{A}/locations/{location['attributes']['id']}")
    assert response.json()["errors"][0] == {
        "code": "HasActiveNodesException",
        "status": "400",
        "detail": "Cannot delete a location that has active nodes attached to it.",
    }
    patched = call(sim, "PATCH", f"{A}/nodes/{node['id']}", {"maintenance_mode": True})
    assert patched.json()["attributes"]["maintenance_mode"] is True
    config = call(sim, "GET", f"{A}/nodes/{node['id']}/configuration").json()
    assert set(config) >= {"debug", "uuid", "token_id", "token", "api", "system", "remote"}
    assert call(sim, "DELETE", f"{A}/nodes/{node['id']}").status == 204
    assert call(sim, "DELETE", f"{A}/locations/{location['attributes']['id']}").status == 204
    response = call(sim, "DELETE", f"{A}/nodes/{sim.seed.eu_node_id}")
    assert response.status == 204  # no servers on it yet
    create_server_on = call(sim, "DELETE", f"{A}/nodes/{sim.seed.us_node_id}")
    assert create_server_on.status == 204


def test_node_with_servers_cannot_be_deleted(sim):
    server = create_server(sim)
    response = call(sim, "DELETE", f"{A}/nodes/{server['node']}")
    assert response.json()["errors"][0]["detail"] == (
        "A node must have no servers linked to it in order to be deleted."
    )


def test_head_is_answered_by_the_get_route(sim):
    response = call(sim, "HEAD", f"{A}/nests")
    assert response.status == 200
