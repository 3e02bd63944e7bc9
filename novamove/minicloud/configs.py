"""Configuration files of the minicloud's services, rendered from one Layout.

Only what differs from the services' defaults is written, each with the reason when it is not
obvious. Every listener is on 127.0.0.1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

REGION = "RegionOne"
SERVICE_USERS = ("nova", "placement", "glance", "neutron")


@dataclass
class Layout:
    """Paths, ports and generated secrets of one minicloud; derived from its state directory."""
    state: Path
    base_port: int
    computes: int
    secrets: dict = field(default_factory=dict)   # name -> password, saved 0600 in settings.json

    # ports
    @property
    def keystone_port(self) -> int: return self.base_port
    @property
    def placement_port(self) -> int: return self.base_port + 1
    @property
    def nova_port(self) -> int: return self.base_port + 2
    @property
    def glance_port(self) -> int: return self.base_port + 3
    @property
    def network_port(self) -> int: return self.base_port + 4
    @property
    def mysql_port(self) -> int: return self.base_port + 5
    @property
    def rabbit_port(self) -> int: return self.base_port + 6
    @property
    def rabbit_dist_port(self) -> int: return self.base_port + 7
    @property
    def epmd_port(self) -> int: return self.base_port + 8

    # paths
    @property
    def etc(self) -> Path: return self.state / "etc"
    @property
    def logs(self) -> Path: return self.state / "log"
    @property
    def run(self) -> Path: return self.state / "run"
    @property
    def pylib(self) -> Path: return self.state / "pylib"
    @property
    def mysql_socket(self) -> Path: return self.run / "mysqld.sock"
    @property
    def clouds_yaml(self) -> Path: return self.state / "clouds.yaml"
    @property
    def fakevirt_control(self) -> Path: return self.state / "fakevirt.json"

    def url(self, port: int, path: str = "") -> str:
        return f"http://127.0.0.1:{port}{path}"

    @property
    def auth_url(self) -> str: return self.url(self.keystone_port, "/v3")

    def db(self, name: str) -> str:
        return (f"mysql+pymysql://novamove:{self.secrets['mysql']}@127.0.0.1:{self.mysql_port}/{name}"
                "?charset=utf8")

    @property
    def transport_url(self) -> str:
        return f"rabbit://novamove:{self.secrets['rabbit']}@127.0.0.1:{self.rabbit_port}/"

    def compute_host(self, i: int) -> str:
        return f"compute{i}"


DATABASES = ("keystone", "placement", "glance", "nova_api", "nova", "nova_cell0")


def mysql_setup_sql(lay: Layout) -> str:
    """Fed to the mariadb client on stdin, so the password never shows up in argv."""
    dbs = "".join(f"CREATE DATABASE IF NOT EXISTS {d} CHARACTER SET utf8mb4;\n" for d in DATABASES)
    pw = lay.secrets["mysql"]
    return (dbs +
            f"CREATE USER IF NOT EXISTS 'novamove'@'127.0.0.1' IDENTIFIED BY '{pw}';\n"
            "GRANT ALL PRIVILEGES ON *.* TO 'novamove'@'127.0.0.1';\nFLUSH PRIVILEGES;\n")


def _authtoken(lay: Layout, user: str) -> str:
    return f"""
[keystone_authtoken]
www_authenticate_uri = {lay.auth_url}
auth_url = {lay.auth_url}
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = {user}
password = {lay.secrets[user]}
service_token_roles_required = true
"""


def _keystone_client(lay: Layout, section: str, user: str) -> str:
    return f"""
[{section}]
auth_url = {lay.auth_url}
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = {user}
password = {lay.secrets[user]}
region_name = {REGION}
"""


def keystone_conf(lay: Layout) -> str:
    k = lay.state / "keystone"
    return f"""[DEFAULT]
log_file = {lay.logs / 'keystone.log'}
[database]
connection = {lay.db('keystone')}
[token]
provider = fernet
[fernet_tokens]
key_repository = {k / 'fernet-keys'}
[fernet_receipts]
key_repository = {k / 'fernet-keys'}
[credential]
key_repository = {k / 'credential-keys'}
[cache]
# Without a cache every token validation walks role assignments in SQL (~0.7 s a request on
# 2 cores). Keystone is one process here, so an in-process cache stays coherent.
enabled = true
backend = oslo_cache.dict
[identity]
# bcrypt's minimum cost: every service login hashes a password, and on 2 cores the default
# cost (12) adds seconds to start-up. A throwaway loopback cloud needs no brute-force margin.
password_hash_rounds = 4
"""


def placement_conf(lay: Layout) -> str:
    return f"""[DEFAULT]
