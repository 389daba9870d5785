"""Demo locations, nodes and eggs, used until `sync_panel` has imported the real ones.

Ids match the panel simulator's seed, so a demo order provisions against it unchanged.
"""

from typing import Any

from django.db import transaction

from servers.models import Location
from servers.services import egg_upsert, location_upsert, node_upsert

PAPER_NEST_ID, PAPER_EGG_ID = 1, 1
DISCORD_NEST_ID, DISCORD_EGG_ID = 5, 15

DEMO_LOCATIONS = [
    {"short_code": "eu", "long_name": "Europe", "panel_id": 1},
    {"short_code": "us", "long_name": "United States", "panel_id": 2},
]

DEMO_NODES = [
    {
        "panel_id": 1,
        "name": "eu-node-1",
        "location": "eu",
        "fqdn": "eu1.nodes.example.com",
        "memory_mb": 65536,
        "disk_mb": 1048576,
        "free_allocations": 36,
    },
    {
        "panel_id": 2,
        "name": "us-node-1",
        "location": "us",
        "fqdn": "us1.nodes.example.com",
        "memory_mb": 65536,
        "disk_mb": 1048576,
        "free_allocations": 36,
    },
]

DEMO_EGGS: list[dict[str, Any]] = [
    {
        "nest_panel_id": PAPER_NEST_ID,
        "nest_name": "Minecraft",
        "egg_panel_id": PAPER_EGG_ID,
        "egg_fields": {
            "name": "Paper",
            "docker_image": "ghcr.io/pterodactyl/yolks:java_17",
            "docker_images": {"Java 17": "ghcr.io/pterodactyl/yolks:java_17"},
            "startup": "java -Xms128M -Xmx{{SERVER_MEMORY}}M -Dterminal.jline=false "
            "-Dterminal.ansi=true -jar {{SERVER_JARFILE}}",
        },
        "variables": [
            {
                "env_variable": "MINECRAFT_VERSION",
                "name": "Minecraft Version",
                "rules": "nullable|string|max:20",
                "default_value": "latest",
            },
            {
                "env_variable": "SERVER_JARFILE",
                "name": "Server Jar File",
                "rules": r"required|regex:/^([\w\d._-]+)(\.jar)$/",
                "default_value": "server.jar",
            },
            {
                "env_variable": "DL_PATH",
                "name": "Download Path",
                "rules": "nullable|string",
                "default_value": "",
                "user_viewable": False,
                "user_editable": False,
            },
            {
                "env_variable": "BUILD_NUMBER",
                "name": "Build Number",
                "rules": "required|string|max:20",
                "default_value": "latest",
            },
        ],
    },
    {
        "nest_panel_id": DISCORD_NEST_ID,
        "nest_name": "Discord Bots",
        "egg_panel_id": DISCORD_EGG_ID,
        "egg_fields": {
            "name": "Node.js Discord Bot",
            "docker_image": "ghcr.io/parkervcp/yolks:nodejs_22",
            "docker_images": {"Node.js 22": "ghcr.io/parkervcp/yolks:nodejs_22"},
            "startup": "node index.js",
        },
        "variables": [
            {
                "env_variable": "DISCORD_GUILD_ID",
                "name": "Discord Guild ID",
                "rules": "nullable|string|max:20",
                "default_value": "",
            },
            {
                "env_variable": "MAIN_FILE",
                "name": "Main File",
                "rules": "required|string|max:64",
                "default_value": "index.js",
            },
            {
                "env_variable": "TIER",
                "name": "Tier",
                "rules": "nullable|string|max:20",
                "default_value": "",
                "user_editable": False,
            },
        ],
    },
]


def demo_servers_seed() -> dict[str, int]:
    """Create the demo locations, nodes and eggs if missing; safe to run again."""
    created = {"locations": 0, "nodes": 0, "eggs": 0}
    with transaction.atomic():
        for data in DEMO_LOCATIONS:
            if Location.objects.filter(short_code=data["short_code"]).exists():
                continue
            location_upsert(**data)
            created["locations"] += 1
        for data in DEMO_NODES:
            fields = dict(data)
            location = Location.objects.get(short_code=fields.pop("location"))
            _, was_created = node_upsert(location=location, **fields)
            created["nodes"] += int(was_created)
        for data in DEMO_EGGS:
            _, was_created = egg_upsert(**data)
            created["eggs"] += int(was_created)
    return created
