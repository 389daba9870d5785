"""The saga's steps. Each has an idempotent `execute` and `compensate`.

Steps run with no transaction open while they call the panel; the engine persists their
outcome afterwards (fenced). A step raises `StepFailed` for a terminal problem with a message an
admin can act on, or lets the panel client's errors through (they say whether to retry).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from common.actors import Actor
from provisioning.models import AllocationClaim, PanelAccount, ProvisioningRun
from provisioning.panel_sync import egg_mirror_refresh, node_reading_store
from provisioning.pterodactyl import (
    Allocation,
    FeatureLimits,
    Limits,
    PanelBadRequest,
    PanelUnavailable,
    PanelValidationError,
)
from provisioning.saga.panel_user_step import PanelUserStep
from provisioning.saga.placement import node_load, rank_nodes
from provisioning.saga.server_spec import (
    NoUsableNode,
    environment_for,
    environment_problems,
    placement_nodes,
    server_payload_for,
)
from provisioning.saga.step_base import (
    Step,
    StepContext,
    StepFailed,
    StepName,
    StepOutcome,
    StepRewind,
    mark_sent,
)
from servers.capacity import capacity_hold_consume, capacity_hold_node_id
from servers.egg_rules import VariableRule
from servers.models import Deployment, Node
from servers.selectors import egg_variable_rules

logger = logging.getLogger(__name__)

__all__ = [
    "STEPS",
    "STEP_NAMES",
    "StepContext",
    "StepFailed",
    "StepName",
    "StepOutcome",
    "StepRewind",
]


class CheckPanel(Step):
    name, label = StepName.CHECK, "Check the panel"

    def execute(self, ctx: StepContext) -> StepOutcome:
        if not settings.PTERODACTYL_URL or not settings.PTERODACTYL_ADMIN_API_KEY:
            raise StepFailed(
                "Auto-provisioning is not configured: set PTERODACTYL_URL and "
                "PTERODACTYL_ADMIN_API_KEY (run `manage.py pterodactyl_check`)."
            )
        # No request: the first real call finds an unreachable panel just as fast, and every
        # request here would be one more per server against the panel's rate limit.
        return StepOutcome(summary={"configured": True, "requests": 0})


class ResourcesStep(Step):
    name, label = StepName.RESOURCES, "Resources and environment"

    def execute(self, ctx: StepContext) -> StepOutcome:
        spec = ctx.deployment.spec
        rules = egg_variable_rules(egg_panel_id=spec["egg_id"])
        source = "mirror"
        if rules is None:
            # Not mirrored yet: read it once and keep it, so later orders cost no request.
            rules = egg_refresh(ctx, spec["nest_id"], spec["egg_id"])
            source = "panel"
        environment, errors = environment_for(ctx.deployment, rules)
        if errors:
            raise StepFailed(environment_problems(errors))
        limits = spec["limits"]
        payload = server_payload_for(ctx.deployment, environment)
        return StepOutcome(
            updates={"server_payload": payload},
            summary={
                "egg": spec["egg_id"],
                "egg_from": source,
                "variables": sorted(environment),
                "limits": limits,
            },
        )


def egg_refresh(ctx: StepContext, nest_id: int, egg_id: int) -> list[VariableRule]:
    egg_mirror_refresh(client=ctx.client, nest_id=nest_id, egg_id=egg_id)
    return egg_variable_rules(egg_panel_id=egg_id) or []


class PlacementStep(Step):
    name, label = StepName.PLACEMENT, "Choose a node"

    def execute(self, ctx: StepContext) -> StepOutcome:
        run, deployment = ctx.run, ctx.deployment
        limits = run.server_payload["limits"]
        memory, disk = int(limits["memory"]), int(limits["disk"])
        try:
            nodes = placement_nodes(deployment)
        except NoUsableNode as exc:
            raise StepFailed(exc.message) from exc
        stale_before = timezone.now() - dt.timedelta(
            seconds=settings.PROVISIONING_NODE_READING_MAX_AGE
        )
        read = []
        for node in nodes:  # capacity readings older than the limit, outside any transaction
            if node.synced_at is not None and node.synced_at >= stale_before:
                continue  # the mirror plus our in-flight reservations are current enough
            read.append(node.panel_id)
            reading_started = timezone.now()
            node_reading_store(
                panel_node=ctx.client.get_node(node.panel_id), reading_started=reading_started
            )
        with transaction.atomic():
            # Lock the candidate nodes: two runs cannot both take the last slot.
            locked = list(
                Node.objects.select_for_update()
                .filter(pk__in=[n.pk for n in nodes], maintenance_mode=False)
                .order_by("pk")
            )
            loads = [node_load(node, exclude_run_id=run.pk) for node in locked]
            viable, reason = rank_nodes(loads, memory=memory, disk=disk)
            if not viable:
                # Paid, and the room is gone (a panel change since checkout): wait for it
                # rather than fail; the engine retries and tells the customer the truth.
                return StepOutcome(
                    summary={"nodes_read": read, "reason": reason},
                    poll_after=settings.PROVISIONING_CAPACITY_RETRY_INTERVAL,
                    waiting_for_capacity=f"No node has room for {memory} MB / {disk} MB: {reason}",
                )
            # The node checkout held room on, when it still fits: the order was sold on it.
            held_node_id = capacity_hold_node_id(deployment.pk)
            chosen = next(
                (load.node for load in viable if load.node.pk == held_node_id), viable[0].node
            )
            # The reservation is these run fields, counted by every later placement; the
            # checkout's hold gives way to it in the same transaction (never counted twice).
            if ProvisioningRun.objects.filter(pk=run.pk, fence=run.fence).update(
                node=chosen,
                reserved_memory_mb=memory,
                reserved_disk_mb=disk,
                placement_reason=reason,
            ):
                capacity_hold_consume(deployment_id=deployment.pk, node_id=chosen.pk)
        return StepOutcome(
            updates={
                "node_id": chosen.pk,
                "reserved_memory_mb": memory,
                "reserved_disk_mb": disk,
                "placement_reason": reason,
            },
            summary={"node": chosen.panel_id, "reason": reason, "nodes_read": read},
        )

    def finalize(self, run: ProvisioningRun, outcome: StepOutcome, actor: Actor) -> None:
        if run.waiting_for_capacity_since is None:
            return
        from provisioning.saga.capacity_wait import capacity_wait_end

        capacity_wait_end(run, actor=actor)

    def compensate(self, ctx: StepContext) -> StepOutcome:
        return StepOutcome(
            updates={"reserved_memory_mb": 0, "reserved_disk_mb": 0},
            summary={"released": [ctx.run.reserved_memory_mb, ctx.run.reserved_disk_mb]},
        )


class AllocationsStep(Step):
    name, label = StepName.ALLOCATIONS, "Ports"

    def execute(self, ctx: StepContext) -> StepOutcome:
        run, deployment = ctx.run, ctx.deployment
        node = Node.objects.get(pk=run.node_id)
        wanted = max(1, int(run.server_payload["feature_limits"].get("allocations") or 0))
        claims = list(AllocationClaim.objects.filter(run=run).order_by("-is_primary", "port"))
        summary: dict[str, Any] = {"wanted": wanted, "already_claimed": len(claims)}
        if len(claims) < wanted:
            # Ports an earlier attempt asked for (its reply may have been lost) are ours.
            ours = _requested(run, node)
            if ours:
                free = ctx.client.list_free_allocations(node.panel_id)
            else:
                # One page is enough: the first free ports not claimed by another run in flight
                # (a few spare, in case one is claimed between the read and the claim).
                in_flight = (
                    AllocationClaim.objects.filter(node=node, run__panel_server_id__isnull=True)
                    .exclude(run=run)
                    .values_list("ip", "port")
                )
                free = ctx.client.list_free_allocations(
                    node.panel_id, limit=wanted - len(claims) + 5, skip=set(in_flight)
                )
            mine = [a for a in free if (a.ip, a.port) in ours]
            others = [a for a in free if (a.ip, a.port) not in ours]
            claims += _claim(run, deployment, node, mine, wanted - len(claims), created=True)
            claims += _claim(run, deployment, node, others, wanted - len(claims), created=False)
        if len(claims) < wanted:
            created = self._create_ports(ctx, node, wanted - len(claims))
            summary["created_ports"] = [a.port for a in created]
            claims += _claim(run, deployment, node, created, wanted - len(claims), created=True)
        if len(claims) < wanted:
            raise PanelUnavailable("could not claim enough ports (taken concurrently); retrying")
        if not any(c.is_primary for c in claims):
            AllocationClaim.objects.filter(pk=claims[0].pk).update(is_primary=True)
        summary["claimed"] = [f"{c.ip}:{c.port}" for c in claims]
        return StepOutcome(summary=summary)

    def _create_ports(self, ctx: StepContext, node: Node, count: int) -> list[Allocation]:
        existing = ctx.client.list_allocations(node.panel_id)
        if not existing:
            raise StepFailed(
                f"Node {node.name} has no IP allocation to add ports to; create one in the panel."
            )
        ip = existing[0].ip
        taken = {a.port for a in existing if a.ip == ip}
        ports: list[int] = []
        port = settings.BASE_PORT
        while len(ports) < count and port <= 65535:
            if port not in taken:
                ports.append(port)
            port += 1
        if len(ports) < count:
            raise StepFailed(f"No free port numbers left on {ip} from BASE_PORT upward.")
        # Recorded before the call (fenced): if the reply is lost, the ports are still ours.
        asked = sorted({*ctx.run.ports_requested.get("ports", []), *ports})
        ProvisioningRun.objects.filter(pk=ctx.run.pk, fence=ctx.run.fence).update(
            ports_requested={"node": node.pk, "ip": ip, "ports": asked}
        )
        ctx.run.ports_requested = {"node": node.pk, "ip": ip, "ports": asked}
        made = ctx.client.create_allocations(node.panel_id, ip=ip, ports=ports)
        return [a for a in made if not a.assigned]

    def compensate(self, ctx: StepContext) -> StepOutcome:
        claims = list(AllocationClaim.objects.filter(run=ctx.run))
        deleted = []
        for claim in claims:
            if claim.created_by_portal:
                node = Node.objects.get(pk=claim.node_id)
                try:
                    ctx.client.delete_allocation(
                        node.panel_id, claim.panel_allocation_id, missing_ok=True
                    )
                    deleted.append(claim.port)
                except PanelBadRequest:
                    pass  # still held by a server; its force delete frees it for reuse
            claim.delete()
        deleted += self._delete_unclaimed_requested(ctx)
        return StepOutcome(summary={"released": [c.port for c in claims], "deleted": deleted})

    def _delete_unclaimed_requested(self, ctx: StepContext) -> list[int]:
        """Ports this run asked for but never claimed (the create's reply was lost and the step
        gave up): delete those still free on the panel and claimed by no one."""
        requested = ctx.run.ports_requested
        if not requested.get("ports"):
            return []
        node = Node.objects.get(pk=requested["node"])
        ours = _requested(ctx.run, node)
        held = set(
            AllocationClaim.objects.filter(node=node).values_list("panel_allocation_id", flat=True)
        )
        deleted = []
        for allocation in ctx.client.list_free_allocations(node.panel_id):
            if (allocation.ip, allocation.port) in ours and allocation.id not in held:
                try:
                    ctx.client.delete_allocation(node.panel_id, allocation.id, missing_ok=True)
                    deleted.append(allocation.port)
                except PanelBadRequest:
                    continue  # assigned meanwhile: no longer ours to delete
        return deleted


def _requested(run: ProvisioningRun, node: Node) -> set[tuple[str, int]]:
    requested = run.ports_requested or {}
    if requested.get("node") != node.pk:
        return set()
    return {(requested["ip"], int(port)) for port in requested.get("ports", [])}


def _claim(
    run: ProvisioningRun,
    deployment: Deployment,
    node: Node,
    candidates: list[Allocation],
    count: int,
    *,
    created: bool,
) -> list[AllocationClaim]:
    """Claim up to `count` allocations. The unique keys decide races: a port someone else
    claimed first raises IntegrityError here and is skipped."""
    claims: list[AllocationClaim] = []
    for allocation in sorted(candidates, key=lambda a: a.port):
        if len(claims) >= count:
            break
        if allocation.assigned:
            continue
        try:
            with transaction.atomic():
                claims.append(
                    AllocationClaim.objects.create(
                        node=node,
                        panel_allocation_id=allocation.id,
                        ip=allocation.ip,
                        port=allocation.port,
                        run=run,
                        deployment=deployment,
                        created_by_portal=created,
                    )
                )
        except IntegrityError:
            continue
    return claims


class ServerStep(Step):
    name, label = StepName.SERVER, "Create the server"

    def execute(self, ctx: StepContext) -> StepOutcome:
        run, deployment = ctx.run, ctx.deployment
        payload = run.server_payload
        claims = list(AllocationClaim.objects.filter(run=run).order_by("-is_primary", "port"))
        limits = payload["limits"]
        # Look up by our external id first only when an earlier try sent the create; otherwise
        # the panel's unique external id turns a duplicate into a 422 that adopts the server.
        lookup_first = run.server_create_sent_at is not None
        mark_sent(ctx, "server_create_sent_at")
        try:
            result = self._ensure(ctx, payload, claims, limits, lookup_first=lookup_first)
        except PanelValidationError as exc:
            self._rewind_if_stale(ctx, exc)
            raise
        server = result.resource
        return StepOutcome(
            updates={
                "panel_server_id": server.id,
                "panel_server_uuid": server.uuid,
                "panel_identifier": server.identifier,
                "server_created_at": run.server_created_at or timezone.now(),
                "install_status": server.status or "",
            },
            summary={
                "external_id": deployment.external_id,
                "panel_server_id": server.id,
                "origin": str(result.origin),
                "looked_up_first": lookup_first,
                "allocation": f"{claims[0].ip}:{claims[0].port}",
            },
        )

    def _rewind_if_stale(self, ctx: StepContext, exc: PanelValidationError) -> None:
        """A 422 about what earlier steps took from our records: read it afresh and go back."""
        fields = {error.source_field for error in exc.field_errors}
        if "user" in fields and not ctx.run.panel_user_created:
            # The stored panel user is gone from the panel: forget it, find or make it again.
            PanelAccount.objects.filter(
                user_id=ctx.deployment.customer_id, panel_user_id=ctx.run.panel_user_id
            ).update(panel_user_id=None)
            raise StepRewind(
                StepName.PANEL_USER, f"the panel no longer has user #{ctx.run.panel_user_id}"
            ) from exc
        if any(name == "egg" or name.startswith("environment.") for name in fields):
            spec = ctx.deployment.spec
            egg_refresh(ctx, spec["nest_id"], spec["egg_id"])
            raise StepRewind(
                StepName.RESOURCES,
                "the egg changed on the panel (" + ", ".join(sorted(fields)) + "); re-read it",
            ) from exc

    def _ensure(
        self,
        ctx: StepContext,
        payload: dict[str, Any],
        claims: list[AllocationClaim],
        limits: dict[str, Any],
        *,
        lookup_first: bool,
    ) -> Any:
        run, deployment = ctx.run, ctx.deployment
        return ctx.client.ensure_server(
            external_id=deployment.external_id,
            lookup_first=lookup_first,
            name=deployment.name,
            user_id=run.panel_user_id,
            egg_id=payload["egg_id"],
            docker_image=payload["docker_image"],
            startup=payload["startup"],
            environment=payload["environment"],
            limits=Limits(
                memory=limits["memory"],
                swap=limits["swap"],
                disk=limits["disk"],
                io=limits["io"],
                cpu=limits["cpu"],
                threads=limits.get("threads"),
                oom_disabled=limits.get("oom_disabled", True),
            ),
            feature_limits=FeatureLimits(**payload["feature_limits"]),
            allocation_id=claims[0].panel_allocation_id,
            additional_allocation_ids=[c.panel_allocation_id for c in claims[1:]],
            description=f"{deployment.plan_name} for {deployment.customer.email} "
            f"(portal deployment #{deployment.pk})",
            start_on_completion=settings.AUTO_START_SERVERS,
        )

    def compensate(self, ctx: StepContext) -> StepOutcome:
        server_id = ctx.run.panel_server_id
        if server_id is None and ctx.run.server_create_sent_at is not None:
            # Maybe created and the reply lost before we recorded it: find it by our key.
            found = ctx.client.find_server_by_external_id(ctx.deployment.external_id)
            server_id = found.id if found else None
        if server_id is None:
            return StepOutcome(summary={"no_server": True})
        ctx.client.delete_server(server_id, force=True, missing_ok=True)
        return StepOutcome(
            updates={"panel_server_id": None, "server_created_at": None},
            summary={"force_deleted_server": server_id},
        )


class InstallStep(Step):
    name, label = StepName.INSTALL, "Wait for the install"

    def execute(self, ctx: StepContext) -> StepOutcome:
        server = ctx.client.get_server(ctx.run.panel_server_id)
        status = server.status or ""
        if server.install_failed:
            raise StepFailed(f"The panel reports the install failed (status {status}).")
        if server.is_installing:
            return StepOutcome(
                updates={"install_status": status},
                summary={"status": status},
                poll_after=settings.PROVISIONING_POLL_INTERVAL,
            )
        return StepOutcome(updates={"install_status": status}, summary={"status": status or None})


class ActivateStep(Step):
    name, label = StepName.ACTIVATE, "Activate"

    def execute(self, ctx: StepContext) -> StepOutcome:
        primary = AllocationClaim.objects.filter(run=ctx.run, is_primary=True).first()
        return StepOutcome(summary={"address": f"{primary.ip}:{primary.port}" if primary else None})


STEPS: list[Step] = [
    CheckPanel(),
    PanelUserStep(),
    ResourcesStep(),
    PlacementStep(),
    AllocationsStep(),
    ServerStep(),
    InstallStep(),
    ActivateStep(),
]
# Plain strings (argparse choices, form choices and messages show them as they are stored).
STEP_NAMES = [str(step.name) for step in STEPS]
