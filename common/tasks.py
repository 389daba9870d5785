from celery import shared_task

from common.jobs import job_run
from common.services import worker_heartbeat_record


@shared_task(name="common.worker_heartbeat")
def worker_heartbeat(queue: str = "default") -> None:
    """Proves a worker consumes `queue`: the admin shows the last time it did."""
    worker_heartbeat_record(queue=queue)


# A fleet read at 100k servers walks 1,000 pages inside the fleet share of the panel budget:
# minutes, not the default 2-minute task limit. The advisory lock dies with a killed task.
@shared_task(name="common.run_job", soft_time_limit=3300, time_limit=3600)
def run_job(name: str, dry_run: bool = False) -> dict:
    """Beat's entry to the fleet jobs: the same code as `manage.py run_job NAME`."""
    report = job_run(name=name, dry_run=dry_run, triggered_by="beat")
    return {"status": report.status, **report.counts}
