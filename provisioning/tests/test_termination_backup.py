"""Backups through the Client API: our client against `responses` on the panel's exact paths
(the shapes of pterodactyl/panel's BackupController, StoreBackupRequest, BackupTransformer and
InitiateBackupService), and the same client against the simulator."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from provisioning.pterodactyl import (
    Backup,
    FeatureLimits,
    Limits,
    PanelBadRequest,
    PanelConflict,
    PanelNotFound,
    PanelRateLimited,
    PanelValidationError,
    PterodactylClientAPI,
)
from provisioning.tests.conftest import PANEL

CLIENT_KEY = "ptlc_TESTkey0001" + "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tXY"
BACKUPS = f"{PANEL}/api/client/servers/1a7ce997/backups"
UUID = "904df120-a66f-4c83-9b4f-5a6ae0b2f5c1"


def backup_item(**overrides: Any) -> dict[str, Any]:
    attributes = {
        "uuid": UUID,
        "is_successful": False,
        "is_locked": True,
        "name": "final-42",
        "ignored_files": [],
        "checksum": None,
        "bytes": 0,
        "created_at": "2024-01-15T10:26:32+00:00",
        "completed_at": None,
    }
    attributes.update(overrides)
    return {"object": "backup", "attributes": attributes}


def error_body(code: str, status: int, detail: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "status": str(status), "detail": detail}]}


@pytest.fixture
def api(clock) -> PterodactylClientAPI:
    return PterodactylClientAPI(
        PANEL, CLIENT_KEY, sleep=clock.sleep, random=lambda: 0.5, max_retry_after=5
    )


# --------------------------------------------------------------------------- responses


def test_create_sends_the_store_request_fields_and_reads_the_item(api, rsps):
    rsps.add(responses.POST, BACKUPS, json=backup_item(), status=200)
    backup = api.backup_create("1a7ce997", "final-42", is_locked=True, ignored=("logs", "*.tmp"))
    request = rsps.calls[0].request
    assert json.loads(request.body) == {
        "name": "final-42",
        "is_locked": True,
        "ignored": "logs\n*.tmp",
    }
    assert request.headers["Authorization"] == f"Bearer {CLIENT_KEY}"
    assert request.headers["Accept"].startswith("application/json")
    assert backup == Backup(
        uuid=UUID,
        name="final-42",
        is_successful=False,
        is_locked=True,
        ignored_files=(),
        checksum=None,
        bytes=0,
        created_at=backup.created_at,
        completed_at=None,
    )
    assert backup.created_at is not None
    assert backup.created_at.isoformat() == ("2024-01-15T10:26:32+00:00")
    assert backup.in_progress
    assert not backup.failed


def test_get_reads_a_completed_backup(api, rsps):
    rsps.add(
        responses.GET,
        f"{BACKUPS}/{UUID}",
        json=backup_item(
            is_successful=True,
            checksum="sha1:0a4d55a8d778e5022fab701977c5d840bbc486d0",
            bytes=52428800,
            completed_at="2024-01-15T10:28:01+00:00",
        ),
    )
    backup = api.backup_get("1a7ce997", UUID)
    assert (backup.is_successful, backup.bytes, backup.in_progress) == (True, 52428800, False)
    assert backup.checksum == "sha1:0a4d55a8d778e5022fab701977c5d840bbc486d0"
    assert len(rsps.calls) == 1


def test_backup_limit_reached_is_a_terminal_bad_request(api, rsps):
    detail = "Cannot create a new backup, this server has reached its limit of 0 backups."
    rsps.add(
        responses.POST,
        BACKUPS,
        status=400,
        json=error_body("TooManyBackupsException", 400, detail),
    )
    with pytest.raises(PanelBadRequest) as caught:
        api.backup_create("1a7ce997", "final-42")
    assert caught.value.code == "TooManyBackupsException"
    assert caught.value.detail == detail
    assert caught.value.retryable is False
    assert len(rsps.calls) == 1  # never repeated


def test_throttled_backup_is_retryable_with_retry_after(api, rsps, clock):
    detail = "Only 2 backups may be generated within a 600 second span of time."
    rsps.add(
        responses.POST,
        BACKUPS,
        status=429,
        headers={"Retry-After": "540"},
        json=error_body("TooManyRequestsHttpException", 429, detail),
    )
    with pytest.raises(PanelRateLimited) as caught:
        api.backup_create("1a7ce997", "final-42")
    assert caught.value.retryable is True
    assert caught.value.retry_after == 540.0
    # 540 s is beyond what the client waits in-process: the caller (the drain) retries later.
    assert len(rsps.calls) == 1


def test_suspended_server_conflict_is_not_retryable(api, rsps):
    rsps.add(
        responses.POST,
        BACKUPS,
        status=409,
        json=error_body(
            "ServerStateConflictException",
            409,
            "This server is currently suspended and the functionality requested is unavailable.",
        ),
    )
    with pytest.raises(PanelConflict) as caught:
        api.backup_create("1a7ce997", "final-42")
    assert caught.value.retryable is False


def test_missing_backup_is_not_found(api, rsps):
    rsps.add(
        responses.GET,
        f"{BACKUPS}/{UUID}",
        status=404,
        json=error_body(
            "NotFoundHttpException", 404, "The requested resource could not be found on the server."
        ),
    )
    with pytest.raises(PanelNotFound):
        api.backup_get("1a7ce997", UUID)


def test_find_walks_the_pages_by_fifty(api, rsps):
    def page(number: int, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "object": "list",
            "data": items,
            "meta": {
                "pagination": {
                    "total": 51,
                    "count": len(items),
                    "per_page": 50,
                    "current_page": number,
                    "total_pages": 2,
                    "links": {},
                },
                "backup_count": 51,
            },
        }

    others = [
        backup_item(uuid=f"00000000-0000-4000-8000-{i:012d}", name=f"b{i}") for i in range(50)
    ]
    rsps.add(
        responses.GET,
        BACKUPS,
        match=[responses.matchers.query_param_matcher({"page": "1", "per_page": "50"})],
        json=page(1, others),
    )
    rsps.add(
        responses.GET,
        BACKUPS,
        match=[responses.matchers.query_param_matcher({"page": "2", "per_page": "50"})],
        json=page(2, [backup_item()]),
    )
    found = api.backup_find("1a7ce997", "final-42")
    assert found is not None
    assert found.uuid == UUID
    assert len(rsps.calls) == 2


def test_backup_name_is_checked_before_sending(api, rsps):
    with pytest.raises(ValueError, match=r"1\.\.191"):
        api.backup_create("1a7ce997", "x" * 192)
    assert len(rsps.calls) == 0


# --------------------------------------------------------------------------- the simulator


def _server(sim, sim_client, *, backups: int):
    seed = sim.seed
    egg = sim_client.get_egg(seed.minecraft_nest_id, seed.paper_egg_id)
    return sim_client.create_server(
        name="Backups",
        user_id=seed.admin_user_id,
        egg_id=egg.id,
        docker_image=egg.docker_images["Java 17"],
        startup=egg.startup,
        environment=egg.environment_with_defaults(),
        limits=Limits(memory=1024, swap=0, disk=4096, io=500, cpu=100),
        feature_limits=FeatureLimits(databases=0, allocations=1, backups=backups),
        allocation_id=sim_client.list_free_allocations(seed.eu_node_id)[0].id,
    ).resource


@pytest.fixture
def sim_api(sim, sim_rsps, clock) -> PterodactylClientAPI:
    return PterodactylClientAPI(
        PANEL, sim.seed.client_api_key, sleep=clock.sleep, random=lambda: 0.5, max_retry_after=5
    )


def test_simulator_backup_runs_and_completes_after_its_delay(sim, sim_client, sim_api, clock):
    sim.panel.backup_delay = 30
    server = _server(sim, sim_client, backups=2)
    clock.now += 3  # installed
    created = sim_api.backup_create(server.identifier, "final-7", is_locked=True)
    assert (created.name, created.is_locked, created.in_progress) == ("final-7", True, True)
    assert created.created_at is not None
    assert sim_api.backup_get(server.identifier, created.uuid).in_progress
    clock.now += 31
    done = sim_api.backup_get(server.identifier, created.uuid)
    assert done.is_successful
    assert not done.in_progress
    assert done.checksum is not None
    assert done.checksum.startswith("sha1:")
    assert done.bytes > 0
    assert sim_api.backup_find(server.identifier, "final-7") == done
    assert sim_api.backup_find(server.identifier, "final-8") is None


def test_simulator_limit_zero_is_the_panels_error(sim, sim_client, sim_api, clock):
    server = _server(sim, sim_client, backups=0)
    clock.now += 3
    with pytest.raises(PanelBadRequest) as caught:
        sim_api.backup_create(server.identifier, "final-7")
    assert caught.value.code == "TooManyBackupsException"
    assert caught.value.status == 400
    assert caught.value.detail == (
        "Cannot create a new backup, this server has reached its limit of 0 backups."
    )
    assert sim.panel.backups == {}


def test_simulator_limit_reached_and_throttle(sim, sim_client, sim_api, clock):
    server = _server(sim, sim_client, backups=1)
    clock.now += 3
    sim_api.backup_create(server.identifier, "one")
    with pytest.raises(PanelBadRequest, match="limit of 1 backups"):
        sim_api.backup_create(server.identifier, "two")
    # With room again, the throttle (2 backups per 600 s) is what stops the third.
    sim.panel.servers[server.id].backup_limit = 5
    sim_api.backup_create(server.identifier, "two")
    with pytest.raises(PanelRateLimited) as caught:
        sim_api.backup_create(server.identifier, "three")
    assert caught.value.code == "TooManyRequestsHttpException"
    assert caught.value.retry_after == 600.0
    assert len(sim.panel.backups) == 2


def test_simulator_refuses_backups_of_a_suspended_server(sim, sim_client, sim_api, clock):
    server = _server(sim, sim_client, backups=2)
    clock.now += 3
    sim_client.suspend_server(server.id)
    with pytest.raises(PanelConflict) as caught:
        sim_api.backup_create(server.identifier, "final-7")
    assert "suspended" in str(caught.value)
    assert caught.value.retryable is False
    sim_client.unsuspend_server(server.id)
    assert sim_api.backup_create(server.identifier, "final-7").in_progress


def test_simulator_validates_the_store_request(sim, sim_client, sim_api, clock, sim_rsps):
    import requests

    server = _server(sim, sim_client, backups=2)
    clock.now += 3
    response = requests.post(
        f"{PANEL}/api/client/servers/{server.identifier}/backups",
        headers={
            "Authorization": f"Bearer {sim.seed.client_api_key}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        },
        data=json.dumps({"name": "x" * 192, "is_locked": "maybe"}),
        timeout=5,
    )
    assert response.status_code == 422
    assert [(e["meta"]["source_field"], e["meta"]["rule"]) for e in response.json()["errors"]] == [
        ("name", "max"),
        ("is_locked", "boolean"),
    ]
    with pytest.raises(PanelValidationError):
        sim_api._t.request(
            "POST", f"/servers/{server.identifier}/backups", body={"ignored": ["not", "a string"]}
        )


def test_simulator_backup_of_another_server_is_not_found(sim, sim_client, sim_api, clock):
    first = _server(sim, sim_client, backups=2)
    second = _server(sim, sim_client, backups=2)
    clock.now += 3
    backup = sim_api.backup_create(first.identifier, "mine")
    with pytest.raises(PanelNotFound):
        sim_api.backup_get(second.identifier, backup.uuid)


def test_simulator_application_key_is_refused_on_backups(sim, sim_client, clock):
    from provisioning.pterodactyl import PanelPermissionError

    server = _server(sim, sim_client, backups=2)
    clock.now += 3
    wrong = PterodactylClientAPI(PANEL, sim.seed.admin_api_key, sleep=clock.sleep)
    with pytest.raises(PanelPermissionError):
        wrong.backup_create(server.identifier, "final-7")
    assert sim.panel.backups == {}


def test_simulator_deleting_the_server_removes_its_backups(sim, sim_client, sim_api, clock):
    server = _server(sim, sim_client, backups=2)
    clock.now += 3
    sim_api.backup_create(server.identifier, "final-7")
    sim_client.delete_server(server.id, force=True)
    assert sim.panel.backups == {}
