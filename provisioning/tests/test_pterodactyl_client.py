"""The panel client against recorded-shape replies (bodies exactly as the panel sends them),
and, where what matters is what the panel did with a request, against the simulator."""

from __future__ import annotations

import json
import logging
import pickle
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

from panel_simulator.api import PanelSimulator
from panel_simulator.testing import simulated_panel
from provisioning.pterodactyl import (
    UNSET,
    CreateOrigin,
    Deploy,
    FeatureLimits,
    Limits,
    Node,
    PanelAuthError,
    PanelBadRequest,
    PanelBadResponse,
    PanelConflict,
    PanelError,
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
    User,
)
from provisioning.pterodactyl.transport import shared_limiters_reset
from provisioning.tests.conftest import KEY, PANEL, make_client

API = f"{PANEL}/api/application"
SIM_PANEL = "http://panel.test"  # the simulator's address in the tests that use it

# --------------------------------------------------------------------------- fixtures


def user_attrs(**overrides: Any) -> dict[str, Any]:
    attrs = {
        "id": 7,
        "external_id": "cust-7",
        "uuid": "c4022c6c-9bf1-4a23-bff9-519cceb38335",
        "username": "alice",
        "email": "alice@example.com",
        "first_name": "Alice",
        "last_name": "Liddell",
        "language": "en",
        "root_admin": False,
        "2fa": False,
        "created_at": "2024-01-15T10:26:32+00:00",
        "updated_at": "2024-01-15T10:26:32+00:00",
    }
    attrs.update(overrides)
    return attrs


def user_item(**overrides: Any) -> dict[str, Any]:
    return {"object": "user", "attributes": user_attrs(**overrides)}


def server_attrs(**overrides: Any) -> dict[str, Any]:
    attrs = {
        "id": 42,
        "external_id": "order-42",
        "uuid": "1a7ce997-259b-452e-8b4e-cecc464142ca",
        "identifier": "1a7ce997",
        "name": "Survival",
        "description": "",
        "status": None,
        "suspended": False,
        "limits": {
            "memory": 2048,
            "swap": 0,
            "disk": 10240,
            "io": 500,
            "cpu": 200,
            "threads": None,
            "oom_disabled": True,
        },
        "feature_limits": {"databases": 0, "allocations": 0, "backups": 2},
        "user": 7,
        "node": 1,
        "allocation": 11,
        "nest": 1,
        "egg": 3,
        "container": {
            "startup_command": "java -Xms128M -jar {{SERVER_JARFILE}}",
            "image": "ghcr.io/pterodactyl/yolks:java_17",
            "installed": 1,
            "environment": {
                "MINECRAFT_VERSION": "latest",
                "SERVER_JARFILE": "server.jar",
                "DL_PATH": "",
                "BUILD_NUMBER": "latest",
                "STARTUP": "java -Xms128M -jar {{SERVER_JARFILE}}",
                "P_SERVER_LOCATION": "eu",
                "P_SERVER_UUID": "1a7ce997-259b-452e-8b4e-cecc464142ca",
                "P_SERVER_ALLOCATION_LIMIT": 0,
            },
        },
        "updated_at": "2024-01-15T10:26:32+00:00",
        "created_at": "2024-01-15T10:26:32+00:00",
    }
    attrs.update(overrides)
    return attrs


def server_item(**overrides: Any) -> dict[str, Any]:
    return {"object": "server", "attributes": server_attrs(**overrides)}


def node_attrs(**overrides: Any) -> dict[str, Any]:
    attrs = {
        "id": 1,
        "uuid": "5f9e0d5c-1111-4c1e-9f0e-3c2b1a0e9d8c",
        "public": True,
        "name": "eu-fra-1",
        "description": None,
        "location_id": 1,
        "fqdn": "eu-fra-1.nodes.example.com",
        "scheme": "https",
        "behind_proxy": False,
        "maintenance_mode": False,
        "memory": 16384,
        "memory_overallocate": 0,
        "disk": 102400,
        "disk_overallocate": 0,
        "upload_size": 100,
        "daemon_listen": 8080,
        "daemon_sftp": 2022,
        "daemon_base": "/var/lib/pterodactyl/volumes",
        "created_at": "2024-01-15T10:26:32+00:00",
        "updated_at": "2024-01-15T10:26:32+00:00",
        "allocated_resources": {"memory": 4096, "disk": 20480},
    }
    attrs.update(overrides)
    return attrs


def pagination(total: int, count: int, per_page: int, page: int, pages: int) -> dict[str, Any]:
    links: dict[str, str] = {}
    if page > 1:
        links["previous"] = f"{API}/users?page={page - 1}"
    if page < pages:
        links["next"] = f"{API}/users?page={page + 1}"
    return {
        "pagination": {
            "total": total,
            "count": count,
            "per_page": per_page,
            "current_page": page,
            "total_pages": pages,
            "links": links,
        }
    }


def error_body(code: str, status: int, detail: str, **extra: Any) -> dict[str, Any]:
    element = {"code": code, "status": str(status), "detail": detail}
    element.update(extra)
    return {"errors": [element]}


def query_of(call: Any) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(call.request.url).query, keep_blank_values=True)


def body_of(call: Any) -> dict[str, Any]:
    return json.loads(call.request.body)


EGG_WITH_VARIABLES = {
    "object": "egg",
    "attributes": {
        "id": 3,
        "uuid": "9e2d6bfa-7b0c-4c1b-8b4a-1b4c2f9a0c11",
        "name": "Paper",
        "nest": 1,
        "author": "parker@pterodactyl.io",
        "description": "High performance Spigot fork.",
        "docker_image": "ghcr.io/pterodactyl/yolks:java_17",
        "docker_images": {
            "Java 17": "ghcr.io/pterodactyl/yolks:java_17",
            "Java 11": "ghcr.io/pterodactyl/yolks:java_11",
        },
        "config": {
            "files": {},
            "startup": {"done": ")! For help, type "},
            "stop": "stop",
            "logs": {},
            "file_denylist": [],
            "extends": None,
        },
        "startup": "java -Xms128M -jar {{SERVER_JARFILE}}",
        "script": {
            "privileged": True,
            "install": "#!/bin/ash",
            "entry": "ash",
            "container": "ghcr.io/pterodactyl/installers:alpine",
            "extends": None,
        },
        "created_at": "2024-01-15T10:26:32+00:00",
        "updated_at": "2024-01-15T10:26:32+00:00",
        "relationships": {
            "variables": {
                "object": "list",
                "data": [
                    {
                        "object": "egg_variable",
                        "attributes": {
                            "id": 10,
                            "egg_id": 3,
                            "name": "Server Jar File",
                            "description": "The name of the server jarfile.",
                            "env_variable": "SERVER_JARFILE",
                            "default_value": "server.jar",
                            "user_viewable": True,
                            "user_editable": True,
                            "rules": "required|regex:/^([\\w\\d._-]+)(\\.jar)$/",
                            "created_at": "2024-01-15T10:26:32.000000Z",
                            "updated_at": "2024-01-15T10:26:32.000000Z",
                        },
                    },
                    {
                        "object": "egg_variable",
                        "attributes": {
                            "id": 11,
                            "egg_id": 3,
                            "name": "Build Number",
                            "description": "The build number.",
                            "env_variable": "BUILD_NUMBER",
                            "default_value": "latest",
                            "user_viewable": True,
                            "user_editable": True,
                            "rules": "required|string|max:20",
                            "created_at": "2024-01-15T10:26:32.000000Z",
                            "updated_at": "2024-01-15T10:26:32.000000Z",
                        },
                    },
                ],
            }
        },
    },
}

