#!/usr/bin/env bash
# The main job on the embedded minicloud: bring it up with three servers, then move one of
# them to a host it is not on, and show the result.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
$BIN/novamove minicloud up --computes 3 >/dev/null
eval "$($BIN/novamove minicloud env)"
count=$($BIN/python - <<'PY'
import openstack
conn = openstack.connect(cloud="minicloud")
print(sum(1 for s in conn.compute.servers(all_projects=True) if s.name.startswith("demo-")))
PY
)
[ "$count" -ge 3 ] || $BIN/novamove minicloud boot 3
$BIN/openstack compute service list --service nova-compute
$BIN/openstack server list --all-projects --long -c Name -c Status -c Host
if $BIN/novamove migrate --help >/dev/null 2>&1; then
  # Move demo-1 to the next compute over, whichever that is right now.
  target=$($BIN/python - <<'PY'
import openstack
conn = openstack.connect(cloud="minicloud")
server = conn.compute.find_server("demo-1", all_projects=True)
hosts = sorted(s.host for s in conn.compute.services(binary="nova-compute"))
print(hosts[(hosts.index(server.compute_host) + 1) % len(hosts)])
PY
)
  $BIN/novamove migrate demo-1 --to "$target"
fi
echo
echo "The minicloud keeps running. Try:  eval \"\$($BIN/novamove minicloud env)\"; $BIN/novamove --help"
echo "Stop it with:  $BIN/novamove minicloud down"
