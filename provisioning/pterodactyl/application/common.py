"""What the Application API's resource classes share: request parameters, the ``UNSET``
sentinel of update methods, and adopting an object after a create's reply was lost."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any, TypeVar

from provisioning.pterodactyl.errors import PanelError, PanelUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Unset(Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"


# "Not given": keep the panel's current value (distinct from None, which clears it).
UNSET = Unset.UNSET


def include_param(include: Iterable[str]) -> list[tuple[str, Any]]:
    names = [name for name in include if name]
    return [("include", ",".join(names))] if names else []


def filter_params(**filters: str | None) -> list[tuple[str, Any]]:
    return [(f"filter[{name}]", value) for name, value in filters.items() if value is not None]


def check_external_id(external_id: str) -> str:
    value = str(external_id)
    if not value or "/" in value or len(value) > 191:
        raise ValueError("external_id must be 1..191 characters without '/'")
    return value


def env_value(value: Any) -> Any:
    """Egg variable values are validated as strings by most rules: send strings."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def recover_lost_create(
    kind: str,
    external_id: str | None,
    lookup: Callable[[str], T | None],
    error: PanelUnavailable,
    redact: Callable[[str], str],
) -> T:
    """After a create's reply was lost: the object if the panel made it, else re-raise."""
    if external_id is None:
        logger.warning(
            "panel %s create: reply lost and no external_id to check whether it exists", kind
        )
        raise error
    try:
        found = lookup(external_id)
    except PanelError as lookup_error:
        logger.warning(
            "panel %s create: reply lost and the lookup by external_id failed too (%s)",
            kind,
            redact(lookup_error.message),
        )
        raise error from None
    if found is None:
        logger.info(
            "panel %s create: reply lost and no %s with external_id %s exists; safe to retry",
            kind,
            kind,
            external_id,
        )
        raise error
    logger.info(
        "panel %s create: reply lost, adopted the %s with external_id %s",
        kind,
        kind,
        external_id,
    )
    return found