CREATE_SERVER_KWARGS: dict[str, Any] = {
    "name": "Survival",
    "user_id": 7,
    "egg_id": 3,
    "docker_image": "ghcr.io/pterodactyl/yolks:java_17",
    "startup": "java -Xms128M -jar {{SERVER_JARFILE}}",
    "environment": {"SERVER_JARFILE": "server.jar", "BUILD_NUMBER": "latest"},
    "limits": Limits(memory=2048, swap=0, disk=10240, io=500, cpu=200),
    "feature_limits": FeatureLimits(databases=0, allocations=0, backups=2),
    "allocation_id": 11,
    "external_id": "order-42",
}

# --------------------------------------------------------------------------- transport


class SpySession(requests.Session):
    """A real session that remembers the keyword arguments of every request."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.seen.append(kwargs)
        return super().request(method, url, **kwargs)


def test_requests_carry_bearer_accept_content_type_and_explicit_timeouts(clock, rsps):
    rsps.add(responses.POST, f"{API}/users", json=user_item(), status=201)
    session = SpySession()
    client = make_client(clock, timeout=(3.0, 12.0), session=session)
    client.create_user(
        email="alice@example.com", username="alice", first_name="Alice", last_name="Liddell"
    )
    request = rsps.calls[0].request
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert request.req_kwargs["timeout"] == (3.0, 12.0)
    assert session.seen[0]["allow_redirects"] is False
    assert session.seen[0]["timeout"] == (3.0, 12.0)


def test_get_has_no_content_type(client, rsps):
    rsps.add(responses.GET, f"{API}/users/7", json=user_item())
    user = client.get_user(7)
    assert isinstance(user, User)
    assert user.two_factor is False
    assert user.external_id == "cust-7"
    assert "Content-Type" not in rsps.calls[0].request.headers


def test_base_url_is_normalised_and_validated(clock, rsps):
    rsps.add(responses.GET, f"{API}/users/7", json=user_item())
    # The API root pasted as the panel URL still sends requests to the right place.
    PterodactylClient(f"{PANEL}/api/application/", KEY).get_user(7)
    assert rsps.calls[0].request.url == f"{API}/users/7"
    with pytest.raises(ValueError, match="scheme and host"):
        PterodactylClient("panel.example.com", KEY)
    with pytest.raises(ValueError, match="empty"):
        PterodactylClient(PANEL, "")


def test_repr_never_shows_the_key(client):
    assert KEY not in repr(client)
    assert KEY[16:] not in repr(client)
    assert "***" in repr(client)


# --------------------------------------------------------------------------- users


def test_find_user_by_external_id_is_exact_and_quoted(client, rsps):
    rsps.add(responses.GET, f"{API}/users/external/cust%207", json=user_item())
    assert client.find_user_by_external_id("cust 7").id == 7
    with pytest.raises(ValueError, match="without '/'"):
        client.find_user_by_external_id("a/b")


def test_find_user_by_external_id_returns_none_on_404(client, rsps):
    rsps.add(
        responses.GET,
        f"{API}/users/external/nobody",
        status=404,
        json=error_body(
            "NotFoundHttpException", 404, "The requested resource could not be found on the server."
        ),
    )
    assert client.find_user_by_external_id("nobody") is None
    assert len(rsps.calls) == 1  # a 404 is an answer, not retried


def test_find_user_by_email_skips_partial_matches_across_pages(client, rsps):
    page1 = {
        "object": "list",
        "data": [user_item(id=1, email="jimbob@x.io"), user_item(id=2, email="bob@x.io.evil")],
        "meta": pagination(3, 2, 2, 1, 2),
    }
    page2 = {
        "object": "list",
        "data": [user_item(id=3, email="Bob@X.io")],
        "meta": pagination(3, 1, 2, 2, 2),
    }
    rsps.add(responses.GET, f"{API}/users", json=page1)
    rsps.add(responses.GET, f"{API}/users", json=page2)
    found = client.find_user_by_email("bob@x.io")
    assert found is not None
    assert found.id == 3
    for number, call in enumerate(rsps.calls, start=1):
        query = dict(query_of(call))
        assert query["filter[email]"] == "bob@x.io"
        assert query["page"] == str(number)


def test_find_user_by_email_none_when_only_partial_matches(client, rsps):
    rsps.add(
        responses.GET,
        f"{API}/users",
        json={
            "object": "list",
            "data": [user_item(id=1, email="jimbob@x.io")],
            "meta": pagination(1, 1, 100, 1, 1),
        },
    )
    assert client.find_user_by_email("bob@x.io") is None


def test_pagination_walks_three_pages_and_keeps_filters(client, rsps):
    for page in (1, 2, 3):
        count = 2 if page < 3 else 1
        rsps.add(
            responses.GET,
            f"{API}/servers",
            json={
                "object": "list",
                "data": [server_item(id=page * 10 + i) for i in range(count)],
                # The panel's own links drop filters; the client must not follow them.
                "meta": pagination(5, count, 2, page, 3),
            },
        )
    servers = list(client.iter_servers(name="surv", include=["allocations"], per_page=2))
    assert [s.id for s in servers] == [10, 11, 20, 21, 30]
    assert len(rsps.calls) == 3
    for number, call in enumerate(rsps.calls, start=1):
        query = dict(query_of(call))
        assert query == {
            "filter[name]": "surv",
            "include": "allocations",
            "page": str(number),
            "per_page": "2",
        }


def test_create_user_returns_created(client, rsps):
    rsps.add(
        responses.POST,
        f"{API}/users",
        status=201,
        json={**user_item(), "meta": {"resource": f"{API}/users/7"}},
    )
    result = client.create_user(
        email="alice@example.com",
        username="alice",
        first_name="Alice",
        last_name="Liddell",
        external_id="cust-7",
        password="hunter2-secret",
    )
    assert result.origin is CreateOrigin.CREATED
    assert not result.adopted
    assert result.resource.id == 7
    assert body_of(rsps.calls[0]) == {
        "email": "alice@example.com",
        "username": "alice",
        "first_name": "Alice",
        "last_name": "Liddell",
        "external_id": "cust-7",
        "password": "hunter2-secret",
    }


def test_create_user_adopts_after_lost_reply(client, rsps, clock):
    rsps.add(
        responses.POST,
        f"{API}/users",
        status=504,
        body="<html><head><title>504 Gateway Time-out</title></head></html>",
        content_type="text/html",
    )
    rsps.add(responses.GET, f"{API}/users/external/cust-7", json=user_item())
    result = client.create_user(
        email="alice@example.com",
        username="alice",
        first_name="Alice",
        last_name="Liddell",
        external_id="cust-7",
    )
    assert result.origin is CreateOrigin.RECOVERED
    assert result.adopted
    assert result.resource.id == 7
    assert [c.request.method for c in rsps.calls] == ["POST", "GET"]
    assert clock.sleeps == []


def test_update_user_sends_required_fields_from_a_fresh_get(client, rsps):
    rsps.add(responses.GET, f"{API}/users/7", json=user_item())
    rsps.add(responses.PATCH, f"{API}/users/7", json=user_item(first_name="Alicia"))
    user = client.update_user(7, first_name="Alicia")
    assert user.first_name == "Alicia"
    assert body_of(rsps.calls[1]) == {
        "email": "alice@example.com",
        "username": "alice",
        "first_name": "Alicia",
        "last_name": "Liddell",
    }


def test_update_user_password_and_clearing_external_id(client, rsps):
    rsps.add(responses.GET, f"{API}/users/7", json=user_item())
    rsps.add(responses.PATCH, f"{API}/users/7", json=user_item(external_id=None))
    client.update_user(7, password="n3w-pass", external_id=None)
    body = body_of(rsps.calls[1])
    assert body["password"] == "n3w-pass"
    assert body["external_id"] is None


def test_delete_user_with_servers_is_a_terminal_bad_request(client, rsps):
    rsps.add(
        responses.DELETE,
        f"{API}/users/7",
        status=400,
        json=error_body(
            "DisplayException",
            400,
            "Cannot delete a user with active servers attached to their account. Please delete "
            "their servers before continuing.",
        ),
    )
    with pytest.raises(PanelBadRequest) as info:
        client.delete_user(7)
    assert info.value.retryable is False
    assert len(rsps.calls) == 1


def test_delete_user_204_and_missing_ok(client, rsps):
    rsps.add(responses.DELETE, f"{API}/users/7", status=204, body="")
    rsps.add(
        responses.DELETE,
        f"{API}/users/8",
        status=404,
        json=error_body(
            "NotFoundHttpException", 404, "The requested resource could not be found on the server."
        ),
    )
    assert client.delete_user(7) is None
    client.delete_user(8, missing_ok=True)
    with pytest.raises(PanelNotFound):
        client.delete_user(8)


# --------------------------------------------------------------------------- servers


def test_create_server_with_allocation_sends_the_documented_body(client, rsps):
    rsps.add(responses.POST, f"{API}/servers", status=201, json=server_item(status="installing"))
    result = client.create_server(**CREATE_SERVER_KWARGS, additional_allocation_ids=[12])
    assert result.resource.is_installing
    assert result.origin is CreateOrigin.CREATED
    body = body_of(rsps.calls[0])
    assert body == {
        "name": "Survival",
        "user": 7,
        "egg": 3,
        "docker_image": "ghcr.io/pterodactyl/yolks:java_17",
        "startup": "java -Xms128M -jar {{SERVER_JARFILE}}",
        "environment": {"SERVER_JARFILE": "server.jar", "BUILD_NUMBER": "latest"},
        "limits": {
            "memory": 2048,
            "swap": 0,
            "disk": 10240,
            "io": 500,
            "cpu": 200,
            "threads": None,
        },
        "feature_limits": {"databases": 0, "allocations": 0, "backups": 2},
        "oom_disabled": True,
        "skip_scripts": False,
        "start_on_completion": False,
        "external_id": "order-42",
        "allocation": {"default": 11, "additional": [12]},
    }


def test_create_server_with_deploy_block(client, rsps):
    rsps.add(responses.POST, f"{API}/servers", status=201, json=server_item(status="installing"))
    kwargs = {**CREATE_SERVER_KWARGS, "allocation_id": None}
    kwargs["deploy"] = Deploy(locations=(1, 2), dedicated_ip=False, port_range=("25565-25600",))
    kwargs["environment"] = {"SERVER_JARFILE": "server.jar", "BUILD_NUMBER": 1234, "FLAG": True}
    client.create_server(**kwargs)
    body = body_of(rsps.calls[0])
    assert body["deploy"] == {
        "locations": [1, 2],
        "dedicated_ip": False,
        "port_range": ["25565-25600"],
    }
    assert "allocation" not in body
    # Egg rules like "string" reject JSON numbers: values are sent as strings.
    assert body["environment"] == {
        "SERVER_JARFILE": "server.jar",
        "BUILD_NUMBER": "1234",
        "FLAG": "1",
    }


def test_create_server_needs_exactly_one_placement(client):
    with pytest.raises(ValueError, match="exactly one"):
        client.create_server(**{**CREATE_SERVER_KWARGS, "deploy": Deploy()})
    with pytest.raises(ValueError, match="exactly one"):
        client.create_server(**{**CREATE_SERVER_KWARGS, "allocation_id": None})


def test_create_server_adopts_after_a_read_timeout(client, rsps, clock):
    rsps.add(responses.POST, f"{API}/servers", body=requests.exceptions.ReadTimeout("read"))
    rsps.add(responses.GET, f"{API}/servers/external/order-42", json=server_item())
    result = client.create_server(**CREATE_SERVER_KWARGS)
    assert result.origin is CreateOrigin.RECOVERED
    assert result.resource.id == 42
    assert [c.request.method for c in rsps.calls] == ["POST", "GET"]


def test_create_server_lost_reply_and_nothing_created_raises_retryable(client, rsps, clock):
    rsps.add(
        responses.POST,
        f"{API}/servers",
        status=504,
        json=error_body(
            "DaemonConnectionException",
            504,
            "Could not establish a connection to the machine running this server. Please try "
            "again.",
        ),
    )
    rsps.add(
        responses.GET,
        f"{API}/servers/external/order-42",
        status=404,
        json=error_body(
            "NotFoundHttpException", 404, "The requested resource could not be found on the server."
        ),
    )
    with pytest.raises(PanelUnavailable) as info:
        client.create_server(**CREATE_SERVER_KWARGS)
    assert info.value.retryable is True
    assert info.value.outcome_unknown is True
    assert "Wings" in str(info.value)
    # Never a second POST: the caller decides when to retry.
    assert [c.request.method for c in rsps.calls] == ["POST", "GET"]
    assert clock.sleeps == []


def test_create_without_external_id_cannot_adopt(client, rsps):
    rsps.add(responses.POST, f"{API}/servers", status=502, body="Bad Gateway")
    with pytest.raises(PanelUnavailable):
        client.create_server(**{**CREATE_SERVER_KWARGS, "external_id": None})
    assert len(rsps.calls) == 1


def test_create_server_connect_timeout_is_safe_to_repeat(client, rsps, clock):
    rsps.add(responses.POST, f"{API}/servers", body=requests.exceptions.ConnectTimeout("conn"))
    rsps.add(responses.POST, f"{API}/servers", status=201, json=server_item())
    result = client.create_server(**CREATE_SERVER_KWARGS)
    assert result.origin is CreateOrigin.CREATED
    assert len(rsps.calls) == 2
    assert clock.sleeps == [0.5]


def test_create_server_429_waits_retry_after_then_repeats(client, rsps, clock):
    rsps.add(
        responses.POST,
        f"{API}/servers",
        status=429,
        headers={
            "Retry-After": "7",
            "X-RateLimit-Limit": "240",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "1700000007",
        },
        json=error_body("ThrottleRequestsException", 429, "Too Many Attempts."),
    )
    rsps.add(responses.POST, f"{API}/servers", status=201, json=server_item())
    client.create_server(**CREATE_SERVER_KWARGS)
    assert clock.sleeps == [7.0]
    assert len(rsps.calls) == 2


def test_429_retry_after_too_long_is_raised_with_retry_after(client, rsps):
    rsps.add(
        responses.GET,
        f"{API}/users/7",
        status=429,
        headers={"Retry-After": "600"},
        json=error_body("ThrottleRequestsException", 429, "Too Many Attempts."),
    )
    with pytest.raises(PanelRateLimited) as info:
        client.get_user(7)
    assert info.value.retry_after == 600.0
    assert info.value.retryable is True


def test_ensure_server_returns_existing_without_posting(client, rsps):
    rsps.add(responses.GET, f"{API}/servers/external/order-42", json=server_item())
    result = client.ensure_server(**CREATE_SERVER_KWARGS)
    assert result.origin is CreateOrigin.EXISTING
    assert [c.request.method for c in rsps.calls] == ["GET"]


def test_ensure_server_adopts_on_external_id_taken(client, rsps):
    not_found = error_body(
        "NotFoundHttpException", 404, "The requested resource could not be found on the server."
    )
    rsps.add(responses.GET, f"{API}/servers/external/order-42", status=404, json=not_found)
    rsps.add(
        responses.POST,
        f"{API}/servers",
        status=422,
        json={
            "errors": [
                {
                    "code": "ValidationException",
                    "status": "422",
                    "detail": "The external id has already been taken.",
                    "meta": {"source_field": "external_id", "rule": "unique"},
                }
            ]
        },
    )
    rsps.add(responses.GET, f"{API}/servers/external/order-42", json=server_item())
    result = client.ensure_server(**CREATE_SERVER_KWARGS)
    assert result.origin is CreateOrigin.EXISTING


def test_update_server_build_sends_every_required_field(client, rsps):
    rsps.add(responses.GET, f"{API}/servers/42", json=server_item())
    built = server_item()
    built["attributes"]["relationships"] = {
        "allocations": {
            "object": "list",
            "data": [
                {
                    "object": "allocation",
                    "attributes": {
                        "id": 11,
                        "ip": "203.0.113.10",
                        "alias": None,
                        "port": 25565,
                        "notes": None,
                        "assigned": True,
                    },
                }
            ],
        }
    }
    rsps.add(responses.PATCH, f"{API}/servers/42/build", json=built)
    server = client.update_server_build(42, memory=4096, add_allocations=[99], backup_limit=5)
    assert server.allocation_ids == (11,)  # 99 was skipped by the panel: visible to the caller
    assert dict(query_of(rsps.calls[1])) == {"include": "allocations"}
    assert body_of(rsps.calls[1]) == {
        "allocation": 11,
        "oom_disabled": True,
        "limits": {
            "memory": 4096,
            "swap": 0,
            "disk": 10240,
            "io": 500,
            "cpu": 200,
            "threads": None,
        },
        "feature_limits": {"databases": 0, "allocations": 0, "backups": 5},
        "add_allocations": [99],
        "remove_allocations": [],
    }


def test_build_patch_is_not_sent_again_after_a_lost_reply():
    sim = PanelSimulator(install_delay=0)
    seed = sim.seed
    with simulated_panel(sim, SIM_PANEL):
        client = PterodactylClient(SIM_PANEL, seed.admin_api_key, sleep=lambda s: None)
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


def test_suspend_is_retried_on_5xx_because_it_is_idempotent(client, rsps, clock):
    rsps.add(responses.POST, f"{API}/servers/42/suspend", status=502, body="bad gateway")
    rsps.add(responses.POST, f"{API}/servers/42/suspend", status=204, body="")
    client.suspend_server(42)
    assert len(rsps.calls) == 2
    assert clock.sleeps == [0.5]


def test_unsuspend_204(client, rsps):
    rsps.add(responses.POST, f"{API}/servers/42/unsuspend", status=204, body="")
    client.unsuspend_server(42)
    assert rsps.calls[0].request.body is None


def test_suspend_with_wings_down_changes_nothing():
    sim = PanelSimulator(install_delay=3600)
    seed = sim.seed
    with simulated_panel(sim, SIM_PANEL):
        client = PterodactylClient(
            SIM_PANEL, seed.admin_api_key, sleep=lambda s: None, max_retries=0
        )
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


def test_reinstall_is_not_repeated_after_a_5xx(client, rsps):
    rsps.add(
        responses.POST,
        f"{API}/servers/42/reinstall",
        status=500,
        json=error_body(
            "QueryException",
            500,
            "An unexpected error was encountered while processing this request, please try again.",
        ),
    )
    with pytest.raises(PanelUnavailable):
        client.reinstall_server(42)
    assert len(rsps.calls) == 1


def test_delete_server_force_and_lost_reply_then_404_counts_as_done(client, rsps, clock):
    rsps.add(responses.DELETE, f"{API}/servers/42/force", body=requests.exceptions.ReadTimeout())
    rsps.add(
        responses.DELETE,
        f"{API}/servers/42/force",
        status=404,
        json=error_body(
            "NotFoundHttpException", 404, "The requested resource could not be found on the server."
        ),
    )
    client.delete_server(42, force=True)
    assert len(rsps.calls) == 2


def test_get_server_parses_everything(client, rsps):
    rsps.add(responses.GET, f"{API}/servers/42", json=server_item(status="install_failed"))
    server = client.get_server(42)
    assert isinstance(server, Server)
    assert server.install_failed
    assert not server.is_ready
    assert server.limits.memory == 2048
    assert server.feature_limits.backups == 2
    assert server.container.installed is True
    assert server.egg_environment() == {
        "MINECRAFT_VERSION": "latest",
        "SERVER_JARFILE": "server.jar",
        "DL_PATH": "",
        "BUILD_NUMBER": "latest",
    }


# --------------------------------------------------------------------------- nodes etc.


def test_node_overallocate_minus_one_means_99_percent(client, rsps):
    rsps.add(
        responses.GET,
        f"{API}/nodes/1",
        json={"object": "node", "attributes": node_attrs(memory=1000, memory_overallocate=-1)},
    )
    node = client.get_node(1)
    assert node.memory_capacity == pytest.approx(990)
    # The deploy filter's test: allocated (4096 of 16384 MiB) + requested <= capacity.
    roomy = Node.from_api({"object": "node", "attributes": node_attrs()})
    assert roomy.fits(memory=12288, disk=1)
    assert not roomy.fits(memory=12289, disk=1)


def test_free_allocations_use_the_server_id_filter(client, rsps):
    rsps.add(
        responses.GET,
        f"{API}/nodes/1/allocations",
        json={
            "object": "list",
            "data": [
                {
                    "object": "allocation",
                    "attributes": {
                        "id": 5,
                        "ip": "203.0.113.10",
                        "alias": None,
                        "port": 25570,
                        "notes": None,
                        "assigned": False,
                    },
                }
            ],
            "meta": pagination(1, 1, 500, 1, 1),
        },
    )
    free = client.list_free_allocations(1)
    assert [a.port for a in free] == [25570]
    assert dict(query_of(rsps.calls[0])) == {
        "filter[server_id]": "false",
        "page": "1",
        "per_page": "500",
    }


def allocation_page(ports: list[int], page: int, pages: int, per_page: int) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "object": "allocation",
                "attributes": {
                    "id": port - 25000,
                    "ip": "203.0.113.10",
                    "alias": None,
                    "port": port,
                    "notes": None,
                    "assigned": False,
                },
            }
            for port in ports
        ],
        "meta": pagination(per_page * pages, len(ports), per_page, page, pages),
    }


def test_free_allocations_with_a_limit_read_only_the_pages_needed(client, rsps):
    for page in (1, 2):
        first = 25565 + (page - 1) * 13
        rsps.add(
            responses.GET,
            f"{API}/nodes/1/allocations",
            json=allocation_page(list(range(first, first + 13)), page=page, pages=3, per_page=13),
        )
    # Two ports are claimed by others: skipped, not counted.
    skip = {("203.0.113.10", 25565), ("203.0.113.10", 25570)}
    free = client.list_free_allocations(1, limit=11, skip=skip)
    assert [a.port for a in free] == [*range(25566, 25570), *range(25571, 25578)]
    assert len(rsps.calls) == 1  # a node with pages of free ports: one request
    assert dict(query_of(rsps.calls[0])) == {
        "filter[server_id]": "false",
        "page": "1",
        "per_page": "13",  # the limit plus the skipped pairs
    }


def test_create_allocations_then_lists_them(client, rsps):
    rsps.add(responses.POST, f"{API}/nodes/1/allocations", status=204, body="")
    rsps.add(
        responses.GET,
        f"{API}/nodes/1/allocations",
        json={
            "object": "list",
            "data": [
                {
                    "object": "allocation",
                    "attributes": {
                        "id": i,
                        "ip": "203.0.113.10",
                        "alias": None,
                        "port": port,
                        "notes": None,
                        "assigned": False,
                    },
                }
                for i, port in ((1, 25565), (2, 25566), (3, 30000))
            ],
            "meta": pagination(3, 3, 500, 1, 1),
        },
    )
    created = client.create_allocations(1, ip="203.0.113.10", ports=["25565-25566"])
    assert [a.port for a in created] == [25565, 25566]
    assert body_of(rsps.calls[0]) == {"ip": "203.0.113.10", "ports": ["25565-25566"]}
    assert dict(query_of(rsps.calls[1]))["filter[ip]"] == "203.0.113.10"


def test_delete_allocation_in_use_is_terminal(client, rsps):
    rsps.add(
        responses.DELETE,
        f"{API}/nodes/1/allocations/5",
        status=400,
        json=error_body(
            "ServerUsingAllocationException",
            400,
            "A server is currently assigned to this allocation. An allocation can only be "
            "deleted if no server is currently assigned.",
        ),
    )
    with pytest.raises(PanelBadRequest):
        client.delete_allocation(1, 5)


def test_locations_nests_and_eggs(client, rsps):
    rsps.add(
        responses.GET,
        f"{API}/locations",
        json={
            "object": "list",
            "data": [
                {
                    "object": "location",
                    "attributes": {
                        "id": 1,
                        "short": "eu",
                        "long": "Europe",
                        "updated_at": "2024-01-15T10:26:32+00:00",
                        "created_at": "2024-01-15T10:26:32+00:00",
                    },
                }
            ],
            "meta": pagination(1, 1, 100, 1, 1),
        },
    )
    rsps.add(
        responses.GET,
        f"{API}/nests",
        json={
            "object": "list",
            "data": [
                {
                    "object": "nest",
                    "attributes": {
                        "id": 1,
                        "uuid": "8f6b2f0e-3d44-4c34-9e33-2d3a4b5c6d7e",
                        "author": "support@pterodactyl.io",
                        "name": "Minecraft",
                        "description": "Minecraft - the classic game from Mojang.",
                        "created_at": "2024-01-15T10:26:32+00:00",
                        "updated_at": "2024-01-15T10:26:32+00:00",
                    },
                }
            ],
            "meta": pagination(1, 1, 100, 1, 1),
        },
    )
    rsps.add(
        responses.GET, f"{API}/nests/1/eggs", json={"object": "list", "data": [EGG_WITH_VARIABLES]}
    )
    rsps.add(responses.GET, f"{API}/nests/1/eggs/3", json=EGG_WITH_VARIABLES)
    assert client.list_locations()[0].long == "Europe"
    assert client.list_nests()[0].name == "Minecraft"
    eggs = client.list_eggs(1)
    assert dict(query_of(rsps.calls[2])) == {"include": "variables"}
    assert eggs[0].variables is not None
    assert eggs[0].variables[0].required
    egg = client.get_egg(1, 3)
    assert egg.environment_with_defaults({"BUILD_NUMBER": "500"}) == {
        "SERVER_JARFILE": "server.jar",
        "BUILD_NUMBER": "500",
    }
    assert egg.docker_images["Java 11"].endswith("java_11")


# --------------------------------------------------------------------------- retries


def test_get_5xx_retries_with_exponential_backoff(client, rsps, clock):
    for _ in range(2):
        rsps.add(responses.GET, f"{API}/users/7", status=503, body="Service Unavailable")
    rsps.add(responses.GET, f"{API}/users/7", json=user_item())
    assert client.get_user(7).id == 7
    assert clock.sleeps == [0.5, 1.0]


def test_get_5xx_gives_up_after_max_retries(client, rsps, clock):
    rsps.add(
        responses.GET,
        f"{API}/users/7",
        status=500,
        json=error_body(
            "QueryException",
            500,
            "An unexpected error was encountered while processing this request, please try again.",
        ),
    )
    with pytest.raises(PanelUnavailable) as info:
        client.get_user(7)
    assert info.value.retryable
    assert info.value.status == 500
    assert len(rsps.calls) == 4  # 1 + max_retries (3)
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_jitter_spreads_delays(rsps, clock):
    client = make_client(clock, random=lambda: 0.0, max_retries=1)
    rsps.add(responses.GET, f"{API}/users/7", body=requests.exceptions.ConnectionError("reset"))
    rsps.add(responses.GET, f"{API}/users/7", json=user_item())
    client.get_user(7)
    assert clock.sleeps == [0.25]


def test_no_retry_on_422_and_field_errors_are_parsed(client, rsps, clock):
    rsps.add(
        responses.POST,
        f"{API}/users",
        status=422,
        json={
            "errors": [
                {
                    "code": "ValidationException",
                    "status": "422",
                    "detail": "The email has already been taken.",
                    "meta": {"source_field": "email", "rule": "unique"},
                },
                {
                    "code": "ValidationException",
                    "status": "422",
                    "detail": "The username must start and end with alpha-numeric characters "
                    "and\n                contain only letters, numbers, dashes, underscores, "
                    "and periods.",
                    "meta": {"source_field": "username", "rule": "p_username"},
                },
                {
                    "code": "ValidationException",
                    "status": "422",
                    "detail": "The last name field is required.",
                    "meta": {"source_field": "last_name", "rule": "required"},
                },
            ]
        },
    )
    with pytest.raises(PanelValidationError) as info:
        client.create_user(email="a@b.io", username="-bad", first_name="A", last_name="")
    error = info.value
    assert len(rsps.calls) == 1
    assert clock.sleeps == []
    assert error.retryable is False
    assert error.status == 422
    assert [(e.source_field, e.rule) for e in error.field_errors] == [
        ("email", "unique"),
        ("username", "p_username"),
        ("last_name", "required"),
    ]
    assert error.has("email", "unique")
    assert not error.has("email", "required")
    assert "last_name [required]: The last name field is required." in str(error)


# --------------------------------------------------------------------------- error mapping


@pytest.mark.parametrize(
    ("status", "body", "error_class", "retryable", "text"),
    [
        (
            401,
            error_body("AuthenticationException", 401, "Unauthenticated."),
            PanelAuthError,
            False,
            "PTERODACTYL_ADMIN_API_KEY",
        ),
        (
            403,
            error_body(
                "AccessDeniedHttpException",
                403,
                "This account does not have permission to access the API.",
            ),
            PanelPermissionError,
            False,
            "root admin",
        ),
        (
            403,
            error_body("AccessDeniedHttpException", 403, "This action is unauthorized."),
            PanelPermissionError,
            False,
            "Read/Write permission",
        ),
        (
            403,
            error_body(
                "AccessDeniedHttpException",
                403,
                "This IP address (10.0.0.9) does not have permission to access the API "
                "using these credentials.",
            ),
            PanelPermissionError,
            False,
            "allowed IPs",
        ),
        (
            404,
            error_body(
                "NotFoundHttpException", 404, "The route api/application/userz could not be found."
            ),
            PanelBadResponse,
            False,
            "PTERODACTYL_URL",
        ),
        (
            405,
            error_body(
                "MethodNotAllowedHttpException",
                405,
                "The PUT method is not supported for route api/application/users/7. "
                "Supported methods: GET, HEAD, PATCH, DELETE.",
            ),
            PanelBadResponse,
            False,
            "PUT method",
        ),
        (
            409,
            error_body(
                "ServerStateConflictException",
                409,
                "This server has not yet completed its installation process, please try "
                "again later.",
            ),
            PanelConflict,
            True,
            "installation",
        ),
        (
            409,
            error_body(
                "ServerStateConflictException",
                409,
                "This server is currently suspended and the functionality requested is "
                "unavailable.",
            ),
            PanelConflict,
            False,
            "suspended",
        ),
        (
            400,
            error_body(
                "NoViableNodeException",
                400,
                "No nodes satisfying the requirements specified for automatic deployment "
                "could be found.",
            ),
            PanelNoViableNode,
            False,
            "overallocate",
        ),
        (
            400,
            error_body(
                "NoViableAllocationException",
                400,
                "No allocations satisfying the requirements for automatic deployment were found.",
            ),
            PanelNoViableAllocation,
            False,
            "allocations",
        ),
        (
            400,
            error_body(
                "TwoFactorAuthRequiredException",
                400,
                "Two-factor authentication is required on this account in order to "
                "access this endpoint.",
            ),
            PanelAuthError,
            False,
            "TOTP",
        ),
        (
            400,
            error_body(
                "BadRequestHttpException",
                400,
                "The JSON data passed in the request appears to be malformed: Syntax error",
            ),
            PanelBadRequest,
            False,
            "malformed",
        ),
        (
            400,
            error_body(
                "InvalidFilterQuery",
                400,
                "Requested filter(s) `foo` are not allowed. Allowed filter(s) are "
                "`email, uuid, username, external_id`.",
            ),
            PanelBadRequest,
            False,
            "filter",
        ),
        (
            502,
            error_body(
                "DaemonConnectionException",
                502,
                "There was an error while communicating with the machine running this "
                "server. This error has been logged, please try again. (code: 500) "
                "(request_id: abc)",
            ),
            PanelUnavailable,
            True,
            "Wings",
        ),
        (
            404,
            error_body(
                "DaemonConnectionException",
                404,
                "An error occurred on the remote host: not found. (request id: x)",
            ),
            PanelBadRequest,
            False,
            "Wings refused",
        ),
    ],
)
def test_error_mapping(rsps, clock, status, body, error_class, retryable, text):
    client = make_client(clock, max_retries=0)
    rsps.add(responses.GET, f"{API}/users/7", status=status, json=body)
    with pytest.raises(error_class) as info:
        client.get_user(7)
    assert info.value.retryable is retryable
    assert info.value.status == status
    assert info.value.code == body["errors"][0]["code"]
    assert text in str(info.value)


def test_debug_mode_error_bodies_are_tolerated(client, rsps):
    body = error_body(
        "NotFoundHttpException",
        404,
        "No query results for model [Pterodactyl\\Models\\User] 7",
        source={"line": 12, "file": "/app/Http/Controllers/Controller.php"},
        meta={"trace": [{"function": "x"}], "previous": []},
    )
    rsps.add(responses.GET, f"{API}/users/7", status=404, json=body)
    with pytest.raises(PanelNotFound):
        client.get_user(7)


def test_302_to_login_means_key_or_accept_problem(client, rsps):
    rsps.add(
        responses.GET,
        f"{API}/users/7",
        status=302,
        headers={"Location": f"{PANEL}/auth/login"},
        body="",
    )
    with pytest.raises(PanelAuthError) as info:
        client.get_user(7)
    assert "Accept: application/json" in str(info.value)
    assert len(rsps.calls) == 1  # not followed


def test_other_redirect_is_a_bad_url(client, rsps):
    rsps.add(
        responses.GET,
        f"{API}/users/7",
        status=301,
        headers={"Location": "https://panel.example.com:443/api/application/users/7"},
        body="",
    )
    with pytest.raises(PanelBadResponse, match="redirect"):
        client.get_user(7)


def test_html_page_on_200_is_a_bad_response(client, rsps):
    rsps.add(
        responses.GET,
        f"{API}/users/7",
        body="<!DOCTYPE html><html><head><title>Pterodactyl</title></head></html>",
        content_type="text/html; charset=UTF-8",
    )
    with pytest.raises(PanelBadResponse) as info:
        client.get_user(7)
    assert "does not look like a Pterodactyl panel API" in str(info.value)
    assert info.value.retryable is False


def test_html_404_is_a_bad_url_and_html_502_is_unavailable(rsps, clock):
    client = make_client(clock, max_retries=0)
    rsps.add(
        responses.GET,
        f"{API}/users/7",
        status=404,
        body="<html>Not Found</html>",
        content_type="text/html",
    )
    with pytest.raises(PanelBadResponse, match="does not look like a Pterodactyl"):
        client.get_user(7)
    rsps.replace(
        responses.GET,
        f"{API}/users/7",
        status=502,
        body="<html><title>502 Bad Gateway</title></html>",
        content_type="text/html",
    )
    with pytest.raises(PanelUnavailable, match="HTML page"):
        client.get_user(7)


def test_malformed_json_is_a_bad_response(client, rsps):
    rsps.add(
        responses.GET,
        f"{API}/users/7",
        body='{"object": "user", "attrib',
        content_type="application/json",
    )
    with pytest.raises(PanelBadResponse, match="not a JSON object"):
        client.get_user(7)


@pytest.mark.parametrize(
    "payload",
    [
        {"object": "server", "attributes": {}},
        {"object": "user", "attributes": user_attrs(id="seven")},
        {"object": "user", "attributes": {k: v for k, v in user_attrs().items() if k != "email"}},
        {"object": "user"},
        [1, 2, 3],
    ],
)
def test_unexpected_shape_is_a_bad_response_not_a_key_error(client, rsps, payload):
    rsps.add(responses.GET, f"{API}/users/7", json=payload)
    with pytest.raises(PanelBadResponse):
        client.get_user(7)


def test_unexpected_list_shape(client, rsps):
    rsps.add(responses.GET, f"{API}/users", json={"object": "list", "data": {"a": 1}})
    with pytest.raises(PanelBadResponse, match="not a list"):
        list(client.iter_users())


def test_errors_are_picklable_for_celery(client, rsps):
    rsps.add(
        responses.POST,
        f"{API}/users",
        status=422,
        json={
            "errors": [
                {
                    "code": "ValidationException",
                    "status": "422",
                    "detail": "The email field is required.",
                    "meta": {"source_field": "email", "rule": "required"},
                }
            ]
        },
    )
    with pytest.raises(PanelValidationError) as info:
        client.create_user(email="", username="abc", first_name="a", last_name="b")
    clone = pickle.loads(pickle.dumps(info.value))  # noqa: S301 - our own bytes
    assert type(clone) is PanelValidationError
    assert clone.field_errors == info.value.field_errors
    assert str(clone) == str(info.value)


# --------------------------------------------------------------------------- secrets


def test_key_never_in_errors_reprs_or_logs(rsps, clock, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(clock, max_retries=1)
    # A debug-mode panel could echo anything back: even then the key must not leak.
    rsps.add(
        responses.GET,
        f"{API}/users/7",
        status=500,
        json=error_body("QueryException", 500, f"SQL error near 'Bearer {KEY}'"),
    )
    rsps.add(
        responses.GET,
        f"{API}/users/8",
        status=401,
        json=error_body("AuthenticationException", 401, f"Unauthenticated. {KEY[16:]}"),
    )
    rsps.add(
        responses.GET,
        f"{API}/users/9",
        status=302,
        headers={"Location": f"{PANEL}/elsewhere?token={KEY}"},
        body="",
    )
    errors: list[PanelError] = []
    for user_id in (7, 8, 9):
        with pytest.raises(PanelError) as info:
            client.get_user(user_id)
        errors.append(info.value)
    secret = KEY[16:]
    for error in errors:
        for text in (str(error), repr(error), error.message):
            assert secret not in text
    assert secret not in caplog.text
    assert "retry 1/1" in caplog.text  # the retry was logged (redacted)
    assert secret not in repr(client)


def test_client_api_power_and_resources(clock, rsps):
    client = PterodactylClientAPI(
        PANEL,
        "ptlc_TESTkey0001" + "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tXY",
        sleep=clock.sleep,
        random=lambda: 0.5,
    )
    rsps.add(responses.POST, f"{PANEL}/api/client/servers/1a7ce997/power", status=204, body="")
    rsps.add(
        responses.GET,
        f"{PANEL}/api/client/servers/1a7ce997/resources",
        json={
            "object": "stats",
            "attributes": {
                "current_state": "running",
                "is_suspended": False,
                "resources": {
                    "memory_bytes": 588701696,
                    "cpu_absolute": 0.373,
                    "disk_bytes": 118218752,
                    "network_rx_bytes": 16705,
                    "network_tx_bytes": 7967,
                    "uptime": 9260,
                },
            },
        },
    )
    client.send_power_signal("1a7ce997", "start")
    assert body_of(rsps.calls[0]) == {"signal": "start"}
    stats = client.get_server_resources("1a7ce997")
    assert stats.current_state == "running"
    assert stats.uptime_ms == 9260
    with pytest.raises(ValueError, match="unknown power signal"):
        client.send_power_signal("1a7ce997", "explode")  # type: ignore[arg-type]


def test_client_api_application_key_hint(clock, rsps):
    client = PterodactylClientAPI(PANEL, KEY, sleep=clock.sleep)
    rsps.add(
        responses.GET,
        f"{PANEL}/api/client/servers/1a7ce997/resources",
        status=403,
        json=error_body(
            "AccessDeniedHttpException",
            403,
            "You are attempting to use an application API key on an endpoint that requires a "
            "client API key.",
        ),
    )
    with pytest.raises(PanelPermissionError, match="ptlc_"):
        client.get_server_resources("1a7ce997")


def test_application_key_on_client_api_gets_404_for_a_missing_server_first():
    """Doc 1.2: binding (404) comes before the application-key refusal (403)."""
    sim = PanelSimulator()
    with simulated_panel(sim, SIM_PANEL):
        headers = {
            "Authorization": f"Bearer {sim.seed.admin_api_key}",
            "Accept": "application/json",
        }
        missing = requests.get(
            f"{SIM_PANEL}/api/client/servers/zzzzzzzz", headers=headers, timeout=5
        )
        assert missing.status_code == 404


# --------------------------------------------------------------------------- settings


def settings_client_calls(rsps: responses.RequestsMock, host: str) -> None:
    rsps.add(responses.GET, f"{host}/api/application/users/7", json=user_item())
    rsps.add(responses.POST, f"{host}/api/application/users", status=201, json=user_item())


def create_alice(client: PterodactylClient) -> None:
    client.create_user(
        email="alice@example.com", username="alice", first_name="Alice", last_name="Liddell"
    )


def test_from_settings_reads_django_settings(monkeypatch, rsps, clock):
    import django.conf

    host = "https://panel.settings.test"
    fake = SimpleNamespace(
        PTERODACTYL_URL=host,
        PTERODACTYL_ADMIN_API_KEY=KEY,
        PTERODACTYL_TIMEOUT_CONNECT=2,
        PTERODACTYL_TIMEOUT_READ=9,
        PTERODACTYL_TIMEOUT_READ_GET=4,
        PTERODACTYL_RATE_LIMIT_PER_MINUTE=120,
        PTERODACTYL_RATE_LIMIT_REDIS_URL="",
        PTERODACTYL_HTTP_MAX_RETRIES=5,
    )
    monkeypatch.setattr(django.conf, "settings", fake)
    shared_limiters_reset()
    settings_client_calls(rsps, host)
    client = PterodactylClient.from_settings(sleep=clock.sleep, random=lambda: 0.5)
    # The panel URL and the timeouts per kind of call: a GET's read timeout, a write's.
    client.get_user(7)
    create_alice(client)
    assert [call.request.url for call in rsps.calls] == [
        f"{host}/api/application/users/7",
        f"{host}/api/application/users",
    ]
    assert [call.request.req_kwargs["timeout"] for call in rsps.calls] == [(2.0, 4.0), (2.0, 9.0)]
    # PTERODACTYL_HTTP_MAX_RETRIES: a GET that keeps failing is tried 1 + 5 times.
    rsps.replace(responses.GET, f"{host}/api/application/users/7", status=503, body="busy")
    with pytest.raises(PanelUnavailable):
        client.get_user(7)
    assert len(rsps.calls) == 2 + 6
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]
    shared_limiters_reset()


def test_from_settings_clients_share_one_rate_limit(monkeypatch, rsps):
    import django.conf

    host = "https://panel.shared-limit.test"
    fake = SimpleNamespace(
        PTERODACTYL_URL=host,
        PTERODACTYL_ADMIN_API_KEY=KEY,
        PTERODACTYL_RATE_LIMIT_PER_MINUTE=120,
        PTERODACTYL_RATE_LIMIT_REDIS_URL="",
    )
    monkeypatch.setattr(django.conf, "settings", fake)
    shared_limiters_reset()
    settings_client_calls(rsps, host)
    first, second = PterodactylClient.from_settings(), PterodactylClient.from_settings()
    for _ in range(60):
        first.get_user(7)
        second.get_user(7)
    # 120 per minute between them: the next request of either is refused before it is sent.
    for client in (first, second):
        with pytest.raises(PanelRateLimited, match="120 panel requests per 60 s"):
            client.get_user(7)
    assert len(rsps.calls) == 120
    shared_limiters_reset()


def test_from_settings_defaults_and_missing_values(monkeypatch, rsps):
    import django.conf
    from django.core.exceptions import ImproperlyConfigured

    host = "https://panel.defaults.test"
    monkeypatch.setattr(
        django.conf,
        "settings",
        SimpleNamespace(PTERODACTYL_URL=host, PTERODACTYL_ADMIN_API_KEY=KEY),
    )
    shared_limiters_reset()
    settings_client_calls(rsps, host)
    sleeps: list[float] = []
    client = PterodactylClient.from_settings(sleep=sleeps.append, random=lambda: 0.5)
    client.get_user(7)
    create_alice(client)
    # 5 s to connect, 30 s to read, for reads and writes alike.
    assert [call.request.req_kwargs["timeout"] for call in rsps.calls] == [(5.0, 30.0)] * 2
    # 3 retries.
    rsps.replace(responses.GET, f"{host}/api/application/users/7", status=503, body="busy")
    with pytest.raises(PanelUnavailable):
        client.get_user(7)
    assert len(rsps.calls) == 2 + 4
    assert sleeps == [0.5, 1.0, 2.0]
    # 200 requests a minute (the calls so far count too).
    rsps.replace(responses.GET, f"{host}/api/application/users/7", json=user_item())
    for _ in range(200 - len(rsps.calls)):
        client.get_user(7)
    with pytest.raises(PanelRateLimited, match="200 panel requests per 60 s"):
        client.get_user(7)
    assert len(rsps.calls) == 200
    shared_limiters_reset()
    monkeypatch.setattr(django.conf, "settings", SimpleNamespace(PTERODACTYL_URL=PANEL))
    with pytest.raises(ImproperlyConfigured):
        PterodactylClient.from_settings()


def test_rate_limiter_is_asked_before_every_attempt(rsps, clock):
    class CountingLimiter:
        def __init__(self) -> None:
            self.acquired = 0
            self.blocked: list[float] = []

        def acquire(self) -> None:
            self.acquired += 1

        def block_for(self, seconds: float) -> None:
            self.blocked.append(seconds)

    limiter = CountingLimiter()
    client = make_client(clock, rate_limiter=limiter)
    rsps.add(responses.GET, f"{API}/users/7", status=503, body="busy")
    rsps.add(
        responses.GET,
        f"{API}/users/7",
        status=429,
        headers={"Retry-After": "3"},
        json=error_body("ThrottleRequestsException", 429, "Too Many Attempts."),
    )
    rsps.add(responses.GET, f"{API}/users/7", json=user_item())
    client.get_user(7)
    assert limiter.acquired == 3
    # A 429 from the panel pauses everyone sharing the limiter.
    assert limiter.blocked == [3.0]
    assert clock.sleeps == [0.5, 3.0]


def test_unset_sentinel_repr():
    assert repr(UNSET) == "UNSET"
