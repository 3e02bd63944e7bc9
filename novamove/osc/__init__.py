"""The `openstack` CLI plugin: novamove's verbs as python-openstackclient (OSC) commands.

    openstack server move SERVER --to HOST [--live|--cold] [--wait|--no-wait] [--timeout N]
    openstack server migration wait SERVER
    openstack compute host drain HOST [HOST ...]
    openstack compute host undrain HOST [--move-back]

`plugin` is the `openstack.cli.extension` module OSC loads at start-up (kept import-light: OSC
imports it for every `openstack` command); `v1` holds the commands, which call novamove.api
only, with the connection OSC already made (see docs/osc.md).
"""
