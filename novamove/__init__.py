"""novamove: move OpenStack instances to the compute node you name.

Layout (each layer only calls the ones below it):
  novamove.cloud       the cloud adapter: the only code that imports openstacksdk
  novamove.model       domain model: services, hosts, servers, migrations, plans
  novamove.engine.single.strategies  how one server reaches its target (native API targeting, isolate)
  novamove.engine      runs moves and plans: waits, journals, recovers
  novamove.planner     capacity-aware placement of many servers
  novamove.cli         the command line (thin: parse, call, render)
  novamove.minicloud   a real Nova control plane on loopback for trying and testing
"""

# The one place the version is written: pyproject.toml reads it (dynamic version), galaxy.yml
# and the collection's version_added / changelogs must agree (tests/unit/test_version.py).
# SemVer policy: docs/versioning.md.
__version__ = "0.2.0"
