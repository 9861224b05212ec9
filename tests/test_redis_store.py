"""Several serving processes sharing one Redis: one builds, every one serves the same bytes.

Real parts: a `redis-server` on a free 127.0.0.1 port (no persistence, its
files in tmp_path) and `seedfeeds serve` processes rescanning every second, so
the builder lease is one second. Every process is stopped by PID.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from bench_scripts import load_bench
from conftest import SEEDFEEDS, free_port, wait_for, write_config, write_stories
from feeds import build_snapshot, load_config
from web.pacing import children_of
from web.redis_store import LEASE

REDIS_SERVER = "/usr/bin/redis-server"
SEED = "000_3416384145912650.txt"
PATHS = ("/", "/feeds/all.atom", "/feeds/all.rss", "/feeds/all.json", "/feeds/topics/ai.atom",
         "/feeds/all.json?limit=1")



@dataclass
class RedisServer:
    """A redis-server process on 127.0.0.1 that can be stopped and started again on its port."""

    folder: Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        with (self.folder / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.folder)], stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._pong, timeout=10)
        return self

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path):
    server = RedisServer(tmp_path, free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def shared_config(tmp_path: Path, seed_dir: Path, redis_server: RedisServer) -> Path:
    """One config for every process, as behind a load balancer: same seeds, same public URL."""
    return write_config(tmp_path / "seedfeeds.toml", seed_dir, base_url="http://feeds.example", refresh_seconds=1,
                        extra=f'[serve]\nsnapshot_store = "{redis_server.url}"\n')


@pytest.fixture
def pair(start_server, shared_config):
    """Two `seedfeeds serve` processes on their own ports, sharing one Redis."""
    return [start_server(shared_config), start_server(shared_config)]


def health(server) -> dict:
    return json.loads(server.get("/healthz")[2])


def builders(servers) -> list:
    return [s for s in servers if health(s)["builder"]]


def answers(server) -> dict:
    """What a reader gets for each path, plain and gzip: status, body, validators."""
    seen = {}
    for path in PATHS:
        for coding in ("identity", "gzip"):
            status, headers, body = server.get(path, {"Accept-Encoding": coding})
            seen[path, coding] = (status, body, headers["ETag"], headers["Last-Modified"], headers["Content-Type"])
    return seen


def edit_seed(seeds: Path, title: str) -> None:
    seed = seeds / SEED
    text = seed.read_text(encoding="utf-8")
    old = text.split("title: ", 1)[1].split("\n", 1)[0]
    seed.write_text(text.replace(old, f'"{title}"', 1), encoding="utf-8")


def serves_title(server, title: str) -> bool:
    status, _, body = server.get("/feeds/all.json")
    return status == 200 and json.loads(body)["items"][0]["title"] == title


def test_exactly_one_process_builds(pair):
    """Of two processes sharing Redis, exactly one holds the lease and rescans; the other only serves."""
    wait_for(lambda: len(builders(pair)) == 1)
    time.sleep(1.5)  # a few lease renewals later, still one
    [builder] = builders(pair)
    [follower] = [s for s in pair if s is not builder]
    assert health(builder)["version"] == health(follower)["version"] is not None
    assert "holds the lease" in builder.logs() and "holds the lease" not in follower.logs()
    assert "refresh outcome=" in builder.logs() and "refresh outcome=" not in follower.logs()
    assert health(follower)["status"] == "ok"


def test_seed_change_reaches_every_process_with_the_same_bytes(pair, seed_dir):
    """A changed seed shows in every process with identical bodies, ETags and Last-Modified."""
    wait_for(lambda: len(builders(pair)) == 1)
    assert answers(pair[0]) == answers(pair[1])
    edit_seed(seed_dir, "Shared Through Redis")
    wait_for(lambda: all(serves_title(s, "Shared Through Redis") for s in pair))
    first, second = answers(pair[0]), answers(pair[1])
    assert first == second
    assert all(status == 200 for status, *_ in first.values())
    etag = first["/feeds/all.atom", "identity"][2]
    for server in pair:  # a validator from one process is good at the other
        assert server.get("/feeds/all.atom", {"If-None-Match": etag})[0] == 304


def test_archive_pages_reach_every_process_byte_for_byte(start_server, tmp_path, redis_server):
    """Full archive pages, kept gzipped only by whoever serves them, travel through
    Redis and are answered by every process with a build's bytes, with or without gzip."""
    seeds = tmp_path / "archived"
    write_stories(seeds, range(1, 8))
    config = write_config(tmp_path / "archived.toml", seeds, base_url="http://feeds.example", refresh_seconds=1,
                          feeds_extra="entries_per_feed = 2",
                          extra=f'[serve]\nsnapshot_store = "{redis_server.url}"\n')
    servers = [start_server(config), start_server(config)]
    wait_for(lambda: len(builders(servers)) == 1)
    built = build_snapshot(load_config(config)).documents["/feeds/all/archive/1.atom"]
    assert built.immutable
    for server in servers:
        wait_for(lambda: server.get("/feeds/all/archive/1.atom")[0] == 200)
        assert server.get("/feeds/all/archive/1.atom", {"Accept-Encoding": "identity"})[2] == built.body
        assert server.get("/feeds/all/archive/1.atom", {"Accept-Encoding": "gzip"})[2] == built.gzip_body


