"""Reading the panel's JSON: the typed reader every ``from_api`` uses, and the generic results
(``Page`` of a list endpoint, ``Created`` of a create)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from provisioning.pterodactyl.errors import PanelBadResponse

T = TypeVar("T")


class Reader:
    """Typed access to one attributes dict; every problem becomes a PanelBadResponse."""

    def __init__(self, data: Any, what: str) -> None:
        if not isinstance(data, Mapping):
            raise PanelBadResponse(
                f"unexpected {what} shape from the panel: expected an object, got "
                f"{type(data).__name__}"
            )
        self.data = data
        self.what = what

    def _fail(self, key: str, expected: str) -> PanelBadResponse:
        if key not in self.data:
            return PanelBadResponse(
                f"unexpected {self.what} shape from the panel: field '{key}' is missing"
            )
        got = type(self.data[key]).__name__
        return PanelBadResponse(
            f"unexpected {self.what} shape from the panel: field '{key}' should be {expected}, "
            f"got {got}"
        )

    def int(self, key: str) -> int:
        value = self.data.get(key)
        if isinstance(value, bool) or value is None:
            raise self._fail(key, "an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
        raise self._fail(key, "an integer")

    def opt_int(self, key: str) -> int | None:
        if self.data.get(key) is None:
            return None
        return self.int(key)

    def str(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def opt_str(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._fail(key, "a string or null")
        return value

    def bool(self, key: str) -> bool:
        value = self.data.get(key)
        # Older panels render some booleans as 0/1.
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise self._fail(key, "a boolean")

    def obj(self, key: str) -> Reader:
        value = self.data.get(key)
        if not isinstance(value, Mapping):
            raise self._fail(key, "an object")
        return Reader(value, f"{self.what}.{key}")

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        # PHP renders an empty map as [] sometimes; accept it as {}.
        if value == [] or value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self._fail(key, "an object")
        return dict(value)

    def ts(self, key: str) -> datetime | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._fail(key, "a timestamp string")
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise self._fail(key, "an ISO-8601 timestamp") from None

    def relationship_list(self, name: str) -> list[Mapping[str, Any]] | None:
        """Items of ``attributes.relationships.<name>`` (None when not included or not readable)."""
        relationships = self.data.get("relationships")
        if not isinstance(relationships, Mapping) or name not in relationships:
            return None
        value = relationships[name]
        if not isinstance(value, Mapping):
            raise PanelBadResponse(
                f"unexpected {self.what} shape from the panel: relationship '{name}' is not an "
                "object"
            )
        if value.get("object") == "null_resource":
            return None
        data = value.get("data")
        if not isinstance(data, list):
            raise PanelBadResponse(
                f"unexpected {self.what} shape from the panel: relationship '{name}' has no list"
            )
        return data


def unwrap(payload: Any, expected_object: str) -> Any:
    """Return the attributes of an item envelope (or the payload when it is bare attributes)."""
    if isinstance(payload, Mapping) and "object" in payload:
        if payload.get("object") != expected_object:
            raise PanelBadResponse(
                f"unexpected reply from the panel: expected a '{expected_object}' object, got "
                f"'{payload.get('object')}'"
            )
        attributes = payload.get("attributes")
        if not isinstance(attributes, Mapping):
            raise PanelBadResponse(
                f"unexpected reply from the panel: '{expected_object}' without attributes"
            )
        return attributes
    return payload


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list endpoint, with the panel's ``meta.pagination`` numbers."""

    items: tuple[T, ...]
    total: int
    count: int
    per_page: int
    current_page: int
    total_pages: int

    @property
    def has_next(self) -> bool:
        return self.current_page < self.total_pages

    @classmethod
    def from_api(cls, payload: Any, item_factory: Any, what: str) -> Page[Any]:
        if not isinstance(payload, Mapping) or payload.get("object") != "list":
            raise PanelBadResponse(f"unexpected reply listing {what}: expected a 'list' object")
        data = payload.get("data")
        if not isinstance(data, list):
            raise PanelBadResponse(f"unexpected reply listing {what}: 'data' is not a list")
        meta = payload.get("meta")
        items = tuple(item_factory(item) for item in data)
        if meta is None:
            # Unpaginated endpoints (eggs, deployable nodes without page) send no meta.
            return cls(items, len(items), len(items), len(items), 1, 1)
        pagination = Reader(Reader(meta, "list meta").obj("pagination").data, "pagination")
        return cls(
            items=items,
            total=pagination.int("total"),
            count=pagination.int("count"),
            per_page=pagination.int("per_page"),
            current_page=pagination.int("current_page"),
            total_pages=pagination.int("total_pages"),
        )


class CreateOrigin(StrEnum):
    CREATED = "created"  # our POST returned 201
    RECOVERED = "recovered"  # the POST's reply was lost; found by external_id afterwards
    EXISTING = "existing"  # found by external_id before (or instead of) creating


@dataclass(frozen=True)
class Created(Generic[T]):
    """The result of a create: the object plus how we got it (see ``CreateOrigin``)."""

    resource: T
    origin: CreateOrigin = CreateOrigin.CREATED
    notes: tuple[str, ...] = field(default=())

    @property
    def adopted(self) -> bool:
        """True when we did not get the object from our own successful POST."""
        return self.origin is not CreateOrigin.CREATED
