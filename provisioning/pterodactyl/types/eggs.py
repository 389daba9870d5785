"""Nests and eggs (the game templates) with their variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provisioning.pterodactyl.types.base import Reader, unwrap


@dataclass(frozen=True)
class Nest:
    id: int
    uuid: str
    author: str
    name: str
    description: str | None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_api(cls, payload: Any) -> Nest:
        r = Reader(unwrap(payload, "nest"), "nest")
        return cls(
            id=r.int("id"),
            uuid=r.str("uuid"),
            author=r.str("author"),
            name=r.str("name"),
            description=r.opt_str("description"),
            created_at=r.ts("created_at"),
            updated_at=r.ts("updated_at"),
        )


@dataclass(frozen=True)
class EggVariable:
    id: int
    egg_id: int
    name: str
    description: str
    env_variable: str
    default_value: str
    user_viewable: bool
    user_editable: bool
    rules: str

    @classmethod
    def from_api(cls, payload: Any) -> EggVariable:
        r = Reader(unwrap(payload, "egg_variable"), "egg_variable")
        return cls(
            id=r.int("id"),
            egg_id=r.int("egg_id"),
            name=r.str("name"),
            description=r.opt_str("description") or "",
            env_variable=r.str("env_variable"),
            default_value=r.opt_str("default_value") or "",
            user_viewable=r.bool("user_viewable"),
            user_editable=r.bool("user_editable"),
            rules=r.opt_str("rules") or "",
        )

    @property
    def required(self) -> bool:
        """The panel treats a variable as required exactly when its rules contain ``required``."""
        return "required" in self.rules.split("|")


@dataclass(frozen=True)
class Egg:
    id: int
    uuid: str
    name: str
    nest_id: int
    author: str
    description: str | None
    docker_image: str
    docker_images: Mapping[str, str]
    startup: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # Present only when fetched with include=variables.
    variables: tuple[EggVariable, ...] | None = None

    @classmethod
    def from_api(cls, payload: Any) -> Egg:
        r = Reader(unwrap(payload, "egg"), "egg")
        variables = r.relationship_list("variables")
        images = r.mapping("docker_images")
        return cls(
            id=r.int("id"),
            uuid=r.str("uuid"),
            name=r.str("name"),
            nest_id=r.int("nest"),
            author=r.str("author"),
            description=r.opt_str("description"),
            docker_image=r.opt_str("docker_image") or next(iter(images.values()), ""),
            docker_images={str(k): str(v) for k, v in images.items()},
            startup=r.str("startup"),
            created_at=r.ts("created_at"),
            updated_at=r.ts("updated_at"),
            variables=(
                None
                if variables is None
                else tuple(EggVariable.from_api(item) for item in variables)
            ),
        )

    def environment_with_defaults(
        self, overrides: Mapping[str, Any] | None = None
    ) -> dict[str, str]:
        """Every variable's ``default_value``, then ``overrides`` on top.

        The panel never applies defaults itself: a create without them fails with 422 on every
        ``required`` variable. Needs the egg fetched with variables (``get_egg`` does that).
        """
        if self.variables is None:
            raise ValueError("egg was fetched without include=variables")
        environment = {variable.env_variable: variable.default_value for variable in self.variables}
        for key, value in (overrides or {}).items():
            environment[key] = value
        return environment
