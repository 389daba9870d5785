"""Set-based inserts for the fleet jobs: PostgreSQL COPY, one statement per table and batch.

Measured here (docs/adr/0007): writing 100k invoice rows took 4.2 s with bulk_create, most of it
building model instances and one enormous parameterised INSERT, and 0.8 s with COPY. The fleet
jobs write five tables per batch (invoices, lines, history, deliveries, their history), so they
COPY plain tuples. Rows are given as dicts of attnames; every other column takes the field's
default, as `Model.objects.create` would. Elsewhere (the SQLite demo) the same calls fall back to
bulk_create, which is plenty at demo scale.

`copy_insert` is for rows that cannot conflict (the caller holds the locks that make them new);
`copy_insert_ignore_conflicts` stages the rows in a temporary table and moves them with
INSERT .. SELECT .. ON CONFLICT DO NOTHING RETURNING id, so a concurrent writer of the same
unique key wins once and the caller learns exactly which rows were its own.
"""

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, models, transaction
from django.db.models.fields import NOT_PROVIDED
from django.utils import timezone


def _columns(model: type[models.Model], *, with_pk: bool) -> list[models.Field]:
    return [field for field in model._meta.concrete_fields if with_pk or not field.primary_key]


_REQUIRED = object()


def _default(field: models.Field, now: Any) -> Any:
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return now
    if field.default is not NOT_PROVIDED:
        return field.default() if callable(field.default) else field.default
    if field.null:
        return None
    if field.empty_strings_allowed:
        return ""
    return _REQUIRED


def _encoder(field: models.Field):
    if isinstance(field, models.JSONField):
        encoder = field.encoder or DjangoJSONEncoder
        return lambda value: None if value is None else json.dumps(value, cls=encoder)
    return None


def _tuples(
    model: type[models.Model], rows: Iterable[dict], *, with_pk: bool
) -> tuple[list[str], list[tuple]]:
    fields = _columns(model, with_pk=with_pk)
    now = timezone.now()
    defaults = {field.attname: _default(field, now) for field in fields if not field.primary_key}
    encoders = {field.attname: _encoder(field) for field in fields}
    names = [field.attname for field in fields]
    out = []
    for row in rows:
        values = []
        for name in names:
            value = row[name] if name in row else defaults[name]
            if value is _REQUIRED:
                raise ValueError(f"{model.__name__}.{name} needs a value")
            encode = encoders[name]
            values.append(encode(value) if encode is not None else value)
        out.append(tuple(values))
    return [field.column for field in fields], out


def _log(sql: str, started: float) -> None:
    # Shown by CaptureQueriesContext and DEBUG query logs like any other statement.
    if connection.queries_logged:
        connection.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})


def _copy(table: str, columns: list[str], values: list[tuple]) -> None:
    quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
    sql = f"COPY {connection.ops.quote_name(table)} ({quoted}) FROM STDIN"
    started = time.monotonic()
    # wrap_database_errors: a unique violation is django.db.IntegrityError, as from any query.
    with (
        connection.wrap_database_errors,
        connection.cursor() as cursor,
        cursor.cursor.copy(sql) as copy,
    ):
        for row in values:
            copy.write_row(row)
    _log(sql, started)


def ids_reserve(model: type[models.Model], count: int) -> list[int]:
    """`count` new primary keys from the table's own sequence (one statement)."""
    if count <= 0:
        return []
    table, pk = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, pk, count],
        )
        return [row[0] for row in cursor.fetchall()]


def copy_insert(model: type[models.Model], rows: Sequence[dict]) -> list[int]:
    """Insert rows that cannot conflict; returns their new ids in order. Rows may carry their
    own "id" (from ids_reserve) so that rows of other tables can point at them in the same
    batch. Call inside the caller's transaction."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        objects = model.objects.bulk_create(model(**row) for row in rows)
        return [obj.pk for obj in objects]
    pk = model._meta.pk.attname
    if pk not in rows[0]:
        ids = ids_reserve(model, len(rows))
        rows = [{**row, pk: new_id} for row, new_id in zip(rows, ids, strict=True)]
    columns, values = _tuples(model, rows, with_pk=True)
    _copy(model._meta.db_table, columns, values)
    return [row[pk] for row in rows]


def copy_insert_ignore_conflicts(
    model: type[models.Model], rows: Sequence[dict], *, returning: str = "id"
) -> list[tuple[int, Any]]:
    """Insert rows, skipping those that hit a unique constraint; returns (id, `returning`
    column) of the rows inserted, in no particular order. Constant statements: create/clear
    staging, COPY into it, INSERT .. SELECT .. ON CONFLICT DO NOTHING RETURNING."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        ids = []
        for row in rows:  # demo scale: one savepoint a row tells exactly which were new
            try:
                with transaction.atomic():
                    obj = model.objects.create(**row)
                ids.append((obj.pk, getattr(obj, returning)))
            except IntegrityError:
                continue
        return ids
    table = model._meta.db_table
    staging = connection.ops.quote_name(f"staging_{table}")
    columns, values = _tuples(model, rows, with_pk=False)
    quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
    with connection.cursor() as cursor:
        # Session-local, created once per connection and emptied before each use. The
        # identifiers come from model metadata, quoted; no value is interpolated.
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} AS SELECT {quoted} FROM "  # noqa: S608
            f"{connection.ops.quote_name(table)} WITH NO DATA"
        )
        cursor.execute(f"TRUNCATE {staging}")
    _copy(f"staging_{table}", columns, values)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {connection.ops.quote_name(table)} ({quoted}) SELECT {quoted} FROM "  # noqa: S608
            f"{staging} ON CONFLICT DO NOTHING RETURNING {connection.ops.quote_name('id')}, "
            f"{connection.ops.quote_name(model._meta.get_field(returning).column)}"
        )
        return [(row[0], row[1]) for row in cursor.fetchall()]
