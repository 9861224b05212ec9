"""The `seedfeeds` command: a thin shell over plain functions.

    seedfeeds serve [--host H] [--port P] [--workers N] [--access-log]   serve the feeds (granian)
    seedfeeds build --out DIR               write every document as static files
    seedfeeds check [PATH] [--json]         diagnostics for every seed file
    seedfeeds list                          feeds, entry counts, URLs
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from functools import partial
from pathlib import Path

import click

from feeds import Config, ConfigError, build_snapshot, load_config
from feeds.builder import check_files
from feeds.cold import build_site
from feeds.snapshot import Snapshot
from feeds.static import SiteWriter
from feeds.urls import FORMATS

from . import ACCESS_LOG_ENV, CONFIG_ENV, SERVE_PID_ENV, config_path, progress

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
    """A cold build written through `writer` on both cores (`feeds.cold`), with
    progress bars on a terminal."""
    return build_site(config, writer, bar=progress.bar)


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
