"""`build` and `check` show progress bars on a terminal's stderr, and nothing when stderr is piped."""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path

import pytest

from conftest import SEEDFEEDS, write_config
from feeds.builder import PARALLEL_MIN

FILES = PARALLEL_MIN + 44

SEED = """---
title: "Article {n}"
publishedDateTime: 2021-03-{day:02d}T08:00:00Z
originalUrl: "https://example.com/news/{n}"
provider: {{name: Example, domain: example.com}}
topics: [Topic {topic}]
---
Body {n}.
"""


@pytest.fixture(scope="module")
def large(tmp_path_factory) -> Path:
    """A config over enough seed files that `build` reads them in parallel."""
    folder = tmp_path_factory.mktemp("large")
    seeds = folder / "seeds"
    seeds.mkdir()
    for n in range(FILES):
        (seeds / f"{n:04d}.txt").write_text(SEED.format(n=n, day=n % 28 + 1, topic=n % 7), encoding="utf-8")
    return write_config(folder / "c.toml", seeds, extra=f'[state]\npath = "{folder}/state"')


def run_on_terminal(*args: str, prefix: tuple[str, ...] = ()) -> tuple[int, str, str]:
    """Run seedfeeds (after `prefix`, a command that runs it) with stderr on a
    pseudo-terminal: (status, stdout, what the terminal showed)."""
    controller, terminal = pty.openpty()
    with subprocess.Popen([*prefix, SEEDFEEDS, *args], stdout=subprocess.PIPE, stderr=terminal, stdin=subprocess.DEVNULL) as process:
        os.close(terminal)
        shown = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every holder of the terminal closed it
                break
            if not chunk:
                break
            shown.append(chunk)
        os.close(controller)
        stdout = process.stdout.read().decode()
    return process.returncode, stdout, b"".join(shown).decode(errors="replace")


def run_piped(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([SEEDFEEDS, *args], capture_output=True, text=True, timeout=300)


def test_build_shows_progress_on_a_terminal(large, tmp_path):
    """On a terminal, `build` shows bars for reading the seeds and rendering the feeds, to the end."""
    status, stdout, shown = run_on_terminal("build", "--config", str(large), "--out", str(tmp_path / "site"))
    assert status == 0 and stdout.startswith("wrote ")
    assert re.search(rf"Reading seed files  \[#+\]  {FILES}/{FILES}  100%", shown)
    # It counts documents (archive pages too) and ends at its own length: N/N.
    assert re.search(r"Rendering feeds  \[#+\]  (\d+)/\1  100%", shown.rpartition("Rendering feeds")[1] +
                     shown.rpartition("Rendering feeds")[2])


def test_on_one_cpu_build_reads_the_seeds_in_one_process(large, tmp_path):
    """Given one CPU, `build` reads every seed itself: no fork, so no reading bar
    (its count covers two processes), and the same files as on two CPUs."""
    status, _, shown = run_on_terminal("build", "--config", str(large), "--out", str(tmp_path / "two"))
    assert status == 0 and "Reading seed files" in shown
    status, _, shown = run_on_terminal("build", "--config", str(large), "--out", str(tmp_path / "one"),
                                       prefix=("taskset", "-c", "0"))
    assert status == 0 and "Reading seed files" not in shown and "Rendering feeds" in shown
    two, one = (sorted(p.relative_to(tmp_path / name) for p in (tmp_path / name).rglob("*") if p.is_file())
                for name in ("two", "one"))
    assert one == two and Path("feeds/all.atom") in one
    assert all((tmp_path / "one" / p).read_bytes() == (tmp_path / "two" / p).read_bytes() for p in one)


def test_build_is_quiet_when_piped(large, tmp_path):
    """With stderr piped, `build` writes nothing but its summary line to stdout."""
    result = run_piped("build", "--config", str(large), "--out", str(tmp_path / "site"))
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("wrote ") and len(result.stdout.splitlines()) == 1


def test_check_shows_progress_on_a_terminal(large):
    """On a terminal, `check` shows a bar over the files it reads, then its summary."""
    status, _, shown = run_on_terminal("check", "--config", str(large))
    assert status == 0
    assert re.search(rf"Checking seed files  \[#+\]  {FILES}/{FILES}  100%", shown)
    assert shown.rstrip().endswith(f"{FILES} files checked, 0 unusable, 0 warnings")


def test_check_is_quiet_when_piped(large):
    """With stderr piped, `check` writes only its config line and its summary line there."""
    result = run_piped("check", "--config", str(large))
    assert result.returncode == 0
    assert result.stderr == f"config OK: {large.resolve()}\n{FILES} files checked, 0 unusable, 0 warnings\n"


def test_small_build_still_ends_its_bars(tmp_path, seed_dir):
    """A folder read in-process shows only the rendering bar, finished with a newline."""
    config = write_config(tmp_path / "c.toml", seed_dir)
    status, _, shown = run_on_terminal("build", "--config", str(config), "--out", str(tmp_path / "site"))
    assert status == 0 and "Reading seed files" not in shown
    assert shown.endswith("\r\n") and "100%" in shown