def test_killed_builder_is_replaced_within_an_interval(pair, seed_dir):
    """SIGKILL the builder's server: the other process takes the lease within about one interval, and builds."""
    [builder] = wait_for(lambda: builders(pair) if len(builders(pair)) == 1 else None)
    [survivor] = [s for s in pair if s is not builder]
    before = answers(survivor)
    os.kill(builder.process.pid, signal.SIGKILL)
    builder.process.wait(timeout=10)
    killed = time.monotonic()
    wait_for(lambda: health(survivor)["builder"], timeout=5, interval=0.05)
    assert time.monotonic() - killed < 3.0  # lease 1 s, checked three times a second
    wait_for(lambda: "refresh outcome=" in survivor.logs())
    assert answers(survivor) == before  # a new builder changes nothing readers see, not even Last-Modified
    edit_seed(seed_dir, "Built By The Successor")
    wait_for(lambda: serves_title(survivor, "Built By The Successor"))
    wait_for(lambda: _refuses(builder), timeout=5)  # its orphaned worker stopped too: no one keeps the old lease


def test_stopped_builder_hands_the_lease_back(start_server, tmp_path, seed_dir, redis_server):
    """A builder stopped the normal way (SIGTERM, as in a rolling deploy) gives the lease
    back as it exits: the other process takes over at its next tick, not when a
    10-second lease runs out."""
    config = write_config(tmp_path / "slow.toml", seed_dir, base_url="http://feeds.example", refresh_seconds=60,
                          extra=f'[serve]\nsnapshot_store = "{redis_server.url}"\n')
    servers = [start_server(config), start_server(config)]
    [builder] = wait_for(lambda: builders(servers) if len(builders(servers)) == 1 else None, timeout=15)
    [survivor] = [s for s in servers if s is not builder]
    store = redis.Redis.from_url(redis_server.url)
    holder = store.get(LEASE)
    assert holder is not None and store.pttl(LEASE) > 5000  # a 10 s lease, renewed every 3.3 s
    builder.stop()
    assert builder.process.returncode == 0
    stopped = time.monotonic()
    assert store.get(LEASE) != holder  # released on the way out, not left to expire
    assert "handed the lease back" in builder.logs()
    wait_for(lambda: health(survivor)["builder"], timeout=8, interval=0.05)
    assert time.monotonic() - stopped < 5.0  # the survivor's next tick (every 3.3 s), well inside the lease
    store.close()


def _refuses(server) -> bool:
    try:
        server.get("/healthz")
    except OSError:
        return True
    return False


def test_servers_ride_out_a_redis_restart(pair, seed_dir, redis_server):
    """With Redis down every process keeps serving the same bytes and says degraded; after a
    restart (its data gone) they recover by themselves and changes flow again."""
    wait_for(lambda: len(builders(pair)) == 1)
    before = answers(pair[0])
    redis_server.stop()
    wait_for(lambda: all(s.get("/healthz")[0] == 503 for s in pair))
    for server in pair:
        assert "snapshot store" in health(server)["reason"]
        assert answers(server) == before
    redis_server.start()  # empty: the builder must publish everything again
    wait_for(lambda: all(s.get("/healthz")[0] == 200 for s in pair), timeout=10)
    assert len(builders(pair)) == 1
    assert answers(pair[0]) == answers(pair[1]) == before
    edit_seed(seed_dir, "After The Restart")
    wait_for(lambda: all(serves_title(s, "After The Restart") for s in pair))
    assert answers(pair[0]) == answers(pair[1])


def test_workers_share_one_builder(start_server, shared_config):
    """`serve --workers 2` runs two worker processes that elect one builder between them."""
    server = start_server(shared_config, args=("--workers", "2"))
    wait_for(lambda: server.logs().count("shares snapshots through Redis") == 2)
    wait_for(lambda: "serves version" in server.logs())
    time.sleep(1.5)
    assert server.logs().count("holds the lease") == 1
    assert server.get("/feeds/all.atom")[0] == 200
    # The one builder's pacer watches every worker of this `serve`, not only its own.
    pacers = [argv for argv in map(command_line, load_bench("procs").descendants(server.process.pid))
              if argv[3:4] and argv[3].endswith("pacing.py")]
    assert [argv[-1] for argv in pacers] == [str(server.process.pid)]
    assert len(children_of(server.process.pid)) == 2


def command_line(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


def test_several_workers_need_a_redis_store(config_file):
    """`serve --workers 2` without a Redis store stops with one line naming serve.snapshot_store, exit 2."""
    result = subprocess.run([SEEDFEEDS, "serve", "--workers", "2", "--port", "0", "--config", str(config_file)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "serve.snapshot_store" in lines[0]
