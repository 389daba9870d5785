"""The staff provisioning API (/api/v1/provisioning/): provision, manual, tasks, task status,
retry, stats, failed list and dismissal; who may call what (401/403), unknown ids (404), bad
input (400 with extra.fields), states that refuse (409).

Rows are built directly for the lists and figures; the runs that really provision use the
panel simulator (`saga`, tests/conftest.py) and run to the end in-process.
"""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Order, OrderStatus
from billing.services.orders import order_cancel
from billing.services.payments import payment_record_manual
from common.actors import Actor
from notifications.models import Delivery
from provisioning.models import (
    ProvisioningRequest,
    ProvisioningRequestEvent,
    ProvisioningRequestStatus,
    ProvisioningRun,
    ProvisioningStepAttempt,
    RunStatus,
    StepAttemptStatus,
    StepDirection,
)
from provisioning.saga.steps import STEP_NAMES
from servers.models import Deployment, DeploymentEvent, DeploymentStatus, Node
from tests.conftest import saga  # noqa: F401  (the panel simulator world, for real runs)
from tests.support import panel_server_made_by_hand

BASE = "/api/v1/provisioning/"

READS = [("get", "tasks/"), ("get", "tasks/{run}/"), ("get", "stats/"), ("get", "failed/")]
WRITES = [
    ("post", "provision/"),
    ("post", "manual/"),
    ("post", "retry/{run}/"),
    ("delete", "failed/"),
]


def pay(order: Order, staff) -> Order:
    payment_record_manual(
        invoice_id=order.invoices.get().pk, reference=f"REF-{order.pk}", actor=Actor.staff(staff)
    )
    order.refresh_from_db()
    return order


def make_run(
    deployment: Deployment,
    *,
    status: str = RunStatus.FAILED,
    started_at: dt.datetime | None = None,
    duration: dt.timedelta | None = None,
    node: Node | None = None,
) -> ProvisioningRun:
    """A run row (and the deployment's request, once): no panel involved."""
    request, _ = ProvisioningRequest.objects.get_or_create(
        deployment=deployment,
        defaults={"order_reference": f"Order #{deployment.order.pk}", "requested_by": "test"},
    )
    started_at = started_at or timezone.now() - dt.timedelta(minutes=10)
    finished = status not in (RunStatus.RUNNING, RunStatus.COMPENSATING)
    run = ProvisioningRun.objects.create(
        request=request,
        deployment=deployment,
        status=status,
        step_index=2,
        started_at=started_at,
        deadline_at=started_at + dt.timedelta(hours=1),
        finished_at=started_at + (duration or dt.timedelta(seconds=30)) if finished else None,
        triggered_by="test",
        node=node,
        failed_step=STEP_NAMES[2] if status == RunStatus.FAILED else "",
        last_error="panel refused: HTTP 400" if status == RunStatus.FAILED else "",
    )
    ProvisioningStepAttempt.objects.create(
        run=run,
        step=STEP_NAMES[0],
        direction=StepDirection.FORWARD,
        attempt=1,
        fence=1,
        status=StepAttemptStatus.SUCCEEDED,
        started_at=started_at,
        finished_at=started_at + dt.timedelta(milliseconds=250),
        duration_ms=250,
        summary={"panel_user_id": 7},
    )
    return run


@pytest.fixture
def no_auto_provisioning(settings):
    settings.PROVISIONING_ENABLED = False


@pytest.fixture
def deployments(db, place_order, customer, other_customer):
    return {
        "alice": place_order().deployment,
        "alice_silver": place_order(plan_slug="silver").deployment,
        "mallory": place_order(customer=other_customer).deployment,
    }


@pytest.fixture
def failed_run(deployments):
    return make_run(deployments["alice"], status=RunStatus.FAILED)


def call(client, method: str, path: str, data=None):
    return getattr(client, method)(BASE + path, data, format="json")


