"""Keystone's set-up in one process: db_sync, fernet_setup, credential_setup, bootstrap.

The same steps as four `keystone-manage` runs, through keystone-manage's own entry point, without
paying Keystone's import time four times. The admin password comes from OS_BOOTSTRAP_PASSWORD in
the environment, as keystone-manage reads it, never from argv.

Usage: python novamove_keystone_setup.py KEYSTONE_CONF URL REGION
"""

import sys

from keystone.cmd import cli
from keystone.conf import CONF


def main() -> int:
    conf, url, region = sys.argv[1:4]
    base = ["keystone-manage", "--config-file", conf]
    commands = [
        ["db_sync"],
        ["fernet_setup", "--keystone-user", "root", "--keystone-group", "root"],
        ["credential_setup", "--keystone-user", "root", "--keystone-group", "root"],
        ["bootstrap", "--bootstrap-username", "admin", "--bootstrap-project-name", "admin",
         "--bootstrap-role-name", "admin", "--bootstrap-service-name", "keystone",
         "--bootstrap-region-id", region, "--bootstrap-admin-url", url,
         "--bootstrap-internal-url", url, "--bootstrap-public-url", url],
    ]
    for command in commands:
        print("keystone-manage " + command[0], flush=True)
        CONF.clear()          # let keystone-manage parse its next command line
        CONF.unregister_opt(cli.command_opt)
        cli.main(argv=base + command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
