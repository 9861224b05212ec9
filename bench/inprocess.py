"""In-process measurements of refreshes, each run in a fresh process by bench/run.py.

    python bench/inprocess.py refresh --config FILE [--pool] [--retitle] [--repeats N]
    python bench/inprocess.py churn --config FILE [--refreshes N] [--files K]

`refresh`: a first (full) build with `feeds.Builder`, then `build()` again
with nothing changed, and (with --retitle, which rewrites and then restores
one seed file: use a scratch copy of a corpus) after one file changed.
`churn`: `web.refresh.Service` with a `BuilderProcess`, as `seedfeeds serve`'s
worker holds them, refreshed N times back to back, K files retitled before
each; the RSS of this process and of the builder child along the way.

Prints one JSON object as the last line of stdout. Rewrites seed files in
place (then restores them): never point it at a shared corpus with --retitle
or `churn`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path

from feeds import Builder, load_config
from feeds.builder import READ_CHUNK
from feeds.snapshot import Snapshot
from procs import rss_mib  # bench/ is sys.path[0] when run as a script

TITLE = re.compile(rb'^title: "', re.MULTILINE)


def retitled(original: bytes, marker: str) -> bytes:
    """The seed text with `marker` put in front of its (double-quoted) title."""
    text, count = TITLE.subn(f'title: "{marker} '.encode(), original, count=1)
    if count != 1:
        raise ValueError("no double-quoted title line")
    return text


def timed(function):
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


# --- refresh: no change, one change


def compare(before: Snapshot, after: Snapshot, marker: bytes) -> dict:
    """How each document of `after` relates to `before`: the very same object, new object
    with the same bytes, or new bytes; and documents that broke the rule "a document gets
    new bytes if and only if it shows the changed entry" (the marker, before or after)."""
    counts = {"same_object": 0, "same_bytes": 0, "new_bytes": 0, "added": 0, "removed": 0}
    wrong: list[str] = []
    same_bytes: list[str] = []
    for path, doc in after.documents.items():
        old = before.documents.get(path)
        if old is None:
            counts["added"] += 1
            continue
        involved = marker in old.body or marker in doc.body
        if old is doc:
            counts["same_object"] += 1
        elif old.body == doc.body and old.etag == doc.etag and old.gzip_etag == doc.gzip_etag:
            counts["same_bytes"] += 1
            same_bytes.append(path)
        else:
            counts["new_bytes"] += 1
            if old.body == doc.body:
                wrong.append(f"{path}: same bytes, new ETag")
            elif not involved:
                wrong.append(f"{path}: new bytes, yet it does not show the changed entry")
        if involved and old.body == doc.body:
            wrong.append(f"{path}: shows the changed entry but kept its old bytes")
    counts["removed"] = sum(1 for path in before.documents if path not in after.documents)
    return {**counts, "same_bytes_paths": same_bytes[:10], "wrong": wrong[:10], "wrong_count": len(wrong)}


