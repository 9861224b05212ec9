"""Bytes per poll, full document vs RFC 3229 delta (`A-IM: feed`), issue 6.

    .venv/bin/python bench/delta.py [--count 1000] [--new 1 3 10]

Serves a copy of a generated corpus with `seedfeeds serve`, takes each format
of /feeds/all.* (what a reader holds: its ETag), publishes N new seed files,
waits for the refresh, then polls the way feedparser and newsboat do: with
If-None-Match set to the old ETag, `A-IM: feed` and gzip. Prints, per format
and N, the bytes of the full answer and of the 226 delta, both gzip and plain.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from build_time import SEEDFEEDS, corpus  # bench/ is sys.path[0] when run as a script
from procs import request
from servers import SeedfeedsServer

FORMATS = ("atom", "rss", "json")
NEW_SEED = """---
title: "Delta bench {n}: a new story"
originalUrl: "https://delta.example/{stamp}/{n}"
publishedDateTime: "{date}"
excerpt: "A new entry, published after the reader's last poll."
provider:
  name: "Delta Example"
  domain: "delta.example"
topics: ["Bench"]
---
{body}
"""


def publish(seeds: Path, count: int, stamp: str) -> None:
    """`count` seed files newer than anything in the corpus."""
    folder = seeds / "delta-bench"
    folder.mkdir(exist_ok=True)
    for n in range(count):
        text = NEW_SEED.format(n=n, stamp=stamp, date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               body="A paragraph of the new story. " * 40)
        (folder / f"{stamp}-{n}.md").write_text(text, encoding="utf-8")


def wait_until(predicate, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not publish the new seeds in time")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1_000, help="seed files in the corpus (default 1000)")
    parser.add_argument("--new", type=int, nargs="+", default=[1, 3, 10], help="new entries between polls")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="seedfeeds-delta-"))
    seeds = work / "seeds"
    shutil.copytree(corpus(args.count, 1), seeds)
    server = SeedfeedsServer.start(SEEDFEEDS, work, seeds, refresh_seconds=1)
    rows = []
    try:
        for new in args.new:
            held = {fmt: request(server.port, f"/feeds/all.{fmt}")[1]["etag"] for fmt in FORMATS}
            stamp = f"n{new}-{time.monotonic_ns()}"
            publish(seeds, new, stamp)
            wait_until(lambda: stamp.encode() in request(server.port, "/feeds/all.atom")[2])
            for fmt in FORMATS:
                path = f"/feeds/all.{fmt}"
                sizes = []
                for encoding in ({"Accept-Encoding": "gzip"}, {}):
                    full = request(server.port, path, encoding)
                    delta = request(server.port, path, {**encoding, "If-None-Match": held[fmt], "A-IM": "feed"})
                    if full[0] != 200 or delta[0] != 226:
                        raise RuntimeError(f"{path}: full {full[0]}, delta {delta[0]} (expected 200 and 226)")
                    sizes += [len(full[2]), len(delta[2])]
                rows.append((fmt, new, *sizes))
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n## bytes per poll of /feeds/all.*, {args.count:,} seeds: full document vs delta (226 IM Used)\n")
    print("| format | new entries | full gzip | delta gzip | delta / full | full plain | delta plain |")
    print("|---|---|---|---|---|---|---|")
    for fmt, new, full_gz, delta_gz, full, delta in rows:
        print(f"| {fmt} | {new} | {full_gz:,} | {delta_gz:,} | {delta_gz / full_gz:.0%} | {full:,} | {delta:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
