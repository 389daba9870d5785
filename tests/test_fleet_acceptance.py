"""Issue 8's "done when", end to end through `manage.py run_job` and the drain (Celery eager):
drift injected on the simulator is listed by a dry run, then repaired by a normal run; the
fleet share of the panel budget counts the fleet jobs' reads."""

from io import StringIO

from django.core.management import call_command

from common.models import JobRun
from provisioning.fleet.budget import fleet_panel_client, read_share_limiter
from provisioning.models import DriftItem, PanelOperation
from tests.test_fleet_drift import fleet  # noqa: F401 (fixture)


def _run(*args: str) -> str:
    out = StringIO()
    call_command("run_job", *args, stdout=out)
    return out.getvalue()


def test_drift_on_the_panel_is_listed_then_repaired_by_run_job(saga, fleet, settings):
    settings.RECONCILE_REPAIRS = ["suspension", "build"]
    panel = saga.panel
    suspended_there = fleet["suspended_there"]
    memory = fleet["memory"]
    deleted = fleet["deleted"]
    panel.servers[suspended_there.panel_server_id].status = "suspended"  # suspended by hand
    panel.servers[memory.panel_server_id].memory = 4096  # limits changed by hand
    del panel.servers[deleted.panel_server_id]  # deleted by hand

    listing = _run("reconcile", "--dry-run")

    assert "reconcile (dry run): succeeded" in listing
    for kind in ("suspended_there_active_here", "limits_mismatch", "missing_on_panel"):
        assert kind in listing
    assert not DriftItem.objects.exists()
    assert not PanelOperation.objects.exists()
    assert panel.servers[suspended_there.panel_server_id].status == "suspended"

    _run("reconcile")  # requests the repairs; the (eager) drain runs them after commit

    assert panel.servers[suspended_there.panel_server_id].status is None
    assert panel.servers[memory.panel_server_id].memory == memory.spec["limits"]["memory"]
    repairs = PanelOperation.objects.order_by("kind")
    assert [(op.kind, op.status, op.verified) for op in repairs] == [
        ("reapply_build", "succeeded", True),
        ("reapply_suspension", "succeeded", True),
    ]
    open_items = DriftItem.objects.filter(resolved_at__isnull=True)
    # A missing server cannot be re-created blindly: it stays listed for staff.
    assert list(open_items.values_list("kind", "deployment_id")) == [
        ("missing_on_panel", deleted.pk)
    ]
    assert DriftItem.objects.filter(resolved_at__isnull=False).count() == 2

    _run("reconcile")  # nothing new
    assert PanelOperation.objects.count() == 2
    assert list(JobRun.objects.values_list("status", flat=True)) == ["succeeded"] * 3


def test_fleet_reads_draw_on_their_share(saga, settings):
    settings.FLEET_READ_RATE_LIMIT_PER_MINUTE = 2
    client = fleet_panel_client()

    client.list_locations()
    client.list_locations()

    assert read_share_limiter().try_acquire() > 0  # the share is used up
    assert len(saga.calls("GET", "/api/application/locations")) == 2
