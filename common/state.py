"""Explicit state machines: a transition table next to each model, one way to move."""

from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar, cast

from django.db import models

from common.actors import Actor
from common.errors import CommonErrorCode, ConflictError

EventT = TypeVar("EventT", bound=models.Model)


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
                code=CommonErrorCode.INVALID_TRANSITION,
                extra={"from": str(from_status), "to": str(to_status)},
            )


def apply_transition(
    instance: models.Model,
    *,
    table: TransitionTable,
    to_status: str,
    actor: Actor,
    reason: str,
    event_model: type[EventT],
    event_fk: str,
    extra_updates: Mapping[str, Any] | None = None,
    status_field: str = "status",
) -> EventT:
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
    return event_model._default_manager.create(
        **{event_fk: instance},
        actor=actor.user,
        actor_label=actor.label,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
    )


class StateMachine(Generic[EventT]):
    """One model's lifecycle: its transition table and its history (event) model.

    Services move rows and record history only through it, so a newcomer reads one object per
    model instead of repeating the table, the event model and its foreign key at every call.
    `event_model` may be a lazy "app_label.ModelName" string (tables are declared above the
    event model in models modules).
    """

    def __init__(
        self,
        *,
        table: TransitionTable,
        event_model: type[EventT] | str,
        event_fk: str,
        status_field: str = "status",
    ) -> None:
        self.table = table
        self._event_model = event_model
        self.event_fk = event_fk
        self.status_field = status_field

    @property
    def event_model(self) -> type[EventT]:
        if isinstance(self._event_model, str):
            from django.apps import apps

            # The app registry returns a plain model class for the label.
            self._event_model = cast(type[EventT], apps.get_model(self._event_model))
        return self._event_model

    def can(self, instance: models.Model, to_status: str) -> bool:
        return self.table.can(getattr(instance, self.status_field), to_status)

    def move(
        self,
        instance: models.Model,
        to_status: str,
        *,
        actor: Actor,
        reason: str,
        extra_updates: Mapping[str, Any] | None = None,
    ) -> EventT:
        """Check the table, save the new status (and `extra_updates`), write the history row.

        The caller holds the row lock (select_for_update) inside a transaction.
        """
        return apply_transition(
            instance,
            table=self.table,
            to_status=to_status,
            actor=actor,
            reason=reason,
            event_model=self.event_model,
            event_fk=self.event_fk,
            extra_updates=extra_updates,
            status_field=self.status_field,
        )

    def record_created(self, instance: models.Model, *, actor: Actor, reason: str) -> EventT:
        """The first history row of a new row: from nothing to its initial status."""
        return self._record(instance, "", actor=actor, reason=reason)

    def note(self, instance: models.Model, *, actor: Actor, reason: str) -> EventT:
        """A history row without a status change (a date moved, an operation audited)."""
        return self._record(
            instance, getattr(instance, self.status_field), actor=actor, reason=reason
        )

    def record_created_many(
        self, instances: Sequence[models.Model], *, actor: Actor, reason: str
    ) -> list[EventT]:
        """`record_created` for many new rows in one INSERT (e.g. a message's deliveries)."""
        rows = [self._row(i, "", actor=actor, reason=reason) for i in instances]
        return self.event_model._default_manager.bulk_create(rows)

    def unsaved_note(self, instance: models.Model, *, actor: Actor, reason: str) -> EventT:
        """`note`'s row, not yet saved: for services that write many with bulk_create."""
        return self._row(instance, getattr(instance, self.status_field), actor=actor, reason=reason)

    def _record(
        self, instance: models.Model, from_status: str, *, actor: Actor, reason: str
    ) -> EventT:
        row = self._row(instance, from_status, actor=actor, reason=reason)
        row.save(force_insert=True)
        return row

    def _row(
        self, instance: models.Model, from_status: str, *, actor: Actor, reason: str
    ) -> EventT:
        return self.event_model(
            **{self.event_fk: instance},
            actor=actor.user,
            actor_label=actor.label,
            from_status=from_status,
            to_status=getattr(instance, self.status_field),
            reason=reason[:2000],
        )
