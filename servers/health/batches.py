"""Batches for the set-based writes of the health job: settings.FLEET_BATCH_SIZE rows a
statement, never one query per server."""

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

from django.conf import settings

T = TypeVar("T")


def batches(items: Iterable[T], size: int | None = None) -> Iterator[list[T]]:
    iterator = iter(items)
    size = max(1, size or settings.FLEET_BATCH_SIZE)
    while batch := list(islice(iterator, size)):
        yield batch
