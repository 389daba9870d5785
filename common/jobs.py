"""Fleet jobs: one entry point per scheduled job, shared by beat and by people.

`job_run(name=..., dry_run=..., triggered_by=...)` runs one job once, synchronously, under a lock
that makes overlapping runs (two beat processes, a manual run during a scheduled one) harmless:
the second run records itself as "skipped" and does nothing. The jobs themselves are also safe to
run twice (constraints make a second pass a no-op), so the lock is about wasted work and clear
reports, not about correctness.

On PostgreSQL the lock is a session advisory lock: it dies with the connection, so a job killed
halfway never blocks the next run. Elsewhere (the SQLite demo) it is a lease row with an expiry.
"""

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from common.errors import ApplicationError, CommonErrorCode
from common.logging import redact
from common.models import JobLease, JobRun, JobRunStatus

logger = logging.getLogger(__name__)

JobResult = dict[str, int | str]
JobFunction = Callable[..., JobResult]


class UnknownJob(ApplicationError):
    default_code = CommonErrorCode.UNKNOWN_JOB
    http_status = 404


@dataclass
class JobReport:
    name: str
    status: str
    dry_run: bool
    counts: JobResult = field(default_factory=dict)
    duration_ms: int = 0
    error: str = ""
    run_id: int | None = None

    def headline(self) -> str:
        mode = " (dry run)" if self.dry_run else ""
        text = f"{self.name}{mode}: {self.status} in {self.duration_ms / 1000:.2f} s"
        return f"{text}; error: {self.error}" if self.error else text

    def summary(self) -> str:
        # Long texts (a dry run's listing) are printed on their own lines, not in the summary.
        short = {k: v for k, v in self.counts.items() if not isinstance(v, str) or len(v) <= 60}
        counts = ", ".join(f"{key}={value}" for key, value in short.items()) or "-"
        mode = " (dry run)" if self.dry_run else ""
        text = f"{self.name}{mode}: {self.status} in {self.duration_ms / 1000:.2f} s; {counts}"
        return f"{text}; error: {self.error}" if self.error else text


def job_names() -> list[str]:
    return list(settings.FLEET_JOBS)


def job_function(name: str) -> JobFunction:
    try:
        path = settings.FLEET_JOBS[name]
    except KeyError:
        raise UnknownJob(
            f"No job named {name!r}; jobs: {', '.join(job_names())}.",
            code=CommonErrorCode.UNKNOWN_JOB,
        ) from None
    return import_string(path)


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key per job name for pg_try_advisory_lock."""
    digest = hashlib.sha256(f"fleet-job:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def job_lock(name: str, *, lease_seconds: int | None = None) -> Iterator[bool]:
    """Yield True when this process holds the job's lock, False when another run holds it.
    `lease_seconds`: how long the lease row holds where there are no advisory locks."""
    if connection.vendor == "postgresql":
        key = _lock_key(name)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            held = bool(cursor.fetchone()[0])
        try:
            yield held
        finally:
            if held:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    holder = uuid.uuid4().hex
    held = _lease_take(name, holder, lease_seconds or settings.FLEET_JOB_LEASE_SECONDS)
    try:
        yield held
    finally:
        if held:
            JobLease.objects.filter(name=name, holder=holder).update(
                holder="", expires_at=timezone.now()
            )


def _lease_take(name: str, holder: str, lease_seconds: int) -> bool:
    now = timezone.now()
    expires = now + timedelta(seconds=lease_seconds)
    try:
        with transaction.atomic():
            JobLease.objects.get_or_create(name=name, defaults={"expires_at": now, "holder": ""})
    except IntegrityError:
        pass  # created by a concurrent run
    taken = JobLease.objects.filter(name=name, expires_at__lte=now).update(
        holder=holder, expires_at=expires
    )
    return taken == 1


def job_run(*, name: str, dry_run: bool = False, triggered_by: str = "beat") -> JobReport:
    """Run job `name` once, now, and record the run (JobRun). Never raises for a job failure:
    the report says what went wrong (beat and the command both show it)."""
    function = job_function(name)
    started = timezone.now()
    clock = time.monotonic()
    with job_lock(name) as held:
        run = JobRun.objects.create(
            name=name,
            dry_run=dry_run,
            triggered_by=triggered_by[:200],
            started_at=started,
            status=JobRunStatus.RUNNING if held else JobRunStatus.SKIPPED,
        )
        if not held:
            run.finished_at, run.duration_ms = timezone.now(), 0
            run.save(update_fields=["finished_at", "duration_ms"])
            logger.info("job %s skipped: another run holds its lock", name)
            return JobReport(name, JobRunStatus.SKIPPED, dry_run, run_id=run.pk)
        # We hold the lock, so no other run of this job is alive: one still "running" was
        # killed (its batches committed so far stay; this run does the rest).
        JobRun.objects.filter(name=name, status=JobRunStatus.RUNNING).exclude(pk=run.pk).update(
            status=JobRunStatus.FAILED,
            finished_at=timezone.now(),
            error=f"interrupted: the process ended before the run finished (run #{run.pk} "
            "took over)",
        )
        status, counts, error = JobRunStatus.SUCCEEDED, {}, ""
        try:
            counts = dict(function(dry_run=dry_run) or {})
        except Exception as exc:
            status = JobRunStatus.FAILED
            error = redact(f"{type(exc).__name__}: {exc}")[:2000]
            logger.exception("job %s failed", name)
        duration_ms = int((time.monotonic() - clock) * 1000)
        JobRun.objects.filter(pk=run.pk).update(
            status=status,
            finished_at=timezone.now(),
            duration_ms=duration_ms,
            counts=counts,
            error=error,
        )
    report = JobReport(name, status, dry_run, counts, duration_ms, error, run.pk)
    logger.info("job %s", report.summary())
    return report
