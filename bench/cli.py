"""How long 'planb --help' takes: the CLI must answer in under a second.

Run: ``.venv/bin/python bench/cli.py [--runs N]``. Starts ``planb --help`` N times (default
5) in a fresh process, as a person does, prints each time and the median, and exits 1
when the median is 1 s or more. The import itself is tested without timing in
tests/unit/test_cli_help.py (no heavy library is loaded by 'import planb.cli.main').
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

LIMIT_S = 1.0


def planb_command() -> list[str]:
    """The installed console script next to this Python, else ``python -m planb.cli.main``."""
    script = Path(sys.executable).with_name("planb")
    if script.exists():
        return [str(script)]
    found = shutil.which("planb")
    return [found] if found else [sys.executable, "-m", "planb.cli.main"]


def time_help(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([*command, "--help"], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "COLUMNS": "100"})
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    command = planb_command()
    time_help(command)  # warm the file cache and the bytecode
    times = [time_help(command) for _ in range(args.runs)]
    median = statistics.median(times)
    load = os.getloadavg()[0]
    print(f"planb --help: {', '.join(f'{t:.2f}' for t in times)} s; median {median:.2f} s "
          f"(limit {LIMIT_S:.0f} s; load average {load:.1f} on {os.cpu_count()} CPUs)")
    return 0 if median < LIMIT_S else 1


if __name__ == "__main__":
    sys.exit(main())
