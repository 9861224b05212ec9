"""Time a cold `seedfeeds build` against the obvious pipeline (bench/baseline.py).

    python bench/build_time.py [--count 10000] [--runs 3] [--seed 1]

Generates a corpus with bench/generate.py (kept in the temp folder, keyed by
count, seed and generator version, and reused), then runs the three builds
(seedfeeds, the baseline, the baseline with --lean) RUNS times, interleaved,
each in a fresh process, and prints median and minimum wall time, peak RSS and
seed files per second.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from generate import FORMAT_VERSION, generate  # bench/ is sys.path[0] when run as a script

BENCH = Path(__file__).resolve().parent
SEEDFEEDS = Path(sys.executable).with_name("seedfeeds")


@dataclass(frozen=True)
class Run:
    """One child process: wall seconds and peak resident set size."""

    wall: float
    max_rss_mib: float


def corpus(count: int, seed: int) -> Path:
    """The corpus folder for (count, seed), generated unless a complete one exists."""
    folder = Path(tempfile.gettempdir()) / f"seedfeeds-bench-n{count}-s{seed}-v{FORMAT_VERSION}"
    if folder.is_dir():
        print(f"corpus: reusing {folder}")
        return folder
    # Generate beside it and rename, so an interrupted run never leaves a partial corpus to reuse.
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    started = time.perf_counter()
    generate(staging, count, seed)
    try:
        staging.rename(folder)
    except OSError:  # another run finished first
        shutil.rmtree(staging)
    print(f"corpus: generated {count} files in {time.perf_counter() - started:.1f}s into {folder}")
    return folder


def measure(argv: list[str], log: Path) -> Run:
    """Run `argv` to completion; its wall time and its own peak RSS (from wait4)."""
    # The last run's written files go to disk first: their writeback (kernel threads
    # on the same two CPUs) would otherwise slow whichever build comes next.
    os.sync()
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    # wait4 reaped the child behind Popen's back; record the status so Popen does not wait again.
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    rss = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return Run(wall, rss)


def commands(seeds: Path, work: Path) -> dict[str, Callable[[int], list[str]]]:
    """Name -> function(run number) giving the argv of that run, writing into `work`."""
    config = work / "seedfeeds.toml"
    # A JSON string is a valid TOML basic string.
    config.write_text(f"[seeds]\npath = {json.dumps(str(seeds))}\n", encoding="utf-8")
    return {
        "seedfeeds": lambda i: [str(SEEDFEEDS), "build", "--out", str(work / f"seedfeeds-{i}"),
                                "--config", str(config)],
        "baseline": lambda i: [sys.executable, str(BENCH / "baseline.py"), str(seeds), str(work / f"baseline-{i}")],
        "lean": lambda i: [sys.executable, str(BENCH / "baseline.py"), "--lean", str(seeds), str(work / f"lean-{i}")],
    }


def report(runs: dict[str, list[Run]], count: int) -> None:
    print(f"\n{'':12}{'median s':>10}{'min s':>10}{'peak RSS MiB':>15}{'files/s':>10}")
    for name, results in runs.items():
        median = statistics.median(r.wall for r in results)
        print(f"{name:12}{median:10.2f}{min(r.wall for r in results):10.2f}"
              f"{max(r.max_rss_mib for r in results):15.1f}{count / median:10.0f}")
    ours = runs["seedfeeds"]
    print()
    for name in ("baseline", "lean"):
        theirs = runs[name]
        wall = statistics.median(r.wall for r in theirs) / statistics.median(r.wall for r in ours)
        rss = max(r.max_rss_mib for r in theirs) / max(r.max_rss_mib for r in ours)
        print(f"{name} / seedfeeds: {wall:.2f}x wall time (median), {rss:.2f}x peak RSS")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="seed files in the corpus (default: 10000)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each build (default: 3)")
    parser.add_argument("--seed", type=int, default=1, help="corpus random seed (default: 1)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.runs < 1:
        parser.error("--count and --runs must be at least 1")
    if not SEEDFEEDS.exists():
        parser.error(f"no seedfeeds command at {SEEDFEEDS}; run this with the project's venv Python")
    seeds = corpus(args.count, args.seed)
    runs: dict[str, list[Run]] = {"seedfeeds": [], "baseline": [], "lean": []}
    with tempfile.TemporaryDirectory(prefix="seedfeeds-bench-") as tmp:
        work = Path(tmp)
        argvs = commands(seeds, work)
        for i in range(args.runs):
            # Alternate which goes first, so neither always meets the warmer cache.
            for name in (list(argvs) if i % 2 == 0 else list(argvs)[::-1]):
                log = work / f"{name}-{i}.log"
                shutil.rmtree(work / ".seedfeeds-state", ignore_errors=True)  # cold: no entry-id ledger yet
                run = measure(argvs[name](i), log)
                runs[name].append(run)
                last = log.read_text(errors="replace").strip().splitlines()[-1:]
                print(f"run {i + 1}/{args.runs} {name:9} {run.wall:7.2f}s {run.max_rss_mib:7.1f} MiB  "
                      f"{last[0] if last else ''}")
        # Outputs are deleted only at the end: on ext4, a file created soon after thousands
        # were deleted pays (in kernel CPU, up to ~0.9 ms a file on these VMs) for a scan
        # past the freed inodes, which would charge each build for the last one's cleanup.
    report(runs, args.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
