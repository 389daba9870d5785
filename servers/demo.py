"""Demo locations, nodes and eggs, used until `sync_panel` has imported the real ones.

Ids match the panel simulator's seed, so a demo order provisions against it unchanged.
"""

from typing import Any

from django.db import transaction

from servers.models import Egg, Location, Nest, Node
from servers.services import egg_upsert, location_upsert, node_upsert

PAPER_NEST_ID, PAPER_EGG_ID = 1, 1
DISCORD_NEST_ID, DISCORD_EGG_ID = 2, 2

DEMO_LOCATIONS = [
    {"short_code": "eu", "long_name": "Europe", "panel_id": 1},
    {"short_code": "us", "long_name": "United States", "panel_id": 2},
]

DEMO_NODES = [
    {
        "panel_id": 1,
        "name": "eu-fra-1",
        "location": "eu",
        "fqdn": "eu-fra-1.nodes.example.com",
        "memory_mb": 65536,
        "memory_overallocate_percent": 0,
        "disk_mb": 512000,
        "disk_overallocate_percent": 0,
        "free_allocations": 36,
    },
    {
        "panel_id": 2,
        "name": "us-nyc-1",
        "location": "us",
        "fqdn": "us-nyc-1.nodes.example.com",
        "memory_mb": 32768,
        "memory_overallocate_percent": 25,
        "disk_mb": 256000,
        "disk_overallocate_percent": 10,
        "free_allocations": 36,
    },
]


def _var(env: str, name: str, rules: str, default: str = "", **flags: bool) -> dict[str, Any]:
    return {"env_variable": env, "name": name, "rules": rules, "default_value": default, **flags}


DEMO_EGGS: list[dict[str, Any]] = [
    {
        "nest_panel_id": PAPER_NEST_ID,
        "nest_name": "Minecraft",
        "egg_panel_id": PAPER_EGG_ID,
        "egg_fields": {
            "name": "Paper",
            "docker_image": "ghcr.io/pterodactyl/yolks:java_21",
            "docker_images": {
                "Java 21": "ghcr.io/pterodactyl/yolks:java_21",
                "Java 17": "ghcr.io/pterodactyl/yolks:java_17",
            },
            "startup": "java -Xms128M -XX:MaxRAMPercentage=95.0 -Dterminal.jline=false "
            "-Dterminal.ansi=true -jar {{SERVER_JARFILE}}",
        },
        "variables": [
            _var("MINECRAFT_VERSION", "Minecraft Version", "nullable|string|max:20", "latest"),
            _var(
                "SERVER_JARFILE",
                "Server Jar File",
                r"required|regex:/^([\w\d._-]+)(\.jar)$/",
                "server.jar",
            ),
            _var(
                "DL_PATH",
                "Download Path",
                "nullable|string",
                "",
                user_viewable=False,
                user_editable=False,
            ),
            _var("BUILD_NUMBER", "Build Number", "required|string|max:20", "latest"),
        ],
    },
    {
        "nest_panel_id": DISCORD_NEST_ID,
        "nest_name": "Discord Bots",
        "egg_panel_id": DISCORD_EGG_ID,
        "egg_fields": {
            "name": "Node.js Discord Bot",
            "docker_image": "ghcr.io/parkervcp/yolks:nodejs_21",
            "docker_images": {"Nodejs 21": "ghcr.io/parkervcp/yolks:nodejs_21"},
            "startup": "node /home/container/${MAIN_FILE} ${NODE_ARGS}",
        },
        "variables": [
            _var("GIT_ADDRESS", "Git Repo Address", "nullable|string"),
            _var("BRANCH", "Install Branch", "nullable|string"),
            _var("USER_UPLOAD", "User Uploaded Files", "required|boolean", "0"),
            _var("AUTO_UPDATE", "Auto Update", "required|boolean", "0"),
            _var("NODE_PACKAGES", "Additional Node packages", "nullable|string"),
            _var("USERNAME", "Git Username", "nullable|string"),
            _var("ACCESS_TOKEN", "Git Access Token", "nullable|string"),
            _var("UNNODE_PACKAGES", "Uninstall Node packages", "nullable|string"),
            _var("MAIN_FILE", "Main file", "required|string|max:16", "index.js"),
            _var("NODE_ARGS", "Additional Arguments.", "nullable|string|max:64"),
        ],
    },
]


def demo_servers_seed() -> dict[str, int]:
    """Create the demo locations, nodes and eggs, on an empty mirror only: once `sync_panel`
    (or staff) put real rows there, nothing is created or overwritten (a demo node must never
    replace a real one sharing its panel id). Safe to run again. Returns what was created,
    and under "skipped" why not."""
    created = {"locations": 0, "nodes": 0, "eggs": 0}
    with transaction.atomic():
        if not (Location.objects.exists() or Node.objects.exists()):
            for data in DEMO_LOCATIONS:
                location_upsert(**data)
                created["locations"] += 1
            for data in DEMO_NODES:
                fields = dict(data)
                location = Location.objects.get(short_code=fields.pop("location"))
                node_upsert(location=location, **fields)
                created["nodes"] += 1
        if not (Egg.objects.exists() or Nest.objects.exists()):
            for data in DEMO_EGGS:
                egg_upsert(**data)
                created["eggs"] += 1
    return created
