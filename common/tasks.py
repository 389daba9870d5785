from celery import shared_task

from common.services import worker_heartbeat_record


@shared_task(name="common.worker_heartbeat")
def worker_heartbeat(queue: str = "default") -> None:
    """Proves a worker consumes `queue`: the admin shows the last time it did."""
    worker_heartbeat_record(queue=queue)
