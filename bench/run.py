"""The issue-5 benchmark in one command: every figure, beside the baseline and nginx.

    .venv/bin/python bench/run.py [--quick]

1. cold `seedfeeds build` of 10,000 seeds vs bench/baseline.py: wall time, peak memory
2. no-change refresh (`feeds.Builder.build()`), as % of an in-process full build
3. refresh after one seed file changed: time, and which documents got new bytes
4. serving /feeds/all.atom from memory vs nginx on the static build (wrk)
5. p99 while the server rebuilds every seed, vs idle
6. memory: the serving processes with 10,000 seeds; 1,000 refreshes with churn (1,000 seeds)
7. growth: build and no-change refresh at 1k, 10k and 100k seeds

Everything is measured in this one run: ratios compare figures taken minutes
apart on the same (shared, noisy) machine, with builds interleaved. Corpora
are kept in the temp folder for reuse (as bench/build_time.py keeps them);
everything else lives in one temp folder removed at the end, and every
process started is stopped by PID, on any exit. `--quick` shortens the load
runs to 5 s, runs each build once, does 100 churn refreshes and skips 100k.
A full run takes 15-25 minutes on a busy 2-core machine; it stops itself after 45.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from build_time import SEEDFEEDS, commands, corpus, measure  # bench/ is sys.path[0] when run as a script
from procs import TreeMemory, descendants, start, stop
from report import Table, spread, verdict
from serving import stage_serving

BENCH = Path(__file__).resolve().parent
HARD_DEADLINE = {False: 45 * 60, True: 20 * 60}  # seconds, by --quick: the run stops itself


class Stopped(BaseException):
    """The hard deadline passed, or SIGTERM came: stop, clean up, print what was measured."""


def stage_build(table: Table, seeds: Path, work: Path, runs: int) -> None:
    """Figure 1: both builds `runs` times, interleaved, each a fresh process with a fresh
    state folder, timed; then one more of each with the memory of its process tree
    sampled (reading /proc/PID/smaps_rollup ten times a second takes CPU from the
    build: those runs are not timed). The last seedfeeds output is kept for nginx."""
    argvs = commands(seeds, work)  # its config keeps the state in work/.seedfeeds-state
    walls: dict[str, list[float]] = {"seedfeeds": [], "baseline": [], "lean": []}
    rss: dict[str, list[float]] = {"seedfeeds": [], "baseline": [], "lean": []}
    tree: dict[str, float] = {}
    for i in range(runs + 1):
        sampled = i == runs
        order = ["seedfeeds", "baseline"] + ([] if sampled else ["lean"])  # the lean one is only timed
        for name in (order if i % 2 == 0 else order[::-1]):
            shutil.rmtree(work / ".seedfeeds-state", ignore_errors=True)
            with TreeMemory() if sampled else nullcontext() as memory:
                run = measure(argvs[name](i), work / f"build-{name}-{i}.log")
            if sampled:
                tree[name] = memory.peak_mib
                print(f"  memory run {name:9} all processes {memory.peak_mib:5.0f} MiB anonymous (peak)", flush=True)
            else:
                walls[name].append(run.wall)
                print(f"  build {i + 1}/{runs} {name:9} {run.wall:6.1f} s", flush=True)
            rss[name].append(run.max_rss_mib)
    # What reading alone costs (bench/floor.py): the time one process needs, the memory two hold.
    floor = [sys.executable, str(BENCH / "floor.py"), str(work / "seedfeeds.toml")]
    floor_wall = measure([*floor, "one"], work / "floor-one.log").wall
    floor_mib = {}
    for mode in ("two", "two-serializing"):
        with TreeMemory() as memory:
            measure([*floor, mode], work / f"floor-{mode}.log")
        floor_mib[mode] = memory.peak_mib
    print(f"  floor: reading alone, one process {floor_wall:.1f} s; two processes {floor_mib['two']:.0f} MiB, "
          f"{floor_mib['two-serializing']:.0f} MiB serializing each entry too", flush=True)
    # Outputs go only now: on ext4, a file created soon after thousands were deleted pays
    # (in kernel CPU, up to ~0.9 ms a file on these VMs) for a scan past the freed
    # inodes, which would charge each build for the cleanup of the one before it.
    for i in range(runs + 1):
        shutil.rmtree(work / f"baseline-{i}", ignore_errors=True)
        shutil.rmtree(work / f"lean-{i}", ignore_errors=True)
        if i < runs:
            (work / f"seedfeeds-{i}").unlink()
            shutil.rmtree(work / f".seedfeeds-{i}.versions", ignore_errors=True)
    ours, theirs = statistics.median(walls["seedfeeds"]), statistics.median(walls["baseline"])
    speedup = theirs / ours
    table.add("1", f"full build, 10k seeds: wall s, median (min-max) of {runs}",
              f"{ours:.1f} ({min(walls['seedfeeds']):.1f}-{max(walls['seedfeeds']):.1f})",
              f"{theirs:.1f} ({min(walls['baseline']):.1f}-{max(walls['baseline']):.1f})",
              f"{speedup:.2f}x faster", ">= 4x (goal 5x)",
              verdict(speedup >= 4) + (" (goal met)" if speedup >= 5 else ""))
    lean = statistics.median(walls["lean"])
    table.add("1", "the same, against the baseline with --lean (bleach on title, excerpt and body only)",
              f"{ours:.1f}", f"{lean:.1f} ({min(walls['lean']):.1f}-{max(walls['lean']):.1f})",
              f"{lean / ours:.2f}x faster", "", "info")
    table.add("1", "peak memory: anonymous (heap) memory of all the build's processes, MiB", f"{tree['seedfeeds']:.0f}",
              f"{tree['baseline']:.0f}", f"{tree['seedfeeds'] / tree['baseline']:.2f}x", "<= baseline",
              verdict(tree["seedfeeds"] <= tree["baseline"]))
    table.add("1", "floor: one process that only reads the seeds (keeps and renders nothing), wall s",
              f"{floor_wall:.1f}", f"{theirs:.1f}", f"{theirs / floor_wall:.2f}x faster",
              "one process cannot beat it", "info")
    for mode, what in (("two", "only read half the seeds each"),
                       ("two-serializing", "read half the seeds each and serialize each entry once per format")):
        table.add("1", f"floor: two processes that {what} (keep nothing), anonymous MiB",
                  f"{floor_mib[mode]:.0f}", f"{tree['baseline']:.0f}", f"{floor_mib[mode] / tree['baseline']:.2f}x",
                  "both cores cannot go below it", "info")
    peak_ours, peak_theirs = max(rss["seedfeeds"]), max(rss["baseline"])
    table.add("1", "peak RSS of the largest single process MiB (wait4)", f"{peak_ours:.0f}", f"{peak_theirs:.0f}",
              f"{peak_ours / peak_theirs:.2f}x", "<= baseline", verdict(peak_ours <= peak_theirs))
    table.facts["site"] = work / f"seedfeeds-{runs}"


def run_inprocess(work: Path, name: str, args: list[str], timeout: float) -> dict:
    """bench/inprocess.py in a fresh process; its JSON result."""
    log = work / f"inprocess-{name}.log"
    process = start([sys.executable, str(BENCH / "inprocess.py"), *args], log)
    try:
        code = process.wait(timeout=timeout)
    finally:
        stop(process)
    lines = log.read_text(errors="replace").strip().splitlines()
    if code != 0 or not lines:
        raise RuntimeError(f"inprocess.py {name} exited with {code}: {' | '.join(lines[-5:])}")
    return json.loads(lines[-1])


def write_config(path: Path, seeds: Path, state: Path, extra: str = "") -> Path:
    # A JSON string is a valid TOML basic string.
    path.write_text(f"[seeds]\npath = {json.dumps(str(seeds))}\n[state]\npath = {json.dumps(str(state))}\n{extra}",
                    encoding="utf-8")
    return path


def stage_refresh(table: Table, seeds: Path, work: Path, repeats: int) -> None:
    """Figures 2 and 3, in one fresh process, on a scratch copy of the corpus."""
    config = write_config(work / "inprocess.toml", seeds, work / "inprocess-state")
    result = run_inprocess(work, "refresh", ["refresh", "--config", str(config), "--retitle",
                                              "--repeats", str(repeats)], timeout=1200)
    full = result["full_s"]
    table.add("2", "in-process full build, 10k seeds (Builder.build(), one process) s", f"{full:.1f}",
              "", "", "", "info")
    times = result["no_change_s"]
    share = statistics.median(times) / full * 100
    table.add("2", f"no-change refresh ms, median (min-max) of {len(times)}", spread(times), "",
              f"{share:.2f} % of full", "<= 2 %", verdict(share <= 2))
    table.add("2", "no-change refresh returns the same snapshot object", "yes" if result["same_object"] else "NO",
              "", "", "same object", verdict(result["same_object"]))
    times = result["one_change_s"]
    share = statistics.median(times) / full * 100
    table.add("3", f"one-file-change refresh ms, median (min-max) of {len(times)}", spread(times), "",
              f"{share:.2f} % of full", "<= 5 %", verdict(share <= 5))
    first = result["first_change"]
    table.add("3", "documents after retitling the newest seed (all.atom's first entry)",
              f"{first['new_bytes']} new bytes, {first['same_object']} same object, "
              f"{first['same_bytes']} new object with the same bytes ({', '.join(first['same_bytes_paths'])})",
              "", "", "only documents showing the entry change", verdict(result["all_kept_rule"]))
    if result["wrong"]:
        table.notes.append("figure 3 rule broken: " + "; ".join(result["wrong"][:5]))


def stage_churn(table: Table, seeds: Path, work: Path, refreshes: int) -> None:
    """Figure 6, the long half: Service + BuilderProcess (what serve's worker holds: the
    snapshot mirror, the prepared answers, the builder child), refreshed back to back.
    On 1,000 seeds: with 10,000, a refresh after a small change takes seconds on a busy
    2-core machine (the builder child sends each changed feed with all its entries), and
    1,000 of them would not fit the run."""
    config = write_config(work / "churn.toml", seeds, work / "churn-state")
    result = run_inprocess(work, "churn", ["churn", "--config", str(config), "--refreshes", str(refreshes)],
                           timeout=3600)
    samples = {s["refreshes"]: s for s in result["samples"]}
    middle, end = refreshes // 2, max(samples)
    table.add("6", f"{refreshes} refreshes of {result['entries']:,} entries, 3 files retitled before each: "
              "refresh ms", spread(result["refresh_s"]), "", "", "", "info")
    for key, label in (("self_mib", "Service process (the worker's part)"), ("builder_mib", "builder child")):
        # The first half is warm-up (caches fill, the allocator settles); a leak keeps growing after it.
        growth = samples[end][key] - samples[middle][key]
        ok = growth <= max(0.02 * samples[middle][key], 2)
        trail = " ".join(f"{n}:{s[key]:.0f}" for n, s in sorted(samples.items()))
        table.add("6", f"RSS MiB, {label}: first build -> 10 -> {middle} -> {end} refreshes",
                  " -> ".join(f"{samples[n][key]:.0f}" for n in (0, 10, middle, end)), "",
                  f"{growth:+.1f} MiB in the second half", "no growth in the second half (< 2 % or 2 MiB)",
                  verdict(ok))
        table.notes.append(f"figure 6 {label} RSS MiB by refresh count: {trail}")
    table.notes.append("figure 6 churn runs web.refresh.Service with web.builder_process.BuilderProcess in a "
                       "fresh process (no HTTP, no granian): the objects serve's worker holds, refreshed back to "
                       "back on a 1,000-seed copy; the 10,000-seed RSS rows come from the real server")


def stage_growth(table: Table, corpora: dict[int, Path], work: Path) -> None:
    """Figure 7: a cold CLI build and no-change refreshes at each size, back to back (load
    drifts over a long run: figures 1 and 2 are not reused). Refreshes follow a first
    build read in a pool; their minimum is the cost with the least noise from other tenants."""
    points = {}
    for count, seeds in sorted(corpora.items()):
        argv = commands(seeds, work)["seedfeeds"](count)
        shutil.rmtree(work / ".seedfeeds-state", ignore_errors=True)
        build = measure(argv, work / f"build-{count}.log").wall
        config = write_config(work / f"growth-{count}.toml", seeds, work / f"growth-state-{count}")
        result = run_inprocess(work, f"growth-{count}", ["refresh", "--config", str(config), "--pool",
                                                         "--repeats", "10"], timeout=1800)
        times, floor = result["no_change_s"], min(result["floor_s"])
        points[count] = (build, min(times), floor)
        table.add("7", f"{count // 1000}k seeds: cold build s (per 1k seeds); no-change refresh ms, min (us per seed)",
                  f"{build:.1f} ({build / count * 1000:.2f}); {min(times) * 1000:.1f} ({min(times) / count * 1e6:.2f})",
                  f"floor {floor * 1000:.1f} ({floor / count * 1e6:.2f})", "", "", "info")
        print(f"  {count:>7} seeds: build {build:.1f} s, no-change refresh {spread(times)} ms, "
              f"bare scandir + stat {floor * 1000:.1f} ms", flush=True)
    for count in corpora:  # deleted only now, as in stage_build
        (work / f"seedfeeds-{count}").unlink()
        shutil.rmtree(work / f".seedfeeds-{count}.versions", ignore_errors=True)
    ordered = sorted(points.items())
    steps = [tuple(after[i] / c2 / (before[i] / c1) for i in range(3))
             for (c1, before), (c2, after) in zip(ordered, ordered[1:])]
    worst = max(max(step[:2]) for step in steps)
    table.add("7", "cost per seed, next size / previous (build, no-change refresh)",
              "; ".join(f"{step[0]:.2f}x, {step[1]:.2f}x" for step in steps),
              "floor " + "; ".join(f"{step[2]:.2f}x" for step in steps), "",
              "linear or better (each <= 1.2x)", verdict(worst <= 1.2))


def code_version() -> str:
    """The commit measured, and how many tracked files differ from it (others edit concurrently)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(BENCH.parent), *args], capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = len(git("status", "--porcelain", "--untracked-files=no").splitlines())
    return f"commit {head}" + (f" + {changed} modified tracked files" if changed else "")


