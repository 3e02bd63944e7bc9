#!/usr/bin/env bash
# The main job on the embedded minicloud: bring it up with three servers, move one of them to
# a host it is not on, and show before/after and where everything is.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
$BIN/novamove minicloud up --computes 3 >/dev/null
eval "$($BIN/novamove minicloud env)"
# Three demo servers, demo-1..3 on compute1..3 (a rerun reuses them and boots only what is
# missing); demo-1 then goes to the next compute over from wherever it is now.
target=$($BIN/python - <<'PY'
import sys
from novamove.minicloud import Minicloud
mc = Minicloud(log=lambda m: print(m, file=sys.stderr))
servers = mc.ensure_demo_servers(3)
hosts = sorted(mc.compute_hosts())
here = servers.get("demo-1")
if here not in hosts:
    sys.exit(f"demo-1 is not on a minicloud compute (demo servers: {servers})")
print(hosts[(hosts.index(here) + 1) % len(hosts)])
PY
)
$BIN/novamove hosts
echo "+ novamove migrate demo-1 --to $target"
$BIN/novamove migrate demo-1 --to "$target"
echo
echo "The minicloud keeps running. Try, in this shell:"
echo "  eval \"\$($BIN/novamove minicloud env)\""
echo "  $BIN/novamove migrate demo-2 --to compute1 --cold"
echo "  $BIN/novamove history;  $BIN/novamove migrations demo-1"
echo "Stop it with:  $BIN/novamove minicloud down"
