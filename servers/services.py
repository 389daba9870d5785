"""Writes on locations, nodes and deployments."""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from common.actors import Actor
from servers.models import (
    DEPLOYMENT_STATES,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    Egg,
    EggVariable,
    Location,
    Nest,
    Node,
)


def deployment_create(
    *,
    customer: User,
    name: str,
    plan_slug: str,
    plan_name: str,
    billing_cycle: str,
    location: Location,
    spec: dict[str, Any],
    addons: list[dict[str, str]],
    variables: dict[str, str],
    actor: Actor,
) -> Deployment:
    deployment = Deployment.objects.create(
        customer=customer,
        name=name,
        plan_slug=plan_slug,
        plan_name=plan_name,
        billing_cycle=billing_cycle,
        location=location,
        spec=spec,
        addons=addons,
        variables=variables,
        status=DeploymentStatus.PENDING,
    )
    DEPLOYMENT_STATES.record_created(deployment, actor=actor, reason="Ordered")
    return deployment


def deployment_transition(
    *,
    deployment_id: int,
    to_status: str,
    actor: Actor,
    reason: str,
    updates: dict[str, Any] | None = None,
) -> Deployment:
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().get(pk=deployment_id)
        extra = dict(updates or {})
        now = timezone.now()
        if to_status == DeploymentStatus.ACTIVE and deployment.activated_at is None:
            extra.setdefault("activated_at", now)
        if to_status == DeploymentStatus.SUSPENDED:
            extra.setdefault("suspended_at", now)
        if to_status == DeploymentStatus.TERMINATED:
            extra.setdefault("terminated_at", now)
        DEPLOYMENT_STATES.move(
            deployment, to_status, actor=actor, reason=reason, extra_updates=extra
        )
    return deployment


@dataclass(frozen=True)
class PanelServerLink:
    """Point a deployment at another panel server (found by its external id)."""

    deployment_id: int
    recorded_panel_server_id: int | None  # what we expect it to point at now
    panel_server_id: int
    uuid: str
    identifier: str
    ip_address: str
    port: int | None
    reason: str


def deployments_relink_panel_servers(*, links: list[PanelServerLink], actor: Actor) -> list[int]:
    """Relink live deployments to their panel servers, compare-and-set on the recorded id (a
    deployment changed meanwhile is left alone), with a history row each. Returns the ids
    relinked. Constant statements for the set."""
    wanted = {link.deployment_id: link for link in links}
    now = timezone.now()
    with transaction.atomic():
        deployments = list(
            Deployment.objects.select_for_update()
            .filter(
                pk__in=list(wanted),
                status__in=[DeploymentStatus.ACTIVE, DeploymentStatus.SUSPENDED],
            )
            .order_by("pk")
        )
        linked, events = [], []
        for deployment in deployments:
            link = wanted[deployment.pk]
            if deployment.panel_server_id != link.recorded_panel_server_id:
                continue
            deployment.panel_server_id = link.panel_server_id
            deployment.panel_server_uuid = link.uuid[:36]
            deployment.panel_identifier = link.identifier[:8]
            if link.ip_address and link.port:
                deployment.ip_address, deployment.port = link.ip_address, link.port
            deployment.updated_at = now
            linked.append(deployment)
            events.append(
                DEPLOYMENT_STATES.unsaved_note(deployment, actor=actor, reason=link.reason)
            )
        if linked:
            Deployment.objects.bulk_update(
                linked,
                [
                    "panel_server_id",
                    "panel_server_uuid",
                    "panel_identifier",
                    "ip_address",
                    "port",
                    "updated_at",
                ],
            )
            DeploymentEvent.objects.bulk_create(events)
    return [deployment.pk for deployment in linked]


