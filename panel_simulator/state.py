"""The simulator's tables: plain mutable rows, one dataclass per panel model.

Column names follow the panel's database (``owner_id``, ``uuid_short``, ``ip_alias``...); the
transformers in ``api.py`` turn them into the API's attribute names. Fields after
``# simulator-only`` do not exist on the panel: they drive Wings, the install lifecycle and
power state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Application API key ACL resources (ApiKey r_* columns) and their bits.
ACL_RESOURCES = (
    "servers",
    "nodes",
    "allocations",
    "users",
    "locations",
    "nests",
    "eggs",
    "database_hosts",
    "server_databases",
)
READ = 1
WRITE = 2

STATUS_INSTALLING = "installing"
STATUS_INSTALL_FAILED = "install_failed"
STATUS_REINSTALL_FAILED = "reinstall_failed"
STATUS_SUSPENDED = "suspended"
STATUS_RESTORING_BACKUP = "restoring_backup"


@dataclass
class UserRow:
    id: int
    uuid: str
    username: str
    email: str
    first_name: str
    last_name: str
    external_id: str | None = None
    language: str = "en"
    root_admin: bool = False
    use_totp: bool = False
    # Never rendered; kept so tests can check that an update without password keeps it.
    password: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass
class LocationRow:
    id: int
    short: str
    long: str | None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass
class NodeRow:
    id: int
    uuid: str
    name: str
    location_id: int
    fqdn: str
    memory: int
    disk: int
    public: bool = True
    description: str | None = None
    scheme: str = "https"
    behind_proxy: bool = False
    maintenance_mode: bool = False
    memory_overallocate: int = 0
    disk_overallocate: int = 0
    upload_size: int = 100
    daemon_listen: int = 8080
    daemon_sftp: int = 2022
    daemon_base: str = "/var/lib/pterodactyl/volumes"
    daemon_token_id: str = ""
    daemon_token: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    # simulator-only: Wings on this node. None = healthy; 0 = no answer at all (504);
    # any other number = Wings answers with that HTTP status.
    wings_failure: int | None = None


@dataclass
class AllocationRow:
    id: int
    node_id: int
    ip: str
    port: int
    ip_alias: str | None = None
    server_id: int | None = None
    notes: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass
class NestRow:
    id: int
    uuid: str
    author: str
    name: str
    description: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass
class EggVariableRow:
    id: int
    egg_id: int
    name: str
    description: str
    env_variable: str
    default_value: str
    user_viewable: bool
    user_editable: bool
    rules: str
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass
class EggRow:
    id: int
    uuid: str
    nest_id: int
    author: str
    name: str
    description: str | None
    docker_images: dict[str, str]
    startup: str
    features: list[str] | None = None
    file_denylist: list[str] = field(default_factory=list)
    config_files: dict[str, Any] = field(default_factory=dict)
    config_startup: dict[str, Any] = field(default_factory=dict)
    config_logs: dict[str, Any] = field(default_factory=dict)
    config_stop: str = "stop"
    config_from: int | None = None
    script_install: str = ""
    script_entry: str = "ash"
    script_container: str = "alpine:3.4"
    script_is_privileged: bool = True
    copy_script_from: int | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    # simulator-only: the install script "fails" for servers of this egg.
    fail_install: bool = False


@dataclass
class ServerRow:
    id: int
    uuid: str
    uuid_short: str
    name: str
    owner_id: int
    node_id: int
    allocation_id: int
    nest_id: int
    egg_id: int
    memory: int
    swap: int
    disk: int
    io: int
    cpu: int
    startup: str
    image: str
    external_id: str | None = None
    description: str = ""
    status: str | None = STATUS_INSTALLING
    skip_scripts: bool = False
    threads: str | None = None
    oom_disabled: bool = True
    allocation_limit: int | None = 0
    database_limit: int | None = 0
    backup_limit: int | None = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    # egg variable id -> stored value (server_variables table)
    variables: dict[int, str] = field(default_factory=dict)
    # simulator-only: install lifecycle, transfer flag and power state.
    install_due_at: float | None = None
    install_kind: str = "install"  # or "reinstall"
    start_on_completion: bool = False
    transferring: bool = False
    power_state: str = "offline"
    started_at: float | None = None


@dataclass
class BackupRow:
    """The panel's ``backups`` table (app/Models/Backup.php: is_successful and is_locked false,
    checksum null, bytes 0 until Wings reports completion)."""

    id: int
    server_id: int
    uuid: str
    name: str
    ignored_files: list[str] = field(default_factory=list)
    disk: str = "wings"
    is_successful: bool = False
    is_locked: bool = False
    checksum: str | None = None
    bytes: int = 0
    completed_at: float | None = None
    deleted_at: float | None = None  # soft delete: still counted by the creation throttle
    created_at: float = 0.0
    updated_at: float = 0.0
    # simulator-only: when Wings "finishes" it, and whether it fails.
    complete_due_at: float | None = None
    will_fail: bool = False


@dataclass
class ApiKeyRow:
    id: int
    user_id: int
    identifier: str  # the first 16 characters of the token (ptla_ + 11)
    secret: str  # the remaining 32 characters
    key_type: str = "application"  # or "client" (ptlc_)
    allowed_ips: list[str] = field(default_factory=list)
    acl: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACL_RESOURCES, READ | WRITE))
    memo: str = ""
    expires_at: float | None = None
    last_used_at: float | None = None

    @property
    def token(self) -> str:
        return self.identifier + self.secret
