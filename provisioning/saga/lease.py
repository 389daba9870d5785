"""The lease a worker holds on a run while its step runs, renewed by a heartbeat thread.

The lease is short (PROVISIONING_STEP_LEASE), so the step of a killed worker is free again
within seconds; the sweeper (provisioning.services.provisioning_sweep) resumes such runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from provisioning.models import ProvisioningRun

logger = logging.getLogger(__name__)


def lease_seconds() -> int:
    return max(3, int(settings.PROVISIONING_STEP_LEASE))


class LeaseKeeper:
    """Renews the run's lease while its step runs (a daemon thread, its own DB connection).

    The update is fenced: once another worker took the run over (our lease had expired, or staff
    aborted), renewing stops. A row locked by someone else is skipped, never waited for."""

    def __init__(self, run_id: int, fence: int) -> None:
        self.run_id = run_id
        self.fence = fence
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-run-{run_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        interval = lease_seconds() / 3
        try:
            while not self._stop.wait(interval):
                if not self.renew():
                    return
        finally:
            connection.close()

    def renew(self) -> bool:
        """One renewal; False when the run is no longer ours to hold."""
        try:
            with transaction.atomic():
                mine = (
                    ProvisioningRun.objects.select_for_update(skip_locked=True)
                    .filter(pk=self.run_id, fence=self.fence)
                    .values_list("pk", flat=True)
                )
                if not list(mine):
                    return ProvisioningRun.objects.filter(pk=self.run_id, fence=self.fence).exists()
                ProvisioningRun.objects.filter(pk=self.run_id, fence=self.fence).update(
                    lease_expires_at=timezone.now() + dt.timedelta(seconds=lease_seconds())
                )
            return True
        except DatabaseError:
            logger.warning("run %s: lease renewal failed; trying again", self.run_id)
            return True
