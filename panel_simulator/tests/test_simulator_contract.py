"""The simulator speaks the documented contract: checked with raw ``requests`` calls and with the
real client, both routed to the simulator by the ``responses`` helper (no sockets), plus the
WSGI app driven directly and one real-socket smoke test of the threaded server."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest
import requests

from panel_simulator import PanelSimulator, build_server, make_wsgi_app
from panel_simulator.testing import simulated_panel
from provisioning.pterodactyl import (
    CreateOrigin,
    Deploy,
    FeatureLimits,
    InProcessRateLimiter,
    Limits,
    PanelAuthError,
    PanelNotFound,
    PanelNoViableAllocation,
    PanelNoViableNode,
    PanelPermissionError,
    PanelRateLimited,
    PanelUnavailable,
    PanelValidationError,
    PterodactylClient,
    PterodactylClientAPI,
    Server,
)
from provisioning.tests.conftest import PANEL, FakeClock

A = f"{PANEL}/api/application"


def headers(sim: PanelSimulator, **extra: str) -> dict[str, str]:
    assert sim.seed is not None
    return {
        "Authorization": f"Bearer {sim.seed.admin_api_key}",
        "Accept": "application/json",
        **extra,
    }


def paper_server_kwargs(client: PterodactylClient, sim: PanelSimulator, **overrides: Any):
    seed = sim.seed
    assert seed is not None
    egg = client.get_egg(seed.minecraft_nest_id, seed.paper_egg_id)
    kwargs: dict[str, Any] = {
        "name": "Contract",
        "user_id": seed.admin_user_id,
        "egg_id": egg.id,
        "docker_image": egg.docker_images["Java 17"],
        "startup": egg.startup,
        "environment": egg.environment_with_defaults(),
        "limits": Limits(memory=1024, swap=0, disk=4096, io=500, cpu=100),
        "feature_limits": FeatureLimits(databases=0, allocations=1, backups=1),
    }
    kwargs.update(overrides)
    if "allocation_id" not in kwargs and "deploy" not in kwargs:
        kwargs["allocation_id"] = client.list_free_allocations(seed.eu_node_id)[0].id
    return kwargs


# =========================================================================== raw HTTP shapes


def test_422_shape_with_source_field_and_rule(sim, sim_rsps):
    response = requests.post(
        f"{A}/users",
        headers=headers(sim, **{"Content-Type": "application/json"}),
        data=json.dumps({"email": "admin@example.com", "username": "-bad"}),
        timeout=5,
    )
    assert response.status_code == 422
    body = response.json()
    assert set(body) == {"errors"}
    first = body["errors"][0]
    assert first == {
        "code": "ValidationException",
        "status": "422",
        "detail": "The email has already been taken.",
        "meta": {"source_field": "email", "rule": "unique"},
    }
    assert {e["meta"]["source_field"] for e in body["errors"]} == {
        "email",
        "username",
        "first_name",
        "last_name",
    }
    # PHP's json_encode escapes slashes: the raw body is what a panel sends.
    assert response.headers["Content-Type"] == "application/json"


def test_204_responses_have_empty_bodies(sim, sim_client):
    seed = sim.seed
    server = sim_client.create_server(**paper_server_kwargs(sim_client, sim)).resource
    for path in (f"/servers/{server.id}/suspend", f"/servers/{server.id}/unsuspend"):
        response = requests.post(f"{A}{path}", headers=headers(sim), timeout=5)
        assert (response.status_code, response.content) == (204, b"")
    response = requests.delete(f"{A}/servers/{server.id}", headers=headers(sim), timeout=5)
    assert (response.status_code, response.content) == (204, b"")
    response = requests.post(
        f"{A}/nodes/{seed.eu_node_id}/allocations",
        headers=headers(sim, **{"Content-Type": "application/json"}),
        json={"ip": "203.0.113.99", "ports": ["31000"]},
        timeout=5,
    )
    assert (response.status_code, response.content) == (204, b"")


def test_create_envelopes_server_without_meta_user_with_resource(sim, sim_client):
    kwargs = paper_server_kwargs(sim_client, sim)
    body = {
        "name": "Raw",
        "user": kwargs["user_id"],
        "egg": kwargs["egg_id"],
        "docker_image": kwargs["docker_image"],
        "startup": kwargs["startup"],
        "environment": kwargs["environment"],
        "limits": {"memory": 512, "swap": 0, "disk": 1024, "io": 500, "cpu": 50},
        "feature_limits": {"databases": 0, "backups": 0},
        "allocation": {"default": kwargs["allocation_id"]},
    }
    response = requests.post(f"{A}/servers", headers=headers(sim), json=body, timeout=5)
    assert response.status_code == 201
    payload = response.json()
    assert set(payload) == {"object", "attributes"}
    assert payload["object"] == "server"
    assert payload["attributes"]["status"] == "installing"
    response = requests.post(
        f"{A}/users",
        headers=headers(sim),
        json={"email": "r@x.io", "username": "raw", "first_name": "R", "last_name": "W"},
        timeout=5,
    )
    payload = response.json()
    assert response.status_code == 201
    assert payload["meta"] == {"resource": f"{A}/users/{payload['attributes']['id']}"}


def test_pagination_meta_and_links_drop_filters(sim, sim_rsps):
    for i in range(3):
        requests.post(
            f"{A}/users",
            headers=headers(sim),
            json={"email": f"p{i}@x.io", "username": f"pp{i}", "first_name": "a", "last_name": "b"},
            timeout=5,
        )
    response = requests.get(
        f"{A}/users",
        headers=headers(sim),
        params={"filter[email]": "x.io", "per_page": 1, "page": 2},
        timeout=5,
    )
    assert response.json()["meta"] == {
        "pagination": {
            "total": 3,
            "count": 1,
            "per_page": 1,
            "current_page": 2,
            "total_pages": 3,
            "links": {"previous": f"{A}/users?page=1", "next": f"{A}/users?page=3"},
        }
    }


def test_404_shape(sim, sim_rsps):
    response = requests.get(f"{A}/servers/999", headers=headers(sim), timeout=5)
    assert response.status_code == 404
    assert response.json() == {
        "errors": [
            {
                "code": "NotFoundHttpException",
                "status": "404",
                "detail": "The requested resource could not be found on the server.",
            }
        ]
    }


def test_401_without_and_with_wrong_key_and_302_without_accept(sim, sim_rsps):
    response = requests.get(f"{A}/users", headers={"Accept": "application/json"}, timeout=5)
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "AuthenticationException"
    wrong = {"Authorization": "Bearer ptla_" + "x" * 43, "Accept": "application/json"}
    assert requests.get(f"{A}/users", headers=wrong, timeout=5).status_code == 401
    response = requests.get(
        f"{A}/users",
        headers={"Authorization": wrong["Authorization"]},
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"{PANEL}/auth/login"


def test_429_shape_and_headers(clock):
    sim = PanelSimulator(clock=clock, rate_limit_per_minute=2)
    with simulated_panel(sim, PANEL):
        for _ in range(2):
            assert requests.get(f"{A}/nests", headers=headers(sim), timeout=5).ok
        response = requests.get(f"{A}/nests", headers=headers(sim), timeout=5)
    assert response.status_code == 429
    assert response.json() == {
        "errors": [
            {"code": "ThrottleRequestsException", "status": "429", "detail": "Too Many Attempts."}
        ]
    }
    for name in ("Retry-After", "X-RateLimit-Reset", "X-RateLimit-Limit", "X-RateLimit-Remaining"):
        assert name in response.headers
    assert response.headers["X-RateLimit-Remaining"] == "0"


# =========================================================================== real client


def test_full_provisioning_flow_through_the_client(sim, sim_client, clock):
    seed = sim.seed
    user = sim_client.create_user(
        external_id="cust-1",
        email="cust1@example.com",
        username="cust1",
        first_name="Cus",
        last_name="Tomer",
    )
    assert user.origin is CreateOrigin.CREATED
    with pytest.raises(PanelValidationError) as taken:
        sim_client.create_user(
            external_id="cust-1", email="x@x.io", username="xx1", first_name="a", last_name="b"
        )
    assert taken.value.fields() == {"external_id"}
    assert taken.value.has("external_id", "unique")
    assert sim_client.find_user_by_external_id("cust-1").id == user.resource.id
    assert sim_client.find_user_by_email("CUST1@example.com").id == user.resource.id

    created = sim_client.ensure_server(
        **paper_server_kwargs(
            sim_client,
            sim,
            user_id=user.resource.id,
            deploy=Deploy(locations=(seed.us_location_id,), port_range=("25565-25600",)),
        ),
        external_id="order-1",
    )
    server = created.resource
    assert server.is_installing
    assert server.node_id == seed.us_node_id
    clock.now += 3
    assert sim_client.get_server(server.id).is_ready
    assert (
        sim_client.ensure_server(
            **paper_server_kwargs(sim_client, sim), external_id="order-1"
        ).origin
        is CreateOrigin.EXISTING
    )

    spare = sim_client.list_free_allocations(seed.us_node_id)[0]
    built = sim_client.update_server_build(
        server.id, memory=2048, add_allocations=[spare.id], allocation_limit=2
    )
    assert built.limits.memory == 2048
    assert spare.id in (built.allocation_ids or ())
    assert built.feature_limits.allocations == 2
    assert built.feature_limits.backups == 1

    # Details and startup are full replaces. The product changes neither, so the client has no
    # methods for them: raw calls check the simulator's side.
    json_headers = headers(sim, **{"Content-Type": "application/json"})
    details = {
        "name": "Renamed",
        "user": server.user_id,
        "external_id": "order-1",
        "description": server.description,
    }
    response = requests.patch(
        f"{A}/servers/{server.id}/details", headers=json_headers, json=details, timeout=5
    )
    assert response.status_code == 200
    renamed = Server.from_api(response.json())
    assert renamed.external_id == "order-1"
    assert renamed.name == "Renamed"

    current = sim_client.get_server(server.id, include=["variables"])
    startup = {
        "startup": current.container.startup_command,
        "environment": {**current.egg_environment(), "MINECRAFT_VERSION": "1.21"},
        "egg": current.egg_id,
        "image": current.container.image,
        "skip_scripts": False,
    }
    response = requests.patch(
        f"{A}/servers/{server.id}/startup",
        params={"include": "variables"},
        headers=json_headers,
        json=startup,
        timeout=5,
    )
    assert response.status_code == 200
    env = Server.from_api(response.json()).egg_environment()
    assert env == {
        "MINECRAFT_VERSION": "1.21",
        "SERVER_JARFILE": "server.jar",
        "DL_PATH": "",
        "BUILD_NUMBER": "latest",
    }
    sim_client.suspend_server(server.id)
    sim_client.suspend_server(server.id)
    assert sim_client.get_server(server.id).suspended
    sim_client.unsuspend_server(server.id)
    sim_client.reinstall_server(server.id)
    assert sim_client.get_server(server.id).is_installing
    sim_client.delete_server(server.id)
    sim_client.delete_server(server.id, missing_ok=True)
    with pytest.raises(PanelNotFound):
        sim_client.get_server(server.id)
    sim_client.delete_user(user.resource.id)


def test_client_sees_validation_and_out_of_stock(sim, sim_client):
    kwargs = paper_server_kwargs(sim_client, sim, environment={})
    with pytest.raises(PanelValidationError) as info:
        sim_client.create_server(**kwargs)
    assert info.value.fields() == {"environment.SERVER_JARFILE", "environment.BUILD_NUMBER"}
    big = Limits(memory=10**8, swap=0, disk=1, io=500, cpu=0)
    with pytest.raises(PanelNoViableNode):
        sim_client.create_server(
            **paper_server_kwargs(sim_client, sim, limits=big, deploy=Deploy())
        )
    with pytest.raises(PanelNoViableAllocation):
        sim_client.create_server(
            **paper_server_kwargs(sim_client, sim, deploy=Deploy(port_range=("40000",)))
        )

    def deployable(memory: int) -> requests.Response:
        query = {"memory": memory, "disk": 1}
        return requests.get(f"{A}/nodes/deployable", params=query, headers=headers(sim), timeout=5)

    none_fit = deployable(10**8)
    assert none_fit.status_code == 400
    assert none_fit.json()["errors"][0]["code"] == "NoViableNodeException"
    assert len(deployable(1).json()["data"]) == 2


def test_lost_reply_on_create_is_adopted(sim, sim_client, clock):
    kwargs = paper_server_kwargs(sim_client, sim, external_id="order-lost")
    sim.faults.add("lost_reply", method="POST", path=r"/servers$")
    created = sim_client.create_server(**kwargs)
    assert created.origin is CreateOrigin.RECOVERED
    assert created.resource.external_id == "order-lost"
    assert len(sim.panel.servers) == 1
    posts = [c for c in sim.calls if c[0] == "POST"]
    assert posts == [("POST", "/api/application/servers", 504)]


def test_read_timeout_on_create_is_adopted_and_connect_timeout_is_retried(sim, sim_client, clock):
    sim.faults.add("read_timeout", method="POST", path=r"/users$")
    created = sim_client.create_user(
        email="t@x.io", username="tim", first_name="T", last_name="O", external_id="c-t"
    )
    assert created.origin is CreateOrigin.RECOVERED
    sim.faults.add("connect_timeout", method="POST", path=r"/users$")
    created = sim_client.create_user(
        email="u@x.io", username="uma", first_name="U", last_name="O", external_id="c-u"
    )
    assert created.origin is CreateOrigin.CREATED
    assert clock.sleeps == [0.5]


def test_wings_down_create_raises_retryable_and_leaves_nothing(sim, sim_client):
    sim.panel.set_wings_failure(sim.seed.eu_node_id, 0)
    kwargs = paper_server_kwargs(sim_client, sim, external_id="order-w")
    with pytest.raises(PanelUnavailable) as info:
        sim_client.create_server(**kwargs)
    assert info.value.retryable
    assert "Wings" in str(info.value)
    assert sim.panel.servers == {}
    sim.panel.set_wings_failure(sim.seed.eu_node_id, None)
    assert sim_client.create_server(**kwargs).origin is CreateOrigin.CREATED


def test_gets_are_retried_through_5xx_faults(sim, sim_client, clock):
    sim.faults.add("status", method="GET", path=r"/nests$", status=503, body="html", times=2)
    assert [n.name for n in sim_client.list_nests()] == ["Minecraft", "Discord Bots"]
    assert clock.sleeps == [0.5, 1.0]


def test_rate_limit_fault_honours_retry_after(sim, sim_client, clock):
    sim.faults.add("rate_limit", path=r"/nests$", retry_after=4)
    sim_client.list_nests()
    assert clock.sleeps == [4.0]


def test_429_from_the_simulator_reaches_the_client(clock):
    sim = PanelSimulator(clock=clock, rate_limit_per_minute=1)
    with simulated_panel(sim, PANEL):
        client = PterodactylClient(
            PANEL,
            sim.seed.admin_api_key,
            sleep=clock.sleep,
            max_retry_after=10,
            rate_limiter=InProcessRateLimiter(100, clock=clock, sleep=clock.sleep),
        )
        client.list_nests()
        with pytest.raises(PanelRateLimited) as info:
            client.list_nests()
    assert info.value.retry_after == 60.0


def test_wrong_and_non_admin_keys_through_the_client(sim, sim_rsps, clock):
    bad = PterodactylClient(PANEL, "ptla_" + "y" * 43, sleep=clock.sleep)
    with pytest.raises(PanelAuthError):
        bad.list_nests()
    non_admin = PterodactylClient(PANEL, sim.seed.non_admin_api_key, sleep=clock.sleep)
    with pytest.raises(PanelPermissionError, match="not a root admin"):
        non_admin.list_nests()


def test_client_api_through_the_simulator(sim, sim_client, clock):
    server = sim_client.create_server(**paper_server_kwargs(sim_client, sim)).resource
    clock.now += 3
    api = PterodactylClientAPI(PANEL, sim.seed.client_api_key, sleep=clock.sleep)
    api.send_power_signal(server.identifier, "start")
    clock.now += 30
    stats = api.get_server_resources(server.identifier)
    assert stats.current_state == "running"
    assert stats.uptime_ms == 30_000


# =========================================================================== WSGI and sockets


def call_wsgi(app: Any, method: str, path: str, query: str = "", **environ: Any):
    captured: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        captured["status"] = status
        captured["headers"] = dict(response_headers)

    body = environ.pop("body", b"")
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.url_scheme": "http",
        "HTTP_HOST": "localhost:8081",
        "REMOTE_ADDR": "127.0.0.1",
        **environ,
    }
    chunks = app(env, start_response)
    return captured["status"], captured["headers"], b"".join(chunks)


def test_wsgi_app_without_sockets(clock):
    sim = PanelSimulator(clock=clock, install_delay=0)
    app = make_wsgi_app(sim, sleep=clock.sleep)
    auth = {
        "HTTP_AUTHORIZATION": f"Bearer {sim.seed.admin_api_key}",
        "HTTP_ACCEPT": "application/json",
    }
    status, response_headers, body = call_wsgi(app, "GET", "/api/application/locations", **auth)
    assert status == "200 OK"
    assert response_headers["Content-Type"] == "application/json"
    assert [loc["attributes"]["short"] for loc in json.loads(body)["data"]] == ["eu", "us"]
    status, _, body = call_wsgi(
        app, "POST", "/api/application/users", body=b"{bad", CONTENT_TYPE="application/json", **auth
    )
    assert status == "400 Bad Request"
    # Timeout faults stall (fake sleep here) and then answer 504.
    sim.faults.add("read_timeout", path="/locations", seconds=31)
    status, _, _ = call_wsgi(app, "GET", "/api/application/locations", **auth)
    assert status == "504 Gateway Timeout"
    assert clock.sleeps == [31]
    status, _, body = call_wsgi(
        app,
        "POST",
        "/_simulator/faults",
        body=json.dumps({"kind": "status", "status": 503, "path": "/nests"}).encode(),
    )
    assert status == "201 Created"
    assert call_wsgi(app, "GET", "/api/application/nests", **auth)[0] == "503 Service Unavailable"
    status, _, body = call_wsgi(app, "GET", "/_simulator/state")
    state = json.loads(body)
    assert state["seed"]["paper_egg_id"] == sim.seed.paper_egg_id
    assert len(state["allocations"]) == 72


def test_threaded_socket_server_smoke():
    sim = PanelSimulator(install_delay=0)
    server = build_server(sim, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        client = PterodactylClient(url, sim.seed.admin_api_key, timeout=(2, 5))
        assert [n.name for n in client.list_nodes()] == ["eu-fra-1", "us-nyc-1"]
        control = requests.post(f"{url}/_simulator/reset", json={}, timeout=5)
        assert control.json()["ok"] is True
        with pytest.raises(PanelNotFound):
            client.get_server(1)
    finally:
        server.shutdown()
        server.server_close()


def test_control_endpoints_drive_the_model(clock):
    sim = PanelSimulator(clock=clock)
    with simulated_panel(sim, PANEL) as _:
        node = sim.seed.eu_node_id
        assert requests.post(
            f"{PANEL}/_simulator/nodes/{node}/wings", json={"failure": 0}, timeout=5
        ).ok
        assert sim.panel.nodes[node].wings_failure == 0
        assert requests.patch(
            f"{PANEL}/_simulator/eggs/{sim.seed.paper_egg_id}",
            json={"fail_install": True},
            timeout=5,
        ).ok
        assert sim.panel.eggs[sim.seed.paper_egg_id].fail_install
        token = requests.post(
            f"{PANEL}/_simulator/keys", json={"user_id": sim.seed.admin_user_id}, timeout=5
        ).json()["token"]
        assert len(token) == 48
        before = sim.panel.now()
        requests.post(f"{PANEL}/_simulator/time/advance", json={"seconds": 30}, timeout=5)
        assert sim.panel.now() == pytest.approx(before + 30)
        assert (
            requests.post(
                f"{PANEL}/_simulator/faults", json={"kind": "nope"}, timeout=5
            ).status_code
            == 400
        )
        assert requests.delete(f"{PANEL}/_simulator/faults", timeout=5).ok


def test_fake_clock_is_shared(clock: FakeClock):
    assert clock() == clock.now