def creation_cost(folder: Path, count: int = 2_000) -> float:
    """Microseconds of wall time to create (and write 4 kB to) a file in `folder`, which
    is kept: a hint of the disk's state, for the table's header. A build creates some
    7,200 files. On ext4 without a journal (these VMs' root), each creation scans
    past the inodes of its block group deleted in the last few minutes: after a large
    deletion, a file can cost five times what it costs on a quiet disk (31 against
    157 us here), and a 10k build took 6.9 s instead of 4.3."""
    folder.mkdir()
    data = bytes(4096)
    started = time.perf_counter()
    for number in range(count):
        (folder / f"{number}.txt").write_bytes(data)
    return (time.perf_counter() - started) / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s load runs, one build each, no 100k")
    parser.add_argument("--stages", nargs="+", metavar="N", default=["1", "2-3", "4-6", "6", "7"],
                        help="run only these stages (1, 2-3, 4-6, 6, 7; 4-6 needs 1's build)")
    args = parser.parse_args(argv)
    if not SEEDFEEDS.exists():
        parser.error(f"no seedfeeds command at {SEEDFEEDS}; run this with the project's venv Python")
    seconds = 5.0 if args.quick else 20.0

    def on_signal(signum: int, frame: object) -> None:
        raise Stopped("hard deadline passed" if signum == signal.SIGALRM else f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(HARD_DEADLINE[args.quick])
    table = Table(context=[code_version(), f"load average at start {os.getloadavg()[0]:.1f}"])
    work = Path(tempfile.mkdtemp(prefix="seedfeeds-run-"))
    table.context.append(f"a new 4 kB file in the work folder at start: {creation_cost(work / 'probe'):.0f} us")
    try:
        corpora = {count: corpus(count, 1) for count in [1_000, 10_000] + ([] if args.quick else [100_000])}
        c10k = corpora[10_000]
        # Figures 3, 5 and 6 rewrite seed files: scratch copies, never the cached corpora.
        scratch, small = work / "seeds", work / "seeds-1k"
        shutil.copytree(c10k, scratch)
        shutil.copytree(corpora[1_000], small)
        stages = [
            ("1 build", lambda: stage_build(table, c10k, work, 1 if args.quick else 3)),
            ("2-3 refresh", lambda: stage_refresh(table, scratch, work, 6 if args.quick else 15)),
            ("4-6 serving", lambda: stage_serving(table, scratch, table.facts["site"], work, seconds)),
            ("6 churn", lambda: stage_churn(table, small, work, 100 if args.quick else 1000)),
            ("7 growth", lambda: stage_growth(table, corpora, work)),
        ]
        for name, run in stages:
            if name.split()[0] in args.stages:
                table.stage(name, run)
    except (Stopped, KeyboardInterrupt) as exc:
        table.notes.append(f"run stopped early: {exc!r}")
    finally:
        signal.alarm(0)
        leftovers = descendants(os.getpid())
        for pid in leftovers:  # only processes this run started (its own descendants)
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        time.sleep(1 if leftovers else 0)
        for pid in descendants(os.getpid()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(work, ignore_errors=True)
        table.print(quick=args.quick)
    return 0 if table.all_passed() else 1


if __name__ == "__main__":
    sys.exit(main())
