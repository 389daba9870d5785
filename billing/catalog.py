"""The catalog's data rules: the panel spec of a plan with add-ons and package overrides.

Package overrides are set in the environment, named after the plan's slug as in the
provisioning guide: BRONZE_EGG_ID, BRONZE_DOCKER_IMAGE, BRONZE_STARTUP (also _NEST_ID); the
settings read them (config/settings/billing.py, PACKAGE_OVERRIDES), this module reads settings.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from billing.models import Addon, Plan


@dataclass(frozen=True)
class PackageOverrides:
    nest_id: int | None = None
    egg_id: int | None = None
    docker_image: str | None = None
    startup: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def package_env_prefix(slug: str) -> str:
    return slug.upper().replace("-", "_")


def package_overrides(slug: str) -> PackageOverrides:
    return PackageOverrides(**settings.PACKAGE_OVERRIDES.get(package_env_prefix(slug), {}))


def plan_panel_spec(plan: Plan, addons: Iterable[Addon] = ()) -> dict[str, Any]:
    """Limits, feature limits and what runs, as the panel's server-create body expects them.

    Add-on boosts are summed in; package overrides (settings.PACKAGE_OVERRIDES) win over the
    plan row.
    """
    addons = list(addons)
    overrides = package_overrides(plan.slug)
    return {
        "limits": {
            "memory": plan.memory_mb + sum(a.memory_mb for a in addons),
            "swap": plan.swap_mb,
            "disk": plan.disk_mb + sum(a.disk_mb for a in addons),
            "io": plan.io_weight,
            "cpu": plan.cpu_percent + sum(a.cpu_percent for a in addons),
            "threads": plan.threads or None,
        },
        "feature_limits": {
            "databases": plan.databases + sum(a.databases for a in addons),
            "allocations": plan.allocations + sum(a.allocations for a in addons),
            "backups": plan.backups + sum(a.backups for a in addons),
        },
        "oom_disabled": plan.oom_disabled,
        "nest_id": overrides.nest_id or plan.nest_id,
        "egg_id": overrides.egg_id or plan.egg_id,
        "docker_image": overrides.docker_image or plan.docker_image,
        "startup": overrides.startup or plan.startup,
    }
