"""Every variable the settings read is documented in .env.example, with a comment."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_env_example_with_a_comment():
    read = set()
    for path in (ROOT / "config").rglob("*.py"):
        read |= set(re.findall(r"env(?:\.\w+)?\(\s*\"([A-Z][A-Z0-9_]+)\"", path.read_text()))
    lines = (ROOT / ".env.example").read_text().splitlines()
    documented = {}
    for index, line in enumerate(lines):
        match = re.match(r"([A-Z][A-Z0-9_]+)=", line)
        if match:
            documented[match.group(1)] = lines[index - 1].startswith("#")
    missing = sorted(read - set(documented))
    uncommented = sorted(name for name, has_comment in documented.items() if not has_comment)
    assert read, "no env() calls found: the pattern is wrong"
    assert missing == []
    assert uncommented == []
    # The seeds' names and the package overrides are there.
    for name in [
        "PTERODACTYL_URL",
        "PTERODACTYL_ADMIN_API_KEY",
        "DEFAULT_NODE_ID",
        "BASE_PORT",
        "PTERODACTYL_EMAIL_DOMAIN",
        "BRONZE_EGG_ID",
        "BRONZE_DOCKER_IMAGE",
        "BRONZE_STARTUP",
        "PROVISIONING_QUEUE_SIZE",
        "SUSPENSION_GRACE_DAYS",
    ]:
        assert name in documented
