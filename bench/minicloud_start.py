"""Cold start time and memory of the minicloud (targets: <= 90 s with 3 computes, <= 2.5 GB).

Brings up a separate minicloud in a temporary directory (its own ports), measures the wall time
of `up` (OpenStack venv already installed) and the memory of every process it started, then
takes it down. RSS counts shared pages once per process; PSS splits them fairly, so the PSS sum
is the honest total and RSS the pessimistic one. The baseline ratio compares against the time to
merely start the services' Python interpreters with Nova imported, measured in the same run.

Usage: python bench/minicloud_start.py [--computes 3] [--base-port 17300]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from novamove.minicloud import Minicloud, procs, venv


def _kb(pid: int, field: str, path: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--computes", type=int, default=3)
    ap.add_argument("--base-port", type=int, default=17300)
    args = ap.parse_args()
    python = venv.default_path() / "bin" / "python"
    t = time.monotonic()
    subprocess.run([str(python), "-c", "import nova.compute.manager"], check=True)
    import_nova = time.monotonic() - t

    with tempfile.TemporaryDirectory() as tmp:
        mc = Minicloud(Path(tmp) / "mc", log=lambda m: None)
        took = mc.up(computes=args.computes, base_port=args.base_port)
        try:
            time.sleep(5)    # let start-up spikes settle
            sessions = set(procs.running(mc.state / "run", mc.state).values())
            pids = procs.leftover(mc.state, sessions)
            rss = sum(_kb(p, "VmRSS", "status") for p in pids) / 1024
            pss = sum(_kb(p, "Pss", "smaps_rollup") for p in pids) / 1024
        finally:
            mc.down(quiet=True)
    print(f"{'measure':<34}{'value':>12}{'target':>12}")
    print(f"{'cold start, ' + str(args.computes) + ' computes (s)':<34}{took:>12.1f}{90:>12}")
    print(f"{'processes':<34}{len(pids):>12}")
    print(f"{'total PSS (MB)':<34}{pss:>12.0f}{2560:>12}")
    print(f"{'total RSS (MB, shared counted n×)':<34}{rss:>12.0f}")
    print(f"{'baseline: one `import nova` (s)':<34}{import_nova:>12.1f}")
    print(f"{'start / baseline':<34}{took / import_nova:>12.1f}x")


if __name__ == "__main__":
    main()
