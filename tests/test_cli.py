"""The `seedfeeds` command and `flask --app web run`, run as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import FIXTURE_SEEDS, SEEDFEEDS, free_port, http_get, wait_for, write_config


def run(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([SEEDFEEDS, *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**os.environ, **(env or {})})


def test_check_passes_on_the_bundled_seeds(config_file):
    """`check` exits 0 on good seeds."""
    result = run("check", "--config", str(config_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 files checked, 0 unusable" in result.stderr


def test_check_reports_unusable_files_and_exits_1(config_file):
    """`check PATH` lists each problem as file: field: severity: message and exits 1."""
    result = run("check", str(FIXTURE_SEEDS / "flawed"), "--config", str(config_file))
    assert result.returncode == 1
    assert "missing_title.txt: title: error: is missing" in result.stdout.splitlines()


def test_check_json_is_machine_readable(config_file):
    """`check --json` prints every diagnostic with file, field, severity and message."""
    result = run("check", str(FIXTURE_SEEDS / "flawed"), "--json", "--config", str(config_file))
    report = json.loads(result.stdout)
    assert report["unusable"] == 8
    assert {"file": "naive_date.txt", "field": "publishedDateTime", "severity": "warning",
            "message": "date has no time zone; read as UTC", "stale": False} in report["diagnostics"]


def test_check_a_single_file(config_file):
    """`check FILE` checks just that file."""
    result = run("check", str(FIXTURE_SEEDS / "flawed" / "bad_yaml.txt"), "--config", str(config_file))
    assert result.returncode == 1 and result.stdout.startswith("bad_yaml.txt: (yaml): error:")


def test_list_shows_feeds_counts_and_urls(config_file):
    """`list` prints each feed's key, entry count, title and three URLs, and what was left out."""
    result = run("list", "--config", str(config_file))
    assert result.returncode == 0
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [r[0] for r in rows] == ["all", "topics/ai", "topics/computer-vision", "providers/forbes.com"]
    assert rows[0][1] == "1"
    assert "http://127.0.0.1:8000/feeds/all.atom  http://127.0.0.1:8000/feeds/all.rss" in rows[0][3]
    assert "left out: 4 unpublished" in result.stderr


def test_scheduler_starts_once_under_flasks_reloader(tmp_path, seed_dir):
    """`flask --app web run --reload` starts one scheduler: in the serving child, not the watcher."""
    port = free_port()
    config = write_config(tmp_path / "c.toml", seed_dir, base_url=f"http://127.0.0.1:{port}")
    log = tmp_path / "flask.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("flask")), "--app", "web", "run", "--reload", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
            env={**os.environ, "SEEDFEEDS_CONFIG": str(config), "PYTHONWARNINGS": "ignore"},
        )
    try:
        wait_for(lambda: _status(f"http://127.0.0.1:{port}/healthz") == 200, timeout=30)
        for _ in range(3):
            assert http_get(f"http://127.0.0.1:{port}/feeds/all.atom")[0] == 200
        time.sleep(0.5)
        text = log.read_text()
        assert text.count("scheduler started") == 1, text
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the reloader's watcher and its serving child
        process.wait(timeout=10)


def _status(url: str) -> int | None:
    try:
        return http_get(url)[0]
    except OSError:
        return None


def test_serve_stops_on_sigterm_even_during_its_first_build(tmp_path):
    """SIGTERM while the first build is still running stops the server and its children."""
    from bench_scripts import generate_corpus

    seeds = generate_corpus(tmp_path / "seeds", 1500)
    config = write_config(tmp_path / "c.toml", seeds)
    process = subprocess.Popen([SEEDFEEDS, "serve", "--config", str(config), "--port", str(free_port())],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(1.5)  # the worker is up and building: 1,500 seeds take a few seconds
    os.kill(process.pid, signal.SIGTERM)
    try:
        assert process.wait(timeout=20) is not None
        wait_for(lambda: not _group_alive(process.pid), timeout=10)
    finally:
        _kill_group(process.pid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
