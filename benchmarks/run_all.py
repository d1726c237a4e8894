"""Run every benchmark in this folder; each writes its JSON to benchmarks/results/<name>.json.

``make bench`` runs this. Pass ``--quick`` to forward the reduced-scale option to every script,
or script names to run only those (``python benchmarks/run_all.py estimators recording``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: scripts here that are not CPU benchmarks: this one, and the GPU check / full-scale driver
NOT_BENCHMARKS = ("run_all", "gpu_check", "reproduce_gpu")


def main() -> int:
    scripts = sorted(p.stem for p in HERE.glob("*.py")
                     if not p.stem.startswith("_") and p.stem not in NOT_BENCHMARKS)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(scripts)})")
    parser.add_argument("--quick", action="store_true", help="reduced scale, for a smoke run")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(scripts))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; expected some of {', '.join(scripts)}")
    RESULTS.mkdir(exist_ok=True)
    failed = []
    for name in args.names or scripts:
        cmd = [sys.executable, str(HERE / f"{name}.py"), "--out", str(RESULTS / f"{name}.json")]
        if args.quick:
            cmd.append("--quick")
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(cmd)
        print(f"== {name}: exit {code} after {time.perf_counter() - start:.1f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
