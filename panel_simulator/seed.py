"""The simulator's default state: two locations, two nodes with free ports, a Minecraft nest
with the stock Paper egg, a Discord-bot nest with parkervcp's generic Node.js egg, an admin and
a non-admin user, and fixed demo API keys.

The egg variables, rules, images and startup commands are the real ones: Paper from
``pterodactyl/panel`` ``database/Seeders/eggs/minecraft/egg-paper.json``; the bot egg from
``parkervcp/eggs`` (``generic/nodejs/egg-node-js-generic.json``, 2024 export). The install
scripts are abridged (nothing runs them here). The keys are demo values for a local simulator,
not secrets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from panel_simulator.panel import Panel

# ptla_ + 11 + 32 characters, like a real application key. The portal's local settings default
# to DEMO_API_KEY so `make simulator` + `make run` work with no configuration.
DEMO_API_KEY = "ptla_SIMDEMOadm1" + "0123456789abcdefghijklmnopqrstuv"
# An application key whose owner is not a root admin: every call gets 403.
DEMO_NON_ADMIN_API_KEY = "ptla_SIMDEMOusr1" + "vutsrqponmlkjihgfedcba9876543210"
# A client (ptlc_) key of the root admin: power signals and live resources.
DEMO_CLIENT_API_KEY = "ptlc_SIMDEMOadm1" + "abcdefghijklmnopqrstuv0123456789"

PAPER_STARTUP = (
    "java -Xms128M -XX:MaxRAMPercentage=95.0 -Dterminal.jline=false -Dterminal.ansi=true "
    "-jar {{SERVER_JARFILE}}"
)
PAPER_INSTALL_SCRIPT = (
    "#!/bin/ash\r\n# Paper Installation Script\r\n#\r\n# Server Files: /mnt/server\r\n"
    'PROJECT=paper\r\n\r\nif [ -n "${DL_PATH}" ]; then\r\n'
    '\techo -e "Using supplied download url: ${DL_PATH}"\r\n'
    "\tDOWNLOAD_URL=`eval echo $(echo ${DL_PATH} | sed -e 's/{{/${/g' -e 's/}}/}/g')`\r\n"
    "else\r\n"
    "\tVER_EXISTS=`curl -s https://api.papermc.io/v2/projects/${PROJECT} | jq -r --arg VERSION "
    "$MINECRAFT_VERSION '.versions[] | contains($VERSION)' | grep -m1 true`\r\n"
    "\tLATEST_VERSION=`curl -s https://api.papermc.io/v2/projects/${PROJECT} | jq -r "
    "'.versions' | jq -r '.[-1]'`\r\n"
    "\t# ... (version/build resolution as in the stock egg) ...\r\n"
    "\tJAR_NAME=${PROJECT}-${MINECRAFT_VERSION}-${BUILD_NUMBER}.jar\r\n"
    "\tDOWNLOAD_URL=https://api.papermc.io/v2/projects/${PROJECT}/versions/${MINECRAFT_VERSION}"
    "/builds/${BUILD_NUMBER}/downloads/${JAR_NAME}\r\nfi\r\n\r\ncd /mnt/server\r\n\r\n"
    "curl -o ${SERVER_JARFILE} ${DOWNLOAD_URL}\r\n"
)
PAPER_VARIABLES: list[dict[str, Any]] = [
    {
        "name": "Minecraft Version",
        "description": (
            "The version of minecraft to download. \r\n\r\nLeave at latest to always get the "
            "latest version. Invalid versions will default to latest."
        ),
        "env_variable": "MINECRAFT_VERSION",
        "default_value": "latest",
        "user_viewable": True,
        "user_editable": True,
        "rules": "nullable|string|max:20",
    },
    {
        "name": "Server Jar File",
        "description": "The name of the server jarfile to run the server with.",
        "env_variable": "SERVER_JARFILE",
        "default_value": "server.jar",
        "user_viewable": True,
        "user_editable": True,
        "rules": r"required|regex:/^([\w\d._-]+)(\.jar)$/",
    },
    {
        "name": "Download Path",
        "description": (
            "A URL to use to download a server.jar rather than the ones in the install script. "
            "This is not user viewable."
        ),
        "env_variable": "DL_PATH",
        "default_value": "",
        "user_viewable": False,
        "user_editable": False,
        "rules": "nullable|string",
    },
    {
        "name": "Build Number",
        "description": (
            "The build number for the paper release.\r\n\r\nLeave at latest to always get the "
            "latest version. Invalid versions will default to latest."
        ),
        "env_variable": "BUILD_NUMBER",
        "default_value": "latest",
        "user_viewable": True,
        "user_editable": True,
        "rules": "required|string|max:20",
    },
]

NODE_STARTUP = (
    'if [[ -d .git ]] && [[ {{AUTO_UPDATE}} == "1" ]]; then git pull; fi; '
    "if [[ ! -z ${NODE_PACKAGES} ]]; then /usr/local/bin/npm install ${NODE_PACKAGES}; fi; "
    "if [[ ! -z ${UNNODE_PACKAGES} ]]; then /usr/local/bin/npm uninstall ${UNNODE_PACKAGES}; fi; "
    "if [ -f /home/container/package.json ]; then /usr/local/bin/npm install; fi; "
    'if [[ "${MAIN_FILE}" == "*.js" ]]; then /usr/local/bin/node "/home/container/${MAIN_FILE}" '
    '${NODE_ARGS}; else /usr/local/bin/ts-node --esm "/home/container/${MAIN_FILE}" ${NODE_ARGS}; '
    "fi"
)
NODE_INSTALL_SCRIPT = (
    "#!/bin/bash\r\n# NodeJS App Installation Script\r\n#\r\n# Server Files: /mnt/server\r\n"
    "apt update\r\napt install -y git curl jq file unzip make gcc g++ python3 python3-dev "
    "python3-pip libtool\r\n\r\nmkdir -p /mnt/server\r\ncd /mnt/server\r\n\r\n"
    'if [ "${USER_UPLOAD}" == "true" ] || [ "${USER_UPLOAD}" == "1" ]; then\r\n'
    '    echo -e "assuming user knows what they are doing have a good day."\r\n    exit 0\r\nfi\r\n'
    "\r\n# ... (git clone of ${GIT_ADDRESS} / ${BRANCH} as in the stock egg) ...\r\n\r\n"
    "if [ -f /mnt/server/package.json ]; then\r\n    /usr/local/bin/npm install --production\r\nfi"
    '\r\n\r\necho -e "install complete"\r\nexit 0'
)


def _var(name: str, env: str, default: str, rules: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "env_variable": env,
        "default_value": default,
        "user_viewable": True,
        "user_editable": True,
        "rules": rules,
    }


NODE_VARIABLES: list[dict[str, Any]] = [
    _var(
        "Git Repo Address",
        "GIT_ADDRESS",
        "",
        "nullable|string",
        "GitHub Repo to clone\r\n\r\nI.E. https://github.com/parkervcp/repo_name",
    ),
    _var("Install Branch", "BRANCH", "", "nullable|string", "The branch to install."),
    _var(
        "User Uploaded Files",
        "USER_UPLOAD",
        "0",
        "required|boolean",
        "Skip all the install stuff if you are letting a user upload files.\r\n\r\n"
        "0 = false (default)\r\n1 = true",
    ),
    _var(
        "Auto Update",
        "AUTO_UPDATE",
        "0",
        "required|boolean",
        "Pull the latest files on startup when using a GitHub repo.",
    ),
    _var(
        "Additional Node packages",
        "NODE_PACKAGES",
        "",
        "nullable|string",
        "Install additional node packages.\r\n\r\nUse spaces to separate.",
    ),
    _var("Git Username", "USERNAME", "", "nullable|string", "Username to auth with git."),
    _var(
        "Git Access Token",
        "ACCESS_TOKEN",
        "",
        "nullable|string",
        "Password to use with git.\r\n\r\nIt's best practice to use a Personal Access Token.",
    ),
    _var(
        "Uninstall Node packages",
        "UNNODE_PACKAGES",
        "",
        "nullable|string",
        "Uninstall node packages.\r\n\r\nUse spaces to separate.",
    ),
    _var(
        "Main file",
        "MAIN_FILE",
        "index.js",
        "required|string|max:16",
        "The file that starts the app.\r\nCan be .js and .ts",
    ),
    _var(
        "Additional Arguments.",
        "NODE_ARGS",
        "",
        "nullable|string|max:64",
        "Any extra arguments for nodejs or ts-node",
    ),
]


@dataclass(frozen=True)
class SeedInfo:
    """Ids and keys of the seeded objects (stable: every fresh simulator has the same)."""

    admin_api_key: str
    non_admin_api_key: str
    client_api_key: str
    admin_user_id: int
    non_admin_user_id: int
    eu_location_id: int
    us_location_id: int
    eu_node_id: int
    us_node_id: int
    minecraft_nest_id: int
    paper_egg_id: int
    bot_nest_id: int
    bot_egg_id: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_default(panel: Panel) -> SeedInfo:
    admin = panel.add_user(
        username="admin",
        email="admin@example.com",
        first_name="Panel",
        last_name="Admin",
        root_admin=True,
    )
    staff = panel.add_user(
        username="support",
        email="support@example.com",
        first_name="Support",
        last_name="Staff",
        root_admin=False,
    )
    panel.add_api_key(admin.id, token=DEMO_API_KEY)
    panel.add_api_key(staff.id, token=DEMO_NON_ADMIN_API_KEY)
    panel.add_api_key(admin.id, key_type="client", token=DEMO_CLIENT_API_KEY)

    eu = panel.add_location("eu", "Europe")
    us = panel.add_location("us", "United States")
    eu_node = panel.add_node(
        name="eu-fra-1",
        location_id=eu.id,
        fqdn="eu-fra-1.nodes.example.com",
        memory=65536,
        memory_overallocate=0,
        disk=512000,
        disk_overallocate=0,
        upload_size=100,
    )
    us_node = panel.add_node(
        name="us-nyc-1",
        location_id=us.id,
        fqdn="us-nyc-1.nodes.example.com",
        memory=32768,
        memory_overallocate=25,
        disk=256000,
        disk_overallocate=10,
        upload_size=100,
    )
    # Documentation address ranges (RFC 5737): never routable.
    panel.add_allocations(eu_node.id, "203.0.113.10", range(25565, 25601))
    panel.add_allocations(us_node.id, "198.51.100.10", range(25565, 25601))

    minecraft = panel.add_nest(
        author="support@pterodactyl.io",
        name="Minecraft",
        description=(
            "Minecraft - the classic game from Mojang. With support for Vanilla MC, Spigot, and "
            "many others!"
        ),
    )
    paper = panel.add_egg(
        nest_id=minecraft.id,
        author="parker@pterodactyl.io",
        name="Paper",
        description=(
            "High performance Spigot fork that aims to fix gameplay and mechanics inconsistencies."
        ),
        features=["eula", "java_version", "pid_limit"],
        docker_images={
            "Java 21": "ghcr.io/pterodactyl/yolks:java_21",
            "Java 17": "ghcr.io/pterodactyl/yolks:java_17",
            "Java 16": "ghcr.io/pterodactyl/yolks:java_16",
            "Java 11": "ghcr.io/pterodactyl/yolks:java_11",
            "Java 8": "ghcr.io/pterodactyl/yolks:java_8",
        },
        startup=PAPER_STARTUP,
        config_files={
            "server.properties": {
                "parser": "properties",
                "find": {
                    "server-ip": "0.0.0.0",  # noqa: S104 - egg config text, not a bind
                    "server-port": "{{server.build.default.port}}",
                    "query.port": "{{server.build.default.port}}",
                },
            }
        },
        config_startup={"done": ")! For help, type "},
        config_stop="stop",
        script_install=PAPER_INSTALL_SCRIPT,
        script_entry="ash",
        script_container="ghcr.io/pterodactyl/installers:alpine",
        variables=PAPER_VARIABLES,
    )
    bots = panel.add_nest(
        author="admin@example.com",
        name="Discord Bots",
        description="Discord bots (Node.js, from parkervcp/eggs).",
    )
    bot = panel.add_egg(
        nest_id=bots.id,
        author="parker@parkervcp.com",
        name="Node.js Discord Bot",
        description=(
            "a generic node.js egg\r\n\r\nThis will clone a git repo. it defaults to master if no "
            "branch is specified.\r\n\r\nInstalls the node_modules on install. If you set "
            "user_upload then I assume you know what you are doing."
        ),
        features=None,
        docker_images={
            "Nodejs 21": "ghcr.io/parkervcp/yolks:nodejs_21",
            "Nodejs 20": "ghcr.io/parkervcp/yolks:nodejs_20",
            "Nodejs 18": "ghcr.io/parkervcp/yolks:nodejs_18",
            "Nodejs 16": "ghcr.io/parkervcp/yolks:nodejs_16",
        },
        startup=NODE_STARTUP,
        config_startup={"done": ["change this text 1", "change this text 2"]},
        config_stop="^C",
        script_install=NODE_INSTALL_SCRIPT,
        script_entry="bash",
        script_container="node:18-bookworm-slim",
        variables=NODE_VARIABLES,
    )
    return SeedInfo(
        admin_api_key=DEMO_API_KEY,
        non_admin_api_key=DEMO_NON_ADMIN_API_KEY,
        client_api_key=DEMO_CLIENT_API_KEY,
        admin_user_id=admin.id,
        non_admin_user_id=staff.id,
        eu_location_id=eu.id,
        us_location_id=us.id,
        eu_node_id=eu_node.id,
        us_node_id=us_node.id,
        minecraft_nest_id=minecraft.id,
        paper_egg_id=paper.id,
        bot_nest_id=bots.id,
        bot_egg_id=bot.id,
    )
