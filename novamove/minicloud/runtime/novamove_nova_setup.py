"""Nova's database set-up in one process: api_db sync, cell0 mapping, cell1, db sync.

The same steps as four `nova-manage` runs, through nova-manage's own command classes, without
paying Nova's import time four times (seconds each on a small machine).

Usage: python novamove_nova_setup.py NOVA_CONF
"""

import sys

from nova.cmd import manage
from nova import config, context, objects


def main() -> int:
    conf = sys.argv[1]
    config.parse_args(["nova-manage", "--config-file", conf])
    objects.register_all()
    steps = [
        ("api_db sync", lambda: manage.ApiDbCommands().sync()),
        ("cell_v2 map_cell0", lambda: manage.CellV2Commands().map_cell0()),
        ("cell_v2 create_cell cell1", _ensure_cell1),
        ("db sync", lambda: manage.DbCommands().sync()),
    ]
    for name, step in steps:
        print("nova-manage " + name, flush=True)
        rc = step()
        if rc not in (None, 0):
            print("%s failed with %s" % (name, rc), flush=True)
            return 1
    return 0


def _ensure_cell1():
    cells = objects.CellMappingList.get_all(context.get_admin_context())
    if any(c.name == "cell1" for c in cells):
        return 0
    return manage.CellV2Commands().create_cell(name="cell1")


if __name__ == "__main__":
    sys.exit(main())
