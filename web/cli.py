"""The `seedfeeds` command: a thin shell over plain functions.

    seedfeeds serve [--host H] [--port P] [--workers N] [--access-log]   serve the feeds (granian)
    seedfeeds build --out DIR               write every document as static files
    seedfeeds check [PATH] [--json]         diagnostics for every seed file
    seedfeeds list                          feeds, entry counts, URLs
"""

from __future__ import annotations

import gc
import json
import os
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Collection, Iterable, Iterator

import click

from feeds import Builder, Config, ConfigError, build_snapshot, load_config
from feeds.snapshot import Snapshot
from feeds.builder import READ_CHUNK, check_files, collector_paused
from feeds.catalog import KINDS
from feeds.static import SiteWriter
from feeds.urls import FORMATS

from . import ACCESS_LOG_ENV, CONFIG_ENV, SERVE_PID_ENV, config_path, progress

# What each rendering child of a cold build does: (format, feed kinds) in turn. At 10k
# seeds, atom takes 1.2 s, rss 1.35, json 1.1 and the previews 0.3: provider feeds'
# JSON (a fifth of it; each entry is in one provider feed, so the split costs each
# entry one more serialization) evens the two out.
Share = tuple[tuple[str, Collection[str]], ...]
RENDER_SHARES: tuple[Share, ...] = (
    (("atom", KINDS), ("json", ("all", "named", "topic"))),
    (("rss", KINDS), ("html", KINDS), ("json", ("provider",))),
)

config_option = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False),
    help="Config file (default: $SEEDFEEDS_CONFIG, else ./config/seedfeeds.toml).")


def _load(config_file: str | None) -> Config:
    try:
        return load_config(config_path(config_file))
    except ConfigError as exc:
        click.echo(f"seedfeeds: config error: {exc}", err=True)
        sys.exit(2)


@click.group()
def main() -> None:
    """Turn a folder of news seed files into Atom, RSS and JSON feeds."""


@main.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Threads running the app (one is fastest: the hot path is GIL-bound).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes; more than one needs [serve] snapshot_store = a redis:// URL.")
@click.option("--access-log", is_flag=True, help="Log every request to stdout, in the combined log format.")
def serve(config_file: str | None, host: str, port: int, threads: int, workers: int, access_log: bool) -> None:
    """Serve the feeds over HTTP with granian, a production server (HTTP in Rust)."""
    from granian import Granian

    config = _load(config_file)  # fail here, once, with one line, rather than in the worker
    # glibc gives each thread that allocates its own malloc arena (up to 8 per core): with
    # granian's threads, freed document bytes scatter over them and RSS creeps up. Two suffice.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    if workers > 1 and config.snapshot_store == "memory":
        # Each worker would rescan and build on its own, and answer with its own Last-Modified.
        error = ConfigError(config.file, "serve.snapshot_store", f"a redis:// URL to run {workers} workers",
                            repr(config.snapshot_store))
        click.echo(f"seedfeeds: config error: {error}", err=True)
        sys.exit(2)
    if config.file != "<defaults>":
        os.environ[CONFIG_ENV] = config.file
    os.environ[ACCESS_LOG_ENV] = "1" if access_log else "0"
    os.environ[SERVE_PID_ENV] = str(os.getpid())  # a builder's pacer watches every worker of this process
    click.echo(f"seedfeeds: serving on http://{host}:{port}/", err=True)
    Granian("web.serving:wsgi_app", factory=True, interface="wsgi", address=host, port=port,
            workers=workers, blocking_threads=threads, websockets=False, log_level="warning",
            respawn_failed_workers=True,  # a crashed worker is replaced, not the end of the service
            workers_kill_timeout=15).serve()  # and one that will not stop is killed, not waited for forever


@main.command()
@config_option
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Folder to write.")
def build(config_file: str | None, out: str) -> None:
    """Write every feed in every format, plus index.html, as static files."""
    config = _load(config_file)
    try:
        writer = SiteWriter(Path(out))
    except OSError as exc:
        click.echo(f"seedfeeds: cannot build into {out}: {exc}", err=True)
        sys.exit(2)
    try:
        summary = _build_site(config, writer)
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    click.echo(f"wrote {out}: {writer.written} files changed, {writer.kept} unchanged "
               f"({summary.entry_count} entries, {len(summary.feeds)} feeds, {summary.errors} unusable seed files)")


