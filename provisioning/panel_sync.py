"""Importing the panel's locations, nodes, nests and eggs into our mirror tables."""

from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from provisioning.pterodactyl import PterodactylClient
from servers.models import Egg, Location, Nest, Node
from servers.services import egg_upsert, location_upsert, node_upsert


@dataclass
class SyncReport:
    created: dict[str, list[str]] = field(default_factory=dict)
    updated: dict[str, list[str]] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    missing_on_panel: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, name: str, *, created: bool, changed: bool) -> None:
        if created:
            self.created.setdefault(kind, []).append(name)
        elif changed:
            self.updated.setdefault(kind, []).append(name)
        else:
            self.unchanged[kind] = self.unchanged.get(kind, 0) + 1

    def lines(self) -> list[str]:
        out = []
        for kind in ("locations", "nodes", "eggs"):
            out.append(
                f"{kind}: {len(self.created.get(kind, []))} created "
                f"{self.created.get(kind, []) or ''}, {len(self.updated.get(kind, []))} updated "
                f"{self.updated.get(kind, []) or ''}, {self.unchanged.get(kind, 0)} unchanged"
            )
            if self.missing_on_panel.get(kind):
                out.append(f"  not on the panel any more: {', '.join(self.missing_on_panel[kind])}")
        return out


def _changed(instance: object | None, values: dict) -> bool:
    return instance is None or any(getattr(instance, k) != v for k, v in values.items())


def egg_mirror_values(egg: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A panel egg as our mirror stores it: the egg's fields and its variables."""
    fields = {
        "name": egg.name,
        "description": egg.description or "",
        "docker_image": egg.docker_image or "",
        "docker_images": dict(egg.docker_images),
        "startup": egg.startup,
    }
    variables = [
        {
            "env_variable": v.env_variable,
            "name": v.name,
            "description": v.description,
            "default_value": v.default_value,
            "user_viewable": v.user_viewable,
            "user_editable": v.user_editable,
            "rules": v.rules,
        }
        for v in egg.variables or ()
    ]
    return fields, variables


def egg_mirror_refresh(*, client: PterodactylClient, nest_id: int, egg_id: int) -> None:
    """Read one egg (with its variables) from the panel into the mirror: one request."""
    egg = client.get_egg(nest_id, egg_id)
    fields, variables = egg_mirror_values(egg)
    nest = Nest.objects.filter(panel_id=nest_id).first()
    egg_upsert(
        nest_panel_id=nest_id,
        nest_name=nest.name if nest else f"Nest #{nest_id}",
        egg_panel_id=egg.id,
        egg_fields=fields,
        variables=variables,
    )


def node_reading_store(*, panel_node: Any, reading_started: Any) -> int:
    """Store one panel reading of a node's capacity in the mirror (placement and checkout read
    capacity from there). `reading_started`: when the read began, so a server created while it
    ran is still counted as in flight."""
    return Node.objects.filter(panel_id=panel_node.id).update(
        memory_mb=panel_node.memory,
        memory_overallocate_percent=panel_node.memory_overallocate,
        disk_mb=panel_node.disk,
        disk_overallocate_percent=panel_node.disk_overallocate,
        allocated_memory_mb=panel_node.allocated_resources.memory,
        allocated_disk_mb=panel_node.allocated_resources.disk,
        maintenance_mode=panel_node.maintenance_mode,
        synced_at=reading_started,
    )


def node_readings_refresh(*, client: PterodactylClient) -> int:
    """Read every node's capacity in one list request (100 nodes a page) into the mirror: the
    periodic job that lets placement cost no request. Returns the nodes updated."""
    reading_started = timezone.now()
    return sum(
        node_reading_store(panel_node=node, reading_started=reading_started)
        for node in client.list_nodes()
    )


def panel_sync(*, client: PterodactylClient) -> SyncReport:
    """Mirror the panel's catalogue of places and software. Idempotent; deletes nothing."""
    report = SyncReport()
    locations = client.list_locations()
    by_panel_id: dict[int, Location] = {}
    for loc in locations:
        existing = Location.objects.filter(short_code=loc.short).first()
        values = {"long_name": loc.long or "", "panel_id": loc.id}
        changed = _changed(existing, values)
        if existing is None or changed:
            Location.objects.filter(panel_id=loc.id).exclude(short_code=loc.short).update(
                panel_id=None
            )
        location, created = location_upsert(short_code=loc.short, **values)
        by_panel_id[loc.id] = location
        report.note("locations", loc.short, created=created, changed=changed)
    report.missing_on_panel["locations"] = list(
        Location.objects.exclude(panel_id__in=list(by_panel_id)).values_list(
            "short_code", flat=True
        )
    )

    seen_nodes = []
    # One moment for all readings: a server created after it is counted by placement as an
    # in-flight reservation (list_nodes holds every node's allocated resources as of now).
    reading_started = timezone.now()
    for node in client.list_nodes():
        free = len(client.list_free_allocations(node.id))
        values = {
            "name": node.name,
            "location": by_panel_id.get(node.location_id),
            "fqdn": node.fqdn,
            "is_public": node.public,
            "maintenance_mode": node.maintenance_mode,
            "memory_mb": node.memory,
            "memory_overallocate_percent": node.memory_overallocate,
            "disk_mb": node.disk,
            "disk_overallocate_percent": node.disk_overallocate,
            "allocated_memory_mb": node.allocated_resources.memory,
            "allocated_disk_mb": node.allocated_resources.disk,
            "free_allocations": free,
        }
        if values["location"] is None:
            continue
        existing = Node.objects.filter(panel_id=node.id).first()
        changed = _changed(existing, values)
        node_upsert(panel_id=node.id, **values)
        Node.objects.filter(panel_id=node.id).update(synced_at=reading_started)
        report.note("nodes", node.name, created=existing is None, changed=changed)
        seen_nodes.append(node.id)
    report.missing_on_panel["nodes"] = list(
        Node.objects.exclude(panel_id__in=seen_nodes).values_list("name", flat=True)
    )

    seen_eggs = []
    for nest in client.list_nests():
        for egg in client.list_eggs(nest.id):
            fields, variables = egg_mirror_values(egg)
            existing = Egg.objects.filter(panel_id=egg.id).first()
            before = (
                None
                if existing is None
                else (
                    {k: getattr(existing, k) for k in fields},
                    sorted(
                        existing.variables.values_list("env_variable", "rules", "default_value")
                    ),
                )
            )
            egg_upsert(
                nest_panel_id=nest.id,
                nest_name=nest.name,
                egg_panel_id=egg.id,
                egg_fields=fields,
                variables=variables,
            )
            after = (
                fields,
                sorted((v["env_variable"], v["rules"], v["default_value"]) for v in variables),
            )
            report.note("eggs", egg.name, created=existing is None, changed=before != after)
            seen_eggs.append(egg.id)
    report.missing_on_panel["eggs"] = list(
        Egg.objects.exclude(panel_id__in=seen_eggs).values_list("name", flat=True)
    )
    return report
