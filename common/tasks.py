from celery import shared_task

from common.jobs import job_run
from common.services import worker_heartbeat_record


@shared_task(name="common.worker_heartbeat")
def worker_heartbeat(queue: str = "default") -> None:
    """Proves a worker consumes `queue`: the admin shows the last time it did."""
    worker_heartbeat_record(queue=queue)


@shared_task(name="common.run_job")
def run_job(name: str, dry_run: bool = False) -> dict:
    """Beat's entry to the fleet jobs: the same code as `manage.py run_job NAME`."""
    report = job_run(name=name, dry_run=dry_run, triggered_by="beat")
    return {"status": report.status, **report.counts}