# --- Who may call ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), READS + WRITES)
def test_anonymous_callers_are_401(api_client, failed_run, method, path):
    response = call(api_client, method, path.format(run=failed_run.pk), {})
    assert response.status_code == 401
    assert set(response.json()) == {"message", "code", "extra"}


@pytest.mark.parametrize(("method", "path"), READS + WRITES)
def test_customer_tokens_are_403(token_api, customer, failed_run, method, path):
    client = token_api(customer, "read", "write")
    response = call(client, method, path.format(run=failed_run.pk), {})
    assert response.status_code == 403
    assert ProvisioningRun.objects.count() == 1


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_read_only_staff_tokens_cannot_write(token_api, staff, failed_run, method, path):
    client = token_api(staff, "read")
    body = {"order_id": failed_run.deployment.order.pk, "panel_server_id": 1}
    response = call(client, method, path.format(run=failed_run.pk), body)
    assert response.status_code == 403
    assert "provisioning" in response.json()["message"]
    failed_run.refresh_from_db()
    assert (failed_run.status, failed_run.dismissed_at) == (RunStatus.FAILED, None)
    assert ProvisioningRun.objects.count() == 1


@pytest.mark.parametrize(("method", "path"), READS)
def test_read_only_staff_tokens_read(token_api, staff, failed_run, method, path):
    response = call(token_api(staff, "read"), method, path.format(run=failed_run.pk))
    assert response.status_code == 200


# --- Tasks ----------------------------------------------------------------------------------


def test_tasks_list_filters_and_pages(token_api, staff, deployments, customer, other_customer):
    node = Node.objects.order_by("pk").first()
    now = timezone.now()
    old = make_run(deployments["alice"], status=RunStatus.FAILED, started_at=now - dt.timedelta(3))
    newer = make_run(deployments["alice"], status=RunStatus.SUCCEEDED, node=node)
    silver = make_run(deployments["alice_silver"], status=RunStatus.RUNNING)
    theirs = make_run(deployments["mallory"], status=RunStatus.NEEDS_ATTENTION)
    client = token_api(staff, "read")

    def ids(query: str) -> list[int]:
        response = client.get(BASE + "tasks/?" + query)
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids("") == [theirs.pk, silver.pk, newer.pk, old.pk]
    assert ids("status=failed") == [old.pk]
    assert ids(f"customer={customer.pk}") == [silver.pk, newer.pk, old.pk]
    assert ids(f"customer={other_customer.email.upper()}") == [theirs.pk]
    assert ids("plan=silver") == [silver.pk]
    assert ids(f"node={node.panel_id}") == [newer.pk]
    assert ids(f"node={node.name}") == [newer.pk]
    started_after = (now - dt.timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert ids(f"started_after={started_after}") == [theirs.pk, silver.pk, newer.pk]
    assert ids(f"started_before={started_after}") == [old.pk]

    page = client.get(BASE + "tasks/?page_size=2&page=2").json()
    assert page["count"] == 4
    assert [row["id"] for row in page["results"]] == [newer.pk, old.pk]
    assert page["next"] is None
    assert page["previous"]
    row = page["results"][0]
    assert row["customer"] == {"id": customer.pk, "email": customer.email}
    assert row["node"] == {"id": node.pk, "panel_id": node.panel_id, "name": node.name}
    assert row["plan"] == "bronze"
    assert row["order_reference"] == f"Order #{deployments['alice'].order.pk}"
    assert row["step"] == STEP_NAMES[2]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=exploded", "status"),
        ("started_after=yesterday", "started_after"),
        ("created_before=2026-13-01", "created_before"),
        ("deployment=0", "deployment"),
    ],
)
def test_tasks_list_bad_filters_are_400(token_api, staff, failed_run, query, field):
    response = token_api(staff, "read").get(BASE + "tasks/?" + query)
    assert response.status_code == 400
    assert field in response.json()["extra"]["fields"]


