"""Explicit state machines: a transition table next to each model, one way to move."""

from collections.abc import Mapping
from typing import Any

from django.db import models

from common.actors import Actor
from common.errors import ConflictError


class TransitionTable:
    def __init__(self, name: str, allowed: Mapping[str, set[str]]) -> None:
        self.name = name
        self.allowed = {str(k): {str(v) for v in vs} for k, vs in allowed.items()}

    def can(self, from_status: str, to_status: str) -> bool:
        return str(to_status) in self.allowed.get(str(from_status), set())

    def check(self, from_status: str, to_status: str) -> None:
        if not self.can(from_status, to_status):
            raise ConflictError(
                f"{self.name} cannot go from '{from_status}' to '{to_status}'.",
                code="invalid_transition",
                extra={"from": str(from_status), "to": str(to_status)},
            )


def apply_transition(
    instance: models.Model,
    *,
    table: TransitionTable,
    to_status: str,
    actor: Actor,
    reason: str,
    event_model: type[models.Model],
    event_fk: str,
    extra_updates: Mapping[str, Any] | None = None,
    status_field: str = "status",
) -> models.Model:
    """Check the table, save the new status (and `extra_updates`), write the history row.

    The caller holds the row lock (select_for_update) inside a transaction.
    """
    from_status = getattr(instance, status_field)
    table.check(from_status, to_status)
    setattr(instance, status_field, to_status)
    update_fields = [status_field]
    for field, value in (extra_updates or {}).items():
        setattr(instance, field, value)
        update_fields.append(field)
    if hasattr(instance, "updated_at"):
        update_fields.append("updated_at")
    instance.full_clean(exclude=None, validate_unique=False, validate_constraints=False)
    instance.save(update_fields=update_fields)
    return event_model.objects.create(
        **{event_fk: instance},
        actor=actor.user,
        actor_label=actor.label,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
    )