log_file = {lay.logs / 'placement.log'}
[api]
auth_strategy = keystone
[placement_database]
connection = {lay.db('placement')}
""" + _authtoken(lay, "placement")


def glance_conf(lay: Layout, paste_ini: Path) -> str:
    g = lay.state / "glance"
    return f"""[DEFAULT]
log_file = {lay.logs / 'glance.log'}
enabled_backends = fs:file
workers = 1
[database]
connection = {lay.db('glance')}
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = {g / 'images'}
[os_glance_staging_store]
filesystem_store_datadir = {g / 'staging'}
[os_glance_tasks_store]
filesystem_store_datadir = {g / 'tasks'}
[paste_deploy]
flavor = keystone
config_file = {paste_ini}
[oslo_concurrency]
lock_path = {g / 'lock'}
""" + _authtoken(lay, "glance")


def nova_conf(lay: Layout, api_paste_ini: Path) -> str:
    """Shared by nova-api, conductor, scheduler and every compute (computes add their own file)."""
    n = lay.state / "nova"
    return f"""[DEFAULT]
transport_url = {lay.transport_url}
state_path = {n}
my_ip = 127.0.0.1
host = controller
enabled_apis = osapi_compute
# The project-owned fake driver (runtime/novamove_fakevirt.py, copied into nova.virt).
compute_driver = novamove_fakevirt.NovamoveFakeDriver
# Fast feedback: a stopped compute shows "down" after 20 s instead of 60 s.
report_interval = 5
service_down_time = 20
# Periodic tasks (the scheduler's host discovery among them) start after a random delay of up
# to 60 s by default; here they start at once so new computes are schedulable in seconds.
periodic_fuzzy_delay = 0
# Live migrations with the fake driver report progress quickly.
instance_build_timeout = 0
heal_instance_info_cache_interval = -1
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = {api_paste_ini}
[api_database]
connection = {lay.db('nova_api')}
max_pool_size = 5
[database]
connection = {lay.db('nova')}
max_pool_size = 5
[conductor]
workers = 1
[scheduler]
workers = 1
# New computes are mapped to the cell by the scheduler, no nova-manage call needed.
discover_hosts_in_cells_interval = 2
[oslo_concurrency]
lock_path = {n / 'lock'}
[oslo_messaging_notifications]
driver = noop
[notifications]
notification_format = unversioned
[oslo_messaging_rabbit]
heartbeat_timeout_threshold = 0
[glance]
region_name = {REGION}
[cinder]
os_region_name = {REGION}
[os_vif_ovs]
[vnc]
enabled = false
[spice]
enabled = false
[serial_console]
enabled = false
[upgrade_levels]
compute = auto
[quota]
# A test bed shared by many test servers: the default 10 instances per project is too few.
instances = -1
cores = -1
ram = -1
""" + _authtoken(lay, "nova") \
        + _keystone_client(lay, "placement", "placement") \
        + _keystone_client(lay, "neutron", "neutron") \
        + _keystone_client(lay, "service_user", "nova").replace(
            "[service_user]", "[service_user]\nsend_service_user_token = true")


def compute_conf(lay: Layout, i: int) -> str:
    """Per-compute overrides: its own host name and state (a shared state_path breaks builds)."""
    c = lay.state / lay.compute_host(i)
    return f"""[DEFAULT]
host = {lay.compute_host(i)}
state_path = {c}
instances_path = {c / 'instances'}
# Nova 34 computes default to native threads; the fake driver's long-running live migration
# must share the process with the abort/force-complete RPC handlers, which eventlet gives us.
concurrency_backend = eventlet
# Nova's default is 1 live migration at a time per source compute, queueing the rest; a
# maintenance-tuned cloud runs several, and drains with caps above 1 are tested against that.
max_concurrent_live_migrations = 4
[oslo_concurrency]
lock_path = {c / 'lock'}
"""


def clouds_yaml(lay: Layout) -> str:
    def cloud(name: str, user: str, project: str, password: str) -> str:
        return f"""  {name}:
    auth:
      auth_url: {lay.auth_url}
      username: {user}
      password: "{password}"
      project_name: {project}
      user_domain_name: Default
      project_domain_name: Default
    region_name: {REGION}
    identity_api_version: 3
    interface: public
"""
    return ("clouds:\n" + cloud("minicloud", "admin", "admin", lay.secrets["admin"])
            + cloud("minicloud-member", "member", "demo", lay.secrets["member"]))