def measure_refreshes(builder: Builder, first: Snapshot, repeats: int, retitle: bool) -> dict:
    """No-change builds (time, same object?) and, with `retitle`, one-file-change builds."""
    out = {"no_change_s": [], "same_object": True, "floor_s": []}
    for _ in range(repeats):
        seconds, snapshot = timed(builder.build)
        out["no_change_s"].append(seconds)
        out["same_object"] &= snapshot is first
        out["floor_s"].append(timed(lambda: bare_scan(builder.config.seeds_path))[0])
    if retitle:
        out.update(one_change(builder, first, max(repeats // 3, 3)))
    return out


def bare_scan(root: Path) -> int:
    """The floor under a no-change refresh: list every folder and stat every file,
    nothing else (no name test, no objects kept, no comparison). Timed beside the
    refreshes, it shows how much of their growth with size the kernel and the
    caches bring on their own."""
    count, pending = 0, [str(root)]
    while pending:
        with os.scandir(pending.pop()) as listing:
            for item in listing:
                if item.is_dir(follow_symlinks=False):
                    pending.append(item.path)
                else:
                    item.stat(follow_symlinks=False)
                    count += 1
    return count


def one_change(builder: Builder, first: Snapshot, rounds: int) -> dict:
    """Retitle the newest entry's file, build, restore it, build; time each build and
    compare the documents before and after."""
    newest = first.feeds["all"].entries[0]
    path = builder.config.seeds_path / newest.file
    original = path.read_bytes()
    current = first
    times, comparisons = [], []
    try:
        for i in range(rounds):
            marker = f"Zqx{os.getpid()}r{i}"
            for text in (retitled(original, marker), original):  # change, then restore
                path.write_bytes(text)
                seconds, snapshot = timed(builder.build)
                times.append(seconds)
                comparisons.append(compare(current, snapshot, marker.encode()))
                current = snapshot
    finally:
        path.write_bytes(original)
    return {"one_change_s": times, "changed_file": newest.file, "first_change": comparisons[0],
            "all_kept_rule": all(c["wrong_count"] == 0 for c in comparisons),
            "wrong": [w for c in comparisons for w in c["wrong"]][:10]}


def refresh_main(args: argparse.Namespace) -> dict:
    config = load_config(Path(args.config))
    if args.pool:
        # The first build read on every core, as `seedfeeds build` reads; refreshes read in-process.
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=get_context("fork")) as pool:
            builder = Builder(config, read_map=partial(pool.map, chunksize=READ_CHUNK))
            full_s, first = timed(builder.build)
        builder.read_map = None
    else:
        builder = Builder(config)
        full_s, first = timed(builder.build)
    out = {"full_s": full_s, "files": first.file_count, "entries": first.entry_count,
           "documents": len(first.documents), "rss_after_build_mib": rss_mib(os.getpid())}
    out.update(measure_refreshes(builder, first, args.repeats, args.retitle))
    return out


# --- churn: many refreshes through the serving side's objects


def churn_main(args: argparse.Namespace) -> dict:
    from web.builder_process import BuilderProcess  # the web stack only for this mode
    from web.refresh import Service

    config = load_config(Path(args.config))
    files = sorted(p for p in config.seeds_path.rglob("*.txt")
                   if not any(part.startswith(".") for part in p.relative_to(config.seeds_path).parts))
    # Every original read up front: filling this as files are first touched would
    # grow the measured process by a few MiB over the run.
    originals = {path: path.read_bytes() for path in files}
    rng = random.Random(5)
    builder = BuilderProcess(config)
    service = Service(config, builder)
    samples = []
    try:
        full_s, ok = timed(service.refresh)
        if not ok:
            raise RuntimeError(f"first refresh failed: {service.last_error}")
        samples.append({"refreshes": 0, "self_mib": rss_mib(os.getpid()), "builder_mib": rss_mib(builder.pid)})
        times = []
        for i in range(1, args.refreshes + 1):
            # One of the newest entries (so the big feeds change every time) and random others.
            newest = [config.seeds_path / e.file for e in service.snapshot.feeds["all"].entries[:50]]
            for path in [rng.choice(newest)] + rng.sample(files, args.files - 1):
                path.write_bytes(retitled(originals[path], f"Churn {i}"))
            seconds, ok = timed(service.refresh)
            if not ok:
                raise RuntimeError(f"refresh {i} failed: {service.last_error}")
            times.append(seconds)
            if i in (10, 100) or i % max(args.refreshes // 10, 1) == 0:
                samples.append({"refreshes": i, "self_mib": rss_mib(os.getpid()), "builder_mib": rss_mib(builder.pid)})
                print(f"churn: {i} refreshes, last {seconds:.2f} s, RSS {samples[-1]['self_mib']:.0f} MiB "
                      f"(builder {samples[-1]['builder_mib']:.0f} MiB)", file=sys.stderr, flush=True)
    finally:
        builder.close()
        for path, original in originals.items():
            path.write_bytes(original)
    return {"full_s": full_s, "refresh_s": times, "samples": samples,
            "entries": service.snapshot.entry_count, "documents": len(service.snapshot.documents)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    refresh = modes.add_parser("refresh")
    refresh.add_argument("--config", required=True)
    refresh.add_argument("--pool", action="store_true", help="read the first build in a process pool")
    refresh.add_argument("--retitle", action="store_true", help="also time one-file changes (rewrites a seed)")
    refresh.add_argument("--repeats", type=int, default=15)
    churn = modes.add_parser("churn")
    churn.add_argument("--config", required=True)
    churn.add_argument("--refreshes", type=int, default=1000)
    churn.add_argument("--files", type=int, default=3, help="files retitled before each refresh")
    args = parser.parse_args(argv)
    result = refresh_main(args) if args.mode == "refresh" else churn_main(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
