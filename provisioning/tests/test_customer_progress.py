"""The customer's setup progress (provisioning.progress) read from request/run/step rows."""

import datetime as dt

import pytest
from django.utils import timezone

from provisioning.models import (
    ProvisioningRequest,
    ProvisioningRequestStatus,
    ProvisioningRun,
    ProvisioningStepAttempt,
    RunStatus,
    StepAttemptStatus,
    StepDirection,
)
from provisioning.progress import setup_progress, setup_progress_for
from provisioning.saga.steps import STEP_NAMES
from servers.models import DeploymentStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployment(place_order):
    return place_order().deployment


def _request(deployment, status=ProvisioningRequestStatus.IN_PROGRESS):
    return ProvisioningRequest.objects.create(
        deployment=deployment, order_reference="ORD-1", requested_by="test", status=status
    )


def _run(deployment, *, step, status=RunStatus.RUNNING, attempt_status=StepAttemptStatus.RUNNING):
    now = timezone.now()
    run = ProvisioningRun.objects.create(
        request=deployment.provisioning_request,
        deployment=deployment,
        status=status,
        step_index=STEP_NAMES.index(step),
        deadline_at=now + dt.timedelta(hours=1),
        started_at=now,
        triggered_by="test",
        last_error="panel said: ptla_SECRETKEY at node 7 exploded",
    )
    ProvisioningStepAttempt.objects.create(
        run=run,
        step=step,
        direction=StepDirection.FORWARD,
        attempt=1,
        fence=1,
        status=attempt_status,
        started_at=now,
        error="Traceback: ptla_SECRETKEY",
        summary={"panel_user_id": 99},
    )
    return run


def test_not_paid_has_no_progress(deployment):
    assert setup_progress(deployment=deployment) is None


def test_queued_before_the_first_step(deployment):
    _request(deployment, status=ProvisioningRequestStatus.PENDING)
    progress = setup_progress(deployment=deployment)
    assert (progress.stage, progress.delayed, progress.moving) == ("queued", False, True)
    assert [s.state for s in progress.steps] == ["current", "todo", "todo", "todo", "todo"]


@pytest.mark.parametrize(
    ("step", "stage"),
    [
        ("check", "account"),
        ("panel_user", "account"),
        ("placement", "server"),
        ("server", "server"),
        ("install", "installing"),
    ],
)
def test_each_internal_step_maps_to_the_customers_words(deployment, step, stage):
    _request(deployment)
    deployment.status = DeploymentStatus.PROVISIONING
    deployment.save(update_fields=["status"])
    _run(deployment, step=step)
    progress = setup_progress(deployment=deployment)
    assert (progress.stage, progress.delayed, progress.moving) == (stage, False, True)
    assert str(progress.label) != ""
    assert [s.key for s in progress.steps if s.state == "current"] == [stage]


def test_a_retrying_step_says_delayed_and_keeps_moving(deployment):
    _request(deployment)
    _run(deployment, step="server", attempt_status=StepAttemptStatus.RETRYING)
    progress = setup_progress(deployment=deployment)
    assert (progress.stage, progress.delayed, progress.moving) == ("server", True, True)
    assert progress.label == "Delayed: we are on it"


def test_a_failed_setup_is_delayed_and_settled(deployment):
    _request(deployment, status=ProvisioningRequestStatus.FAILED)
    _run(
        deployment,
        step="install",
        status=RunStatus.FAILED,
        attempt_status=StepAttemptStatus.FAILED,
    )
    deployment.status = DeploymentStatus.FAILED
    deployment.save(update_fields=["status"])
    progress = setup_progress(deployment=deployment)
    assert (progress.delayed, progress.moving) == (True, False)
    text = repr(progress)
    assert "SECRET" not in text
    assert "exploded" not in text
    assert "99" not in text


def test_active_is_ready_without_reading_runs(deployment, django_assert_num_queries):
    deployment.status = DeploymentStatus.ACTIVE
    deployment.panel_server_id = 5
    deployment.save(update_fields=["status", "panel_server_id"])
    with django_assert_num_queries(0):
        progress = setup_progress(deployment=deployment)
    assert (progress.stage, progress.moving) == ("ready", False)
    assert all(s.state == "done" for s in progress.steps)


def test_terminated_shows_no_progress(deployment):
    _request(deployment, status=ProvisioningRequestStatus.SUCCEEDED)
    deployment.status = DeploymentStatus.TERMINATED
    deployment.save(update_fields=["status"])
    assert setup_progress(deployment=deployment) is None


def test_queries_do_not_grow_with_the_fleet(place_order, django_assert_max_num_queries):
    deployments = []
    for i in range(6):
        d = place_order(server_name=f"srv-{i}").deployment
        _request(d)
        _run(d, step="install" if i % 2 else "panel_user")
        deployments.append(d)
    with django_assert_max_num_queries(3):
        result = setup_progress_for(deployments=deployments)
    assert [result[d.pk].stage for d in deployments] == ["account", "installing"] * 3
