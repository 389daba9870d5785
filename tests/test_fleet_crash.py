"""A renewal job SIGKILLed halfway (a real `manage.py run_job` process): the next run finishes
the work, nothing is invoiced twice, the numbers stay gap-free, and the killed run is marked
interrupted."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from billing.models import Invoice, InvoiceKind
from common.dates import billing_today
from common.jobs import job_run
from common.models import JobRun, JobRunStatus
from tests.fleet import fleet_seed
from tests.support import subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(django_settings.BASE_DIR)
COUNT = 6000


def test_renewal_job_killed_halfway_is_finished_by_the_next_run(catalog, settings):
    if connection.vendor != "postgresql":
        pytest.skip("the job subprocess needs the shared PostgreSQL test database")
    import datetime as dt

    fleet_seed(count=COUNT, next_due_date=billing_today() + dt.timedelta(days=2))
    env = {
        **subprocess_env(),
        "TEST_CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "FLEET_BATCH_SIZE": "100",  # many small batches: the kill lands between commits
    }
    job = subprocess.Popen(
        [sys.executable, "manage.py", "run_job", "renewals"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    invoices = Invoice.objects.filter(kind=InvoiceKind.RENEWAL)
    try:
        deadline = time.monotonic() + 60
        while invoices.count() < 300 and time.monotonic() < deadline and job.poll() is None:
            time.sleep(0.02)
        job.send_signal(signal.SIGKILL)
    finally:
        job.wait(timeout=30)
    # A COMMIT the job sent just before the kill may still complete on its server backend:
    # count only once that backend is gone (other xdist workers use other databases).
    _wait_for_other_connections_to_close()
    issued_before = invoices.count()
    assert 0 < issued_before < COUNT, "the kill must land halfway"

    report = job_run(name="renewals", triggered_by="test")  # the lock died with the process

    assert report.status == JobRunStatus.SUCCEEDED
    assert report.counts["invoices"] == COUNT - issued_before
    assert invoices.count() == COUNT
    assert invoices.values("deployment_id").distinct().count() == COUNT
    year = billing_today().year
    numbers = sorted(invoices.values_list("number", flat=True))
    assert numbers == [f"INV-{year}-{n:06d}" for n in range(1, COUNT + 1)]
    killed = JobRun.objects.exclude(pk=report.run_id).get()
    assert killed.status == JobRunStatus.FAILED
    assert killed.error.startswith("interrupted")


def _wait_for_other_connections_to_close(timeout: float = 15.0) -> None:
    from django.db import connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)