def test_task_detail_shows_the_steps_redacted(token_api, staff, failed_run):
    response = token_api(staff, "read").get(BASE + f"tasks/{failed_run.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == failed_run.pk
    assert body["status"] == "failed"
    assert body["failed_step"] == STEP_NAMES[2]
    [step] = body["steps"]
    assert step["step"] == STEP_NAMES[0]
    assert step["direction"] == "forward"
    assert step["attempt"] == 1
    assert step["status"] == "succeeded"
    assert step["duration_ms"] == 250
    assert step["summary"] == {"panel_user_id": 7}
    assert step["finished_at"] is not None
    assert "password" not in response.content.decode().lower()


def test_unknown_task_is_404(token_api, staff, db):
    response = token_api(staff, "read").get(BASE + "tasks/999999/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- Stats ----------------------------------------------------------------------------------


def test_stats_counts_and_time_to_active(staff_api, deployments, no_auto_provisioning):
    now = timezone.now()
    for seconds in (10, 20, 30, 40, 50):
        make_run(
            deployments["alice"],
            status=RunStatus.SUCCEEDED,
            started_at=now - dt.timedelta(hours=1),
            duration=dt.timedelta(seconds=seconds),
        )
    make_run(  # 3 days ago: in the 7 days only
        deployments["alice"],
        status=RunStatus.SUCCEEDED,
        started_at=now - dt.timedelta(days=3),
        duration=dt.timedelta(seconds=1000),
    )
    make_run(deployments["alice_silver"], status=RunStatus.FAILED)
    dismissed = make_run(deployments["alice_silver"], status=RunStatus.FAILED)
    ProvisioningRun.objects.filter(pk=dismissed.pk).update(dismissed_at=now)
    make_run(deployments["mallory"], status=RunStatus.RUNNING)
    ProvisioningRequest.objects.filter(deployment=deployments["mallory"]).update(
        status=ProvisioningRequestStatus.IN_PROGRESS
    )

    body = staff_api.get(BASE + "stats/").json()

    assert body["queue"] == {
        "depth": 2,
        "queued": 2,  # alice's and silver's requests: pending (automatic, as make_run writes)
        "waiting_capacity": 0,
        "waiting_manual": 0,
        "running": 1,
        "compensating": 0,
    }
    assert body["failed"] == 1
    assert body["needs_attention"] == 0
    day = body["last_24h"]
    assert (day["started"], day["succeeded"], day["failed"]) == (8, 5, 2)
    assert day["time_to_active"]["from_run_start"] == {"p50_seconds": 30.0, "p95_seconds": 48.0}
    week = body["last_7d"]
    assert (week["started"], week["succeeded"]) == (9, 6)
    assert week["time_to_active"]["from_run_start"]["p50_seconds"] == 35.0
    assert week["time_to_active"]["from_paid"]["p50_seconds"] is not None


def test_stats_take_a_constant_number_of_queries(staff_api, deployments):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff_api.get(BASE + "stats/").status_code == 200
        return len(captured)

    make_run(deployments["alice"], status=RunStatus.SUCCEEDED)
    queries()  # the token's first use records it (once a minute)
    few = queries()
    for _ in range(20):
        make_run(deployments["alice_silver"], status=RunStatus.SUCCEEDED)
        make_run(deployments["mallory"], status=RunStatus.FAILED)
    assert queries() == few
    assert few <= 4


# --- Failed list and dismissal --------------------------------------------------------------


def test_failed_list_and_dismissal_keeps_history(token_api, staff, deployments):
    failed = make_run(deployments["alice"], status=RunStatus.FAILED)
    stuck = make_run(deployments["alice_silver"], status=RunStatus.NEEDS_ATTENTION)
    other = make_run(deployments["mallory"], status=RunStatus.FAILED)
    make_run(deployments["alice"], status=RunStatus.SUCCEEDED)
    client = token_api(staff, "read", "provisioning")

    listed = client.get(BASE + "failed/").json()
    assert [row["id"] for row in listed["results"]] == [other.pk, stuck.pk, failed.pk]

    response = client.delete(BASE + "failed/", {"ids": [failed.pk]}, format="json")
    assert response.status_code == 200
    assert response.json() == {"dismissed": 1}
    failed.refresh_from_db()
    assert failed.dismissed_at is not None
    assert failed.dismissed_by == f"staff:{staff.username} (token {client.token.prefix})"
    assert failed.status == RunStatus.FAILED  # history unchanged

    response = client.delete(BASE + f"failed/?ids={stuck.pk}")
    assert response.json() == {"dismissed": 1}
    assert client.delete(BASE + "failed/").json() == {"dismissed": 1}  # the rest: `other`
    assert client.delete(BASE + "failed/").json() == {"dismissed": 0}
    assert client.get(BASE + "failed/").json()["count"] == 0
    assert ProvisioningRun.objects.count() == 4
    assert ProvisioningStepAttempt.objects.count() == 4
    assert client.get(BASE + f"tasks/{failed.pk}/").json()["dismissed_by"]


@pytest.mark.parametrize("body", [{"ids": []}, {"ids": ["x"]}, {"ids": [0]}, {"ids": "1"}], ids=str)
def test_dismiss_bad_ids_are_400(token_api, staff, failed_run, body):
    response = token_api(staff, "provisioning").delete(BASE + "failed/", body, format="json")
    assert response.status_code == 400
    assert "ids" in response.json()["extra"]["fields"]
    failed_run.refresh_from_db()
    assert failed_run.dismissed_at is None


# --- Retry ----------------------------------------------------------------------------------


def test_retry_refuses_runs_that_are_not_the_failed_latest(token_api, staff, deployments):
    old = make_run(deployments["alice"], status=RunStatus.FAILED)
    latest = make_run(deployments["alice"], status=RunStatus.SUCCEEDED)
    client = token_api(staff, "provisioning")

    for run in (old, latest):
        response = client.post(BASE + f"retry/{run.pk}/", {}, format="json")
        assert response.status_code == 409
        assert response.json()["code"] == "not_retryable"
    assert client.post(BASE + "retry/999999/", {}, format="json").status_code == 404
    assert ProvisioningRun.objects.count() == 2


@pytest.mark.parametrize("from_step", ["nonsense", "99", ""])
def test_retry_bad_step_is_400(token_api, staff, failed_run, from_step):
    response = token_api(staff, "provisioning").post(
        BASE + f"retry/{failed_run.pk}/", {"from_step": from_step}, format="json"
    )
    assert response.status_code == 400
    assert "from_step" in response.json()["extra"]["fields"]
    assert ProvisioningRun.objects.count() == 1


def test_retry_from_a_later_step_needs_a_stuck_run(token_api, staff, failed_run):
    ProvisioningRequest.objects.filter(pk=failed_run.request_id).update(
        status=ProvisioningRequestStatus.FAILED
    )
    response = token_api(staff, "provisioning").post(
        BASE + f"retry/{failed_run.pk}/", {"from_step": STEP_NAMES[3]}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "cannot_resume"


# --- Provision ------------------------------------------------------------------------------


def test_provision_starts_a_paid_order_once(token_api, staff, place_order, no_auto_provisioning):
    order = pay(place_order(), staff)
    request = ProvisioningRequest.objects.get(deployment=order.deployment)
    assert (request.status, request.automatic) == (ProvisioningRequestStatus.PENDING, False)
    client = token_api(staff, "provisioning")

    first = client.post(BASE + "provision/", {"order_id": order.pk}, format="json")
    assert first.status_code == 202, first.json()
    body = first.json()
    assert body["started"] is True
    assert body["request_status"] == "in_progress"
    assert body["run"]["status"] == "running"
    assert body["run"]["triggered_by"] == f"staff:{staff.username} (token {client.token.prefix})"

    again = client.post(BASE + "provision/", {"order_id": order.pk}, format="json")
    assert again.status_code == 200
    assert again.json()["started"] is False
    assert again.json()["run"]["id"] == body["run"]["id"]
    assert ProvisioningRun.objects.count() == 1


def test_provision_refuses_unpaid_cancelled_and_unknown_orders(
    token_api, staff, customer, place_order, no_auto_provisioning
):
    unpaid = place_order()
    cancelled = place_order()
    order_cancel(order_id=cancelled.pk, actor=Actor.customer(customer), reason="test")
    client = token_api(staff, "provisioning")

    response = client.post(BASE + "provision/", {"order_id": unpaid.pk}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "order_not_paid"
    response = client.post(BASE + "provision/", {"order_id": cancelled.pk}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "order_cancelled"
    assert client.post(BASE + "provision/", {"order_id": 999999}, format="json").status_code == 404
    assert ProvisioningRequest.objects.count() == 0
    assert ProvisioningRun.objects.count() == 0


@pytest.mark.parametrize("body", [{}, {"order_id": "x"}, {"order_id": 0}, {"order_id": 2**64}])
def test_provision_bad_payloads_are_400(token_api, staff, db, body):
    response = token_api(staff, "provisioning").post(BASE + "provision/", body, format="json")
    assert response.status_code == 400
    assert "order_id" in response.json()["extra"]["fields"]


@pytest.mark.parametrize(
    "body",
    [{}, {"order_id": 1}, {"order_id": 1, "panel_server_id": -1}, {"panel_server_id": 1}],
    ids=str,
)
def test_manual_bad_payloads_are_400(token_api, staff, db, body):
    response = token_api(staff, "provisioning").post(BASE + "manual/", body, format="json")
    assert response.status_code == 400
    assert response.json()["extra"]["fields"]


def test_manual_refuses_an_unpaid_order(token_api, staff, place_order, no_auto_provisioning):
    order = place_order()
    client = token_api(staff, "provisioning")
    body = {"order_id": order.pk, "panel_server_id": 1}
    response = client.post(BASE + "manual/", body, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "order_not_paid"
    body["order_id"] = 999999
    assert client.post(BASE + "manual/", body, format="json").status_code == 404


# --- Real runs on the panel simulator -------------------------------------------------------


def test_provision_after_success_returns_the_run_and_no_second_server(
    saga,
    token_api,
    staff,
    place_order,
):
    order = pay(place_order(), staff)
    assert order.status == OrderStatus.COMPLETED
    run = ProvisioningRun.objects.get()
    client = token_api(staff, "provisioning")

    response = client.post(BASE + "provision/", {"order_id": order.pk}, format="json")

    assert response.status_code == 200
    assert response.json()["run"]["id"] == run.pk
    assert response.json()["run"]["status"] == "succeeded"
    assert ProvisioningRun.objects.count() == 1
    assert len(saga.panel.servers) == 1


def test_failed_run_is_listed_then_retried_to_active(
    saga,
    token_api,
    staff,
    place_order,
):
    saga.fault("status", method="POST", path=r"/servers$", status=400, times=1)
    order = pay(place_order(), staff)
    failed = ProvisioningRun.objects.get()
    assert failed.status == RunStatus.FAILED
    client = token_api(staff, "read", "provisioning")
    assert [r["id"] for r in client.get(BASE + "failed/").json()["results"]] == [failed.pk]
    stats = client.get(BASE + "stats/").json()
    assert (stats["failed"], stats["last_24h"]["failed"]) == (1, 1)

    response = client.post(BASE + f"retry/{failed.pk}/", {"from_step": "0"}, format="json")

    assert response.status_code == 202, response.json()
    retried = ProvisioningRun.objects.get(pk=response.json()["id"])
    assert retried.pk != failed.pk
    assert retried.status == RunStatus.SUCCEEDED
    assert retried.triggered_by == f"staff:{staff.username} (token {client.token.prefix})"
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert len(saga.panel.servers) == 1
    detail = client.get(BASE + f"tasks/{retried.pk}/").json()
    assert [s["step"] for s in detail["steps"] if s["direction"] == "forward"][:1] == [
        STEP_NAMES[0]
    ]
    stats = client.get(BASE + "stats/").json()
    assert stats["last_24h"]["succeeded"] == 1
    assert stats["last_24h"]["time_to_active"]["from_run_start"]["p50_seconds"] >= 0
    # The retried failure is still on the failed list until dismissed (history is kept).
    assert client.get(BASE + "failed/").json()["count"] == 1


def test_manual_links_a_hand_made_server(
    saga,
    settings,
    token_api,
    staff,
    place_order,
):
    settings.PROVISIONING_ENABLED = False
    order = pay(place_order(), staff)
    second = pay(place_order(), staff)
    panel_server_id = panel_server_made_by_hand(saga.sim.seed, "made by hand").id
    panel_server = saga.panel.servers[panel_server_id]
    client = token_api(staff, "provisioning")

    read_only = token_api(staff, "read").post(
        BASE + "manual/", {"order_id": order.pk, "panel_server_id": panel_server_id}, format="json"
    )
    assert read_only.status_code == 403
    response = client.post(
        BASE + "manual/",
        {"order_id": order.pk, "panel_server_id": panel_server_id, "note": "ticket 42"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    deployment = Deployment.objects.get(pk=order.deployment_id)
    assert deployment.status == DeploymentStatus.ACTIVE
    assert deployment.panel_server_id == panel_server_id
    assert deployment.panel_server_uuid == panel_server.uuid
    assert deployment.panel_identifier == panel_server.uuid_short
    assert deployment.node.panel_id == saga.sim.seed.eu_node_id
    assert deployment.connection_address
    assert response.json()["port"] == deployment.port
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    request = ProvisioningRequest.objects.get(deployment=deployment)
    assert request.status == ProvisioningRequestStatus.SUCCEEDED
    actor = f"staff:{staff.username} (token {client.token.prefix})"
    event = DeploymentEvent.objects.get(
        deployment=deployment, from_status=DeploymentStatus.PROVISIONING, to_status="active"
    )
    assert (event.actor, event.actor_label) == (staff, actor)
    assert "ticket 42" in event.reason
    assert list(
        ProvisioningRequestEvent.objects.filter(request=request, actor_label=actor)
        .order_by("pk")
        .values_list("to_status", flat=True)
    ) == [ProvisioningRequestStatus.IN_PROGRESS, ProvisioningRequestStatus.SUCCEEDED]
    # The customer is told, as after the saga; the server belongs to another panel user, so
    # no panel login of ours is offered for it.
    ready = Delivery.objects.get(event="server_ready", user=order.customer, channel="email")
    assert ready.context["server_address"] == deployment.connection_address
    assert ready.context["panel_username"] == ""
    assert ready.context["panel_login_from_staff"] is True
    assert "the panel account our team set up for this server" in ready.body
    assert "Password:" not in ready.body

    # The same panel server for another order: refused, nothing changed.
    taken = client.post(
        BASE + "manual/", {"order_id": second.pk, "panel_server_id": panel_server_id}, format="json"
    )
    assert taken.status_code == 409
    assert taken.json()["code"] == "panel_server_linked"
    # Linking again the provisioned order: refused.
    again = client.post(
        BASE + "manual/", {"order_id": order.pk, "panel_server_id": panel_server_id}, format="json"
    )
    assert again.status_code == 409
    # A panel server that does not exist.
    missing = client.post(
        BASE + "manual/", {"order_id": second.pk, "panel_server_id": 99999}, format="json"
    )
    assert missing.status_code == 404
    second_deployment = Deployment.objects.get(pk=second.deployment_id)
    assert (second_deployment.status, second_deployment.panel_server_id) == (
        DeploymentStatus.PENDING,
        None,
    )
    assert ProvisioningRun.objects.count() == 0
    assert len(saga.panel.servers) == 1
