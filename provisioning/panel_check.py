"""The connection check behind `pterodactyl_check` (the guides' "provision-test").

Verifies URL, key and admin permission, DEFAULT_NODE_ID, every plan's egg and image, and free
allocations per node; every problem comes with what to do about it. Each of these is a named
check in PANEL_CHECKS, run in order; a check that is a gate ends the run when anything so far
failed (the later checks need the settings and the connection it verified).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from provisioning.pterodactyl import (
    PanelAuthError,
    PanelError,
    PanelNotFound,
    PanelPermissionError,
    PterodactylClient,
)


class CheckStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


OK, WARN, FAIL = CheckStatus.OK, CheckStatus.WARN, CheckStatus.FAIL


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


@dataclass
class CheckContext:
    """What the checks share: the plans to verify, and the client once the connection works."""

    plans: Iterable[PlanRequirement]
    client_factory: Callable[[], PterodactylClient]
    client: PterodactylClient | None = None

    @property
    def connected(self) -> PterodactylClient:
        # Only the checks after the "connection" gate use it, and they run only when it passed.
        if self.client is None:
            raise RuntimeError("the panel connection check has not passed")
        return self.client


@dataclass(frozen=True)
class PanelCheck:
    name: str
    run: Callable[[CheckContext], list[CheckResult]]
    # A gate: when any result so far failed, the checks after it are not run.
    gate: bool = False


def _check_url(ctx: CheckContext) -> list[CheckResult]:
    if settings.PTERODACTYL_URL:
        return []
    return [
        CheckResult(
            FAIL, "PTERODACTYL_URL is not set", fix="Set PTERODACTYL_URL to the panel's base URL."
        )
    ]


def _check_api_key(ctx: CheckContext) -> list[CheckResult]:
    key = settings.PTERODACTYL_ADMIN_API_KEY
    if not key:
        return [
            CheckResult(
                FAIL,
                "PTERODACTYL_ADMIN_API_KEY is not set",
                fix="Create an Application API key of a root admin "
                "(Admin → Application API) and set it.",
            )
        ]
    if key.startswith("ptla_") and len(key) == 48:
        return []
    return [
        CheckResult(
            WARN if key.startswith("ptlc_") else FAIL,
            "The API key does not look like an application key",
            detail=f"it starts with {key[:5]!r} and has {len(key)} characters",
            fix="Use the full 48-character ptla_ key; a ptlc_ client key works only if its "
            "owner is a root admin.",
        )
    ]


def _check_connection(ctx: CheckContext) -> list[CheckResult]:
    url = settings.PTERODACTYL_URL
    try:
        client = ctx.client_factory()
        locations = client.list_locations()
    except ImproperlyConfigured as exc:
        return [CheckResult(FAIL, "Configuration", str(exc))]
    except (PanelAuthError, PanelPermissionError) as exc:
        return [CheckResult(FAIL, "The panel refused the API key", exc.message, fix=exc.hint)]
    except PanelError as exc:
        return [
            CheckResult(
                FAIL,
                f"Cannot reach the panel at {url}",
                exc.message,
                fix=exc.hint or "Check the URL, DNS, TLS and firewall.",
            )
        ]
    ctx.client = client
    return [
        CheckResult(
            OK,
            f"Panel reachable at {url}; the key has admin access",
            f"{len(locations)} location(s)",
        )
    ]


def _check_default_node(ctx: CheckContext) -> list[CheckResult]:
    node_id = settings.DEFAULT_NODE_ID
    try:
        node = ctx.connected.get_node(node_id)
    except PanelNotFound:
        return [
            CheckResult(
                FAIL,
                f"DEFAULT_NODE_ID={node_id} does not exist",
                fix="Set DEFAULT_NODE_ID to a node id from Admin → Nodes.",
            )
        ]
    except PanelError as exc:
        return [CheckResult(FAIL, "Could not read DEFAULT_NODE_ID", exc.message, exc.hint)]
    return [CheckResult(OK, f"DEFAULT_NODE_ID={node_id} is {node.name}")]


def _check_plans(ctx: CheckContext) -> list[CheckResult]:
    results: list[CheckResult] = []
    for plan in ctx.plans:
        results.extend(_check_plan(ctx.connected, plan))
    return results


def _check_plan(client: PterodactylClient, plan: PlanRequirement) -> list[CheckResult]:
    """One plan: its egg exists, its image is one of the egg's, required variables have values."""
    try:
        egg = client.get_egg(plan.nest_id, plan.egg_id)
    except PanelNotFound:
        return [
            CheckResult(
                FAIL,
                f"Plan {plan.name}: egg {plan.egg_id} not found in nest {plan.nest_id}",
                fix=f"Set the plan's nest/egg (or {plan.name.upper()}_EGG_ID) to an existing egg.",
            )
        ]
    except PanelError as exc:
        return [
            CheckResult(FAIL, f"Plan {plan.name}: could not read its egg", exc.message, exc.hint)
        ]
    results: list[CheckResult] = []
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
    missing = [v.env_variable for v in egg.variables or () if v.required and not v.default_value]
    if missing:
        results.append(
            CheckResult(
                WARN,
                f"Plan {plan.name}: required variables without a default: {', '.join(missing)}",
                fix="Give them a value in the plan's environment, or customers must enter them.",
            )
        )
    return results


def _check_free_allocations(ctx: CheckContext) -> list[CheckResult]:
    client = ctx.connected
    results: list[CheckResult] = []
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
        # The nodes read before the error keep their rows.
        results.append(CheckResult(FAIL, "Could not list nodes", exc.message, exc.hint))
    return results


# In order: settings first (no request is made with a missing URL or key), then the connection.
PANEL_CHECKS: tuple[PanelCheck, ...] = (
    PanelCheck("url", _check_url),
    PanelCheck("api_key", _check_api_key, gate=True),
    PanelCheck("connection", _check_connection, gate=True),
    PanelCheck("default_node", _check_default_node),
    PanelCheck("plans", _check_plans),
    PanelCheck("free_allocations", _check_free_allocations),
)


def panel_check(
    *,
    plans: Iterable[PlanRequirement],
    client_factory: Callable[[], PterodactylClient] = PterodactylClient.from_settings,
) -> list[CheckResult]:
    """Run PANEL_CHECKS in order and return their result rows."""
    ctx = CheckContext(plans=plans, client_factory=client_factory)
    results: list[CheckResult] = []
    for check in PANEL_CHECKS:
        results.extend(check.run(ctx))
        if check.gate and any(r.status == FAIL for r in results):
            break
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
