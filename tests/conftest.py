"""Shared fixtures: seed folders on disk, config files, and a real server on 127.0.0.1.

The server is `seedfeeds serve` in a subprocess on a free port, awaited with a
deadline and stopped by PID when the test ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from feeds import build_snapshot, load_config
from feeds.snapshot import Snapshot

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_SEEDS = ROOT / "seeds"
FIXTURE_SEEDS = Path(__file__).resolve().parent / "seeds"
SEEDFEEDS = str(Path(sys.executable).with_name("seedfeeds"))
STARTUP_DEADLINE = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.1) -> object:
    """Poll until `predicate()` is truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


STORY = ('---\ntitle: "Story {n}"\npublishedDateTime: 2021-01-{n:02d}T00:00:00Z\n'
         'originalUrl: "https://example.com/{n}"\ntopics: [Robots]\n---\n')


def write_stories(folder: Path, numbers) -> None:
    """Minimal seeds "Story N", dated January N, 2021, in `folder`: enough of them fill archive pages."""
    folder.mkdir(exist_ok=True)
    for n in numbers:
        (folder / f"story-{n}.md").write_text(STORY.format(n=n), encoding="utf-8")


def write_seeds(folder: Path, seeds: dict[str, str]) -> Path:
    """`folder`, holding each seed text of `seeds` under its file name."""
    folder.mkdir(exist_ok=True)
    for name, text in seeds.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def build_folder(tmp_path: Path, seeds: Path) -> Snapshot:
    """A cold build of the seed folder `seeds`, under a default config written in `tmp_path`."""
    return build_snapshot(load_config(write_config(tmp_path / "c.toml", seeds)))


def write_config(path: Path, seeds: Path, *, base_url: str = "http://127.0.0.1:8000",
                 refresh_seconds: int = 60, extra: str = "", feeds_extra: str = "",
                 seeds_extra: str = "") -> Path:
    """Write a config file for `seeds`; `extra` is appended TOML (named feeds...)."""
    path.write_text(
        f"""[site]
title = "Test feeds"
description = "Feeds for the tests."
base_url = "{base_url}"

[seeds]
path = "{seeds}"
{seeds_extra}

[feeds]
refresh_seconds = {refresh_seconds}
{feeds_extra}

{extra}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def seed_dir(tmp_path: Path) -> Path:
    """A copy of the bundled seeds, free to change."""
    folder = tmp_path / "seeds"
    shutil.copytree(BUNDLED_SEEDS, folder)
    return folder


@pytest.fixture
def config_file(tmp_path: Path, seed_dir: Path) -> Path:
    return write_config(tmp_path / "seedfeeds.toml", seed_dir)


def http_get(url: str, headers: dict[str, str] | None = None, method: str = "GET"):
    """(status, headers, body) of a request, without raising on 4xx/5xx."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@dataclass
class Server:
    """A `seedfeeds serve` subprocess on 127.0.0.1."""

    config: Path
    port: int
    log: Path
    process: subprocess.Popen | None = None
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()  # more `seedfeeds serve` options

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET"):
        return http_get(self.url(path), headers, method)

    def start(self) -> "Server":
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [SEEDFEEDS, "serve", "--config", str(self.config), "--port", str(self.port), *self.args],
                stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **self.env}, cwd=self.config.parent,
            )
        deadline = time.monotonic() + STARTUP_DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                status, _, _ = self.get("/healthz")
                if status in (200, 503):
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"server did not answer within {STARTUP_DEADLINE}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def wait_for_refresh(self, timeout: float = 15.0) -> None:
        """Return once a refresh has completed after this call began: the snapshot
        age the server reports goes down (it only grows between refreshes)."""
        def age() -> float:
            return json.loads(self.get("/healthz")[2])["snapshot_age_seconds"]

        last = [age()]

        def refreshed() -> bool:
            now = age()
            went_down = now < last[0]
            last[0] = now
            return went_down

        wait_for(refreshed, timeout, interval=0.05)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def _server_starter(folder: Path):
    started: list[Server] = []

    def start(config: Path, port: int | None = None, args: tuple[str, ...] = ()) -> Server:
        server = Server(config=config, port=port or free_port(), log=folder / f"server-{len(started)}.log", args=args)
        started.append(server)
        return server.start()

    return start, started


@pytest.fixture
def start_server(tmp_path: Path):
    """Start servers for a config; each is stopped when the test ends."""
    start, started = _server_starter(tmp_path)
    yield start
    for server in started:
        server.stop()


def _bundled_server(folder: Path, start) -> Server:
    seeds = folder / "seeds"
    shutil.copytree(BUNDLED_SEEDS, seeds)
    port = free_port()
    config = write_config(folder / "seedfeeds.toml", seeds,
                          base_url=f"http://127.0.0.1:{port}", refresh_seconds=1)
    return start(config, port)


@pytest.fixture
def server(tmp_path: Path, start_server) -> Server:
    """A server on a copy of the bundled seeds (in tmp_path/seeds), rescanning every second."""
    return _bundled_server(tmp_path, start_server)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory) -> Server:
    """Like `server`, shared by a module's read-only tests."""
    folder = tmp_path_factory.mktemp("shared")
    start, started = _server_starter(folder)
    yield _bundled_server(folder, start)
    for server in started:
        server.stop()
