"""The connection check behind `pterodactyl_check` (the guides' "provision-test").

Verifies URL, key and admin permission, DEFAULT_NODE_ID, every plan's egg and image, and free
allocations per node; every problem comes with what to do about it.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from provisioning.pterodactyl import (
    PanelAuthError,
    PanelError,
    PanelNotFound,
    PanelPermissionError,
    PterodactylClient,
)

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class PlanRequirement:
    name: str
    nest_id: int
    egg_id: int
    docker_image: str


@dataclass(frozen=True)
class CheckResult:
    status: str
    title: str
    detail: str = ""
    fix: str = ""


def panel_check(
    *,
    plans: Iterable[PlanRequirement],
    client_factory: Callable[[], PterodactylClient] = PterodactylClient.from_settings,
) -> list[CheckResult]:
    results: list[CheckResult] = []
    url, key = settings.PTERODACTYL_URL, settings.PTERODACTYL_ADMIN_API_KEY
    if not url:
        results.append(
            CheckResult(
                FAIL,
                "PTERODACTYL_URL is not set",
                fix="Set PTERODACTYL_URL to the panel's base URL.",
            )
        )
    if not key:
        results.append(
            CheckResult(
                FAIL,
                "PTERODACTYL_ADMIN_API_KEY is not set",
                fix="Create an Application API key of a root admin "
                "(Admin → Application API) and set it.",
            )
        )
    elif not (key.startswith("ptla_") and len(key) == 48):
        results.append(
            CheckResult(
                WARN if key.startswith("ptlc_") else FAIL,
                "The API key does not look like an application key",
                detail=f"it starts with {key[:5]!r} and has {len(key)} characters",
                fix="Use the full 48-character ptla_ key; a ptlc_ client key works only if its "
                "owner is a root admin.",
            )
        )
    if any(r.status == FAIL for r in results):
        return results
    try:
        client = client_factory()
        locations = client.list_locations()
    except ImproperlyConfigured as exc:
        return [*results, CheckResult(FAIL, "Configuration", str(exc))]
    except (PanelAuthError, PanelPermissionError) as exc:
        return [
            *results,
            CheckResult(FAIL, "The panel refused the API key", exc.message, fix=exc.hint),
        ]
    except PanelError as exc:
        return [
            *results,
            CheckResult(
                FAIL,
                f"Cannot reach the panel at {url}",
                exc.message,
                fix=exc.hint or "Check the URL, DNS, TLS and firewall.",
            ),
        ]
    results.append(
        CheckResult(
            OK,
            f"Panel reachable at {url}; the key has admin access",
            f"{len(locations)} location(s)",
        )
    )

    try:
        node = client.get_node(settings.DEFAULT_NODE_ID)
        results.append(
            CheckResult(OK, f"DEFAULT_NODE_ID={settings.DEFAULT_NODE_ID} is {node.name}")
        )
    except PanelNotFound:
        results.append(
            CheckResult(
                FAIL,
                f"DEFAULT_NODE_ID={settings.DEFAULT_NODE_ID} does not exist",
                fix="Set DEFAULT_NODE_ID to a node id from Admin → Nodes.",
            )
        )
    except PanelError as exc:
        results.append(CheckResult(FAIL, "Could not read DEFAULT_NODE_ID", exc.message, exc.hint))

    for plan in plans:
        try:
            egg = client.get_egg(plan.nest_id, plan.egg_id)
        except PanelNotFound:
            results.append(
                CheckResult(
                    FAIL,
                    f"Plan {plan.name}: egg {plan.egg_id} not found in nest {plan.nest_id}",
                    fix=f"Set the plan's nest/egg (or {plan.name.upper()}_EGG_ID) to an "
                    "existing egg.",
                )
            )
            continue
        except PanelError as exc:
            results.append(
                CheckResult(
                    FAIL, f"Plan {plan.name}: could not read its egg", exc.message, exc.hint
                )
            )
            continue
        images = set(egg.docker_images.values())
        if plan.docker_image in images:
            results.append(CheckResult(OK, f"Plan {plan.name}: egg {egg.name}, image ok"))
        else:
            results.append(
                CheckResult(
                    WARN,
                    f"Plan {plan.name}: image {plan.docker_image} is not one of egg "
                    f"{egg.name}'s images",
                    detail=", ".join(sorted(images)),
                    fix="The panel accepts any image, but make sure this one exists and suits the "
                    "egg (or set the plan's image to one of the egg's).",
                )
            )
        missing = [
            v.env_variable for v in egg.variables or () if v.required and not v.default_value
        ]
        if missing:
            results.append(
                CheckResult(
                    WARN,
                    f"Plan {plan.name}: required variables without a default: {', '.join(missing)}",
                    fix="Give them a value in the plan's environment, or customers must "
                    "enter them.",
                )
            )

    try:
        for panel_node in client.list_nodes():
            free = len(client.list_free_allocations(panel_node.id))
            if free:
                results.append(
                    CheckResult(OK, f"Node {panel_node.name}: {free} free allocation(s)")
                )
            else:
                results.append(
                    CheckResult(
                        WARN,
                        f"Node {panel_node.name}: no free allocations",
                        fix=f"Add ports in the panel; provisioning creates them from BASE_PORT="
                        f"{settings.BASE_PORT} upward when it needs to.",
                    )
                )
    except PanelError as exc:
        results.append(CheckResult(FAIL, "Could not list nodes", exc.message, exc.hint))
    return results


def format_report(results: list[CheckResult]) -> str:
    marks = {OK: "[ OK ]", WARN: "[WARN]", FAIL: "[FAIL]"}
    lines = []
    for result in results:
        lines.append(f"{marks[result.status]} {result.title}")
        if result.detail:
            lines.append(f"       {result.detail}")
        if result.fix and result.status != OK:
            lines.append(f"       fix: {result.fix}")
    failed = sum(r.status == FAIL for r in results)
    warned = sum(r.status == WARN for r in results)
    lines.append(
        "All checks passed."
        if not failed and not warned
        else f"{failed} problem(s), {warned} warning(s)."
    )
    return "\n".join(lines)