def _build_site(config: Config, writer: SiteWriter) -> Snapshot:
    """A cold build written through `writer`, on every core: seeds are read in a
    process pool, then forked children render the formats, one share each (they
    see the entries copy-on-write, no pickling), while this process only waits.
    Rendering in children rather than here keeps the largest process small: this
    one still holds what the reading left behind. fork is safe: this process has
    started no threads. On a terminal, a bar shows the reading, and one the
    rendering of the first share.

    The cyclic collector never walks what this process holds: what is alive
    before the reading (the imported modules) and after it (entries, feeds) is
    frozen out of its sight, so the collections of the forked processes skip
    it, and it is off here while the entries come in (they hold no cycles).
    The readers keep it on: the HTML parser makes cycles. 2-3 % off the wall
    time of a cold build at 10,000 seeds (five interleaved pairs)."""
    gc.freeze()
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=get_context("fork"),
                             initializer=gc.enable) as pool, collector_paused():
        builder = Builder(config, read_map=partial(_read_shown, pool))
        summary = builder.summarize()
    gc.freeze()
    if (os.cpu_count() or 1) < 2:
        _write_share(builder, summary, tuple((fmt, KINDS) for fmt in (*FORMATS, "html")), writer, shown=True)
        return summary
    shares = [_render_child(builder, summary, share, writer, shown=number == 0)
              for number, share in enumerate(RENDER_SHARES)]
    failed = False
    for pid, reader in shares:  # every child is waited for, even after one failed
        with os.fdopen(reader, "rb") as report:
            counts = report.read(100).decode()
        _, status = os.waitpid(pid, 0)
        if status != 0 or not counts:
            failed = True
            continue
        written, kept = map(int, counts.split())
        writer.written += written
        writer.kept += kept
    if failed:
        raise RuntimeError("a rendering child process failed")
    return summary


def _render_child(builder: Builder, summary: Snapshot, share: Share, writer: SiteWriter,
                  shown: bool) -> tuple[int, int]:
    """Fork a child that writes its `share` (and, with "html", the pages) and reports
    its counts on a pipe; (its pid, the pipe's reading end)."""
    reader, sender = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        status = 1
        try:
            writer.written = writer.kept = 0
            _write_share(builder, summary, share, writer, shown)
            os.write(sender, f"{writer.written} {writer.kept}".encode())
            status = 0
        except BaseException:
            traceback.print_exc()  # why, for the operator: the parent only sees the status
        finally:
            os._exit(status)
    os.close(sender)
    return pid, reader


def _read_shown(pool: ProcessPoolExecutor, read: Callable, seeds: Iterable) -> Iterator:
    """`pool.map(read, seeds)`, advancing a bar as results come in."""
    seeds = list(seeds)
    with progress.bar("Reading seed files", len(seeds)) as steps:
        for result in pool.map(read, seeds, chunksize=READ_CHUNK):
            steps.update(1)  # before the yield: the builder stops asking after the last result
            yield result


def _write_share(builder: Builder, summary: Snapshot, share: Share, writer: SiteWriter, shown: bool) -> None:
    """Render and write the documents of a share, each (format, feed kinds); with
    "html", the pages that are not feeds too. A bar if `shown`."""
    length = sum(1 + (feed.pages if fmt != "html" else 0)  # a feed's archive pages are documents too
                 for fmt, kinds in share for feed in summary.feeds.values() if feed.kind in kinds)
    with progress.bar("Rendering feeds", length) if shown else nullcontext(progress.QUIET) as advance:
        for fmt, kinds in share:
            for path, doc in builder.documents(summary, fmt, kinds):
                writer.write(path, doc)
                advance.update(1)
    if any(fmt == "html" for fmt, _ in share):
        for path, doc in summary.pages.items():
            writer.write(path, doc)


@main.command()
@config_option
@click.argument("path", required=False, type=click.Path(exists=True))
@click.option("--json", "as_json", is_flag=True, help="Print diagnostics as JSON.")
def check(config_file: str | None, path: str | None, as_json: bool) -> None:
    """Report problems in every seed file; exit 1 if any file is unusable."""
    config = _load(config_file)
    click.echo(f"config OK: {config.file}", err=True)
    count, diagnostics = check_files(Path(path) if path else config.seeds_path, config.globs, config.limits,
                                     track=partial(progress.track, label="Checking seed files"))
    errors = sum(1 for d in diagnostics if d.severity == "error")
    if as_json:
        click.echo(json.dumps({"files": count, "unusable": errors,
                               "diagnostics": [asdict(d) for d in diagnostics]}, indent=2))
    else:
        for d in diagnostics:
            click.echo(f"{d.file}: {d.field}: {d.severity}: {d.message}")
        click.echo(f"{count} files checked, {errors} unusable, "
                   f"{len(diagnostics) - errors} warnings", err=True)
    sys.exit(1 if errors else 0)


@main.command(name="list")
@config_option
def list_feeds(config_file: str | None) -> None:
    """List every feed with its entry count and URLs."""
    config = _load(config_file)
    snapshot = build_snapshot(config)
    for feed in snapshot.feeds.values():
        urls = "  ".join(feed.url(fmt) for fmt in FORMATS)
        click.echo(f"{feed.key}\t{feed.total}\t{feed.title}\t{urls}")
    left_out = ", ".join(f"{n} {reason}" for reason, n in snapshot.left_out.items()) or "none"
    click.echo(f"{snapshot.entry_count} entries published; left out: {left_out}; "
               f"{snapshot.errors} unusable files", err=True)


if __name__ == "__main__":
    main()
