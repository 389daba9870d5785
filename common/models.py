"""Shared model bases and the portal's own operational records."""

from django.conf import settings
from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class StatusEvent(models.Model):
    """One row per state change: who or what did it, from and to which status, why, when.

    Concrete subclasses add the foreign key to the object whose history this is.
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who/what acted, readable even after the user is deleted: "staff:alice", "system:beat",
    # "stripe:evt_123", "customer:bob@example.com".
    actor_label = models.CharField(max_length=200)
    from_status = models.CharField(max_length=32, blank=True)
    to_status = models.CharField(max_length=32)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        abstract = True
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status} by {self.actor_label}"


class WorkerHeartbeat(models.Model):
    """Last time a Celery worker consumed a task from a queue (proves the broker works)."""

    queue = models.CharField(max_length=50, unique=True)
    hostname = models.CharField(max_length=200, blank=True)
    last_seen_at = models.DateTimeField()
    beats = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.queue} @ {self.last_seen_at:%Y-%m-%d %H:%M:%S}"