def deployment_set_next_due_date(
    *, deployment_id: int, next_due_date: dt.date, actor: Actor, reason: str
) -> None:
    """Record the paid-through date; the history row keeps the status unchanged."""
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().get(pk=deployment_id)
        deployment.next_due_date = next_due_date
        deployment.save(update_fields=["next_due_date", "updated_at"])
        DEPLOYMENT_STATES.note(
            deployment, actor=actor, reason=f"{reason}; next due date {next_due_date.isoformat()}"
        )


def location_upsert(
    *, short_code: str, long_name: str, panel_id: int | None
) -> tuple[Location, bool]:
    location, created = Location.objects.update_or_create(
        short_code=short_code, defaults={"long_name": long_name, "panel_id": panel_id}
    )
    return location, created


def node_upsert(*, panel_id: int, location: Location, **fields: Any) -> tuple[Node, bool]:
    return Node.objects.update_or_create(
        panel_id=panel_id, defaults={"location": location, "synced_at": timezone.now(), **fields}
    )


def egg_upsert(
    *,
    nest_panel_id: int,
    nest_name: str,
    egg_panel_id: int,
    egg_fields: dict[str, Any],
    variables: list[dict[str, Any]],
) -> tuple[Egg, bool]:
    """Mirror a panel egg with its variables (variables no longer on the panel are removed)."""
    with transaction.atomic():
        nest, _ = Nest.objects.update_or_create(
            panel_id=nest_panel_id, defaults={"name": nest_name}
        )
        egg, created = Egg.objects.update_or_create(
            panel_id=egg_panel_id,
            defaults={"nest": nest, "synced_at": timezone.now(), **egg_fields},
        )
        seen = []
        for variable in variables:
            EggVariable.objects.update_or_create(
                egg=egg,
                env_variable=variable["env_variable"],
                defaults={k: v for k, v in variable.items() if k != "env_variable"},
            )
            seen.append(variable["env_variable"])
        egg.variables.exclude(env_variable__in=seen).delete()
    return egg, created


def deployment_record(*, deployment_id: int, actor: Actor, reason: str) -> None:
    """Audit an operation that does not change the status (reinstall, password reset, ...)."""
    deployment = Deployment.objects.get(pk=deployment_id)
    DEPLOYMENT_STATES.note(deployment, actor=actor, reason=reason)


def deployment_update_spec(
    *,
    deployment_id: int,
    spec: dict[str, Any],
    plan_slug: str,
    plan_name: str,
    actor: Actor,
    reason: str,
) -> Deployment:
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().get(pk=deployment_id)
        deployment.spec, deployment.plan_slug, deployment.plan_name = spec, plan_slug, plan_name
        deployment.save(update_fields=["spec", "plan_slug", "plan_name", "updated_at"])
        deployment_record(deployment_id=deployment_id, actor=actor, reason=reason)
    return deployment


def deployment_final_backup_record(
    *, deployment_id: int, status: str, actor: Actor, reason: str, uuid: str | None = None
) -> Deployment:
    """Record the state of a terminated server's final backup on the panel, with a history
    row (the status is unchanged)."""
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().get(pk=deployment_id)
        deployment.final_backup_status = status
        fields = ["final_backup_status", "updated_at"]
        if uuid is not None:
            deployment.final_backup_uuid = uuid[:36]
            fields.append("final_backup_uuid")
        deployment.save(update_fields=fields)
        DEPLOYMENT_STATES.note(deployment, actor=actor, reason=reason)
    return deployment


def deployment_panel_server_deleted(*, deployment_id: int, actor: Actor, reason: str) -> Deployment:
    """A terminated server kept on the panel is deleted there now: forget its panel id and
    identifier and the due date (the uuid stays: a final backup is filed under it)."""
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().get(pk=deployment_id)
        deployment.panel_server_id = None
        deployment.panel_identifier = ""
        deployment.panel_deletion_due_at = None
        deployment.save(
            update_fields=[
                "panel_server_id",
                "panel_identifier",
                "panel_deletion_due_at",
                "updated_at",
            ]
        )
        DEPLOYMENT_STATES.note(deployment, actor=actor, reason=reason)
    return deployment
