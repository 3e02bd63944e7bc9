#!/usr/bin/env bash
# The main job on the embedded minicloud: bring it up with three servers, move one of them to
# a host it is not on, and show before/after and where everything is.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
$BIN/novamove minicloud up --computes 3 >/dev/null
eval "$($BIN/novamove minicloud env)"
# Three demo servers, booted once (a rerun reuses them).
$BIN/python - <<'PY'
from novamove.minicloud import Minicloud
mc = Minicloud()
if not mc.demo_servers():
    mc.boot(3)
PY
$BIN/novamove hosts
# demo-1 goes to the next compute over from wherever it is now.
target=$($BIN/python - <<'PY'
from novamove.minicloud import Minicloud
servers = Minicloud().demo_servers()
hosts = sorted(Minicloud().compute_hosts())
here = servers["demo-1"]
print(hosts[(hosts.index(here) + 1) % len(hosts)])
PY
)
echo "+ novamove migrate demo-1 --to $target"
$BIN/novamove migrate demo-1 --to "$target"
echo
echo "The minicloud keeps running. Try, in this shell:"
echo "  eval \"\$($BIN/novamove minicloud env)\""
echo "  $BIN/novamove migrate demo-2 --to compute1 --cold"
echo "  $BIN/novamove history;  $BIN/novamove migrations demo-1"
echo "Stop it with:  $BIN/novamove minicloud down"
