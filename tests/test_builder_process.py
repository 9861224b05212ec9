"""`seedfeeds serve` builds in a child process and receives only what changed:
what it serves must be exactly what an in-process build makes, and the child
must never take CPU from the process answering requests."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench_scripts import generate_corpus, load_bench
from conftest import wait_for, write_config
from feeds import Builder, load_config
from feeds.builder import PARALLEL_MIN
from feeds.snapshot import plain_body
from web import SERVE_PID_ENV, builder_process, pacing
from web.builder_process import BuilderProcess


def config_named(tmp_path: Path, seeds: Path, name: str):
    """A config over `seeds` with a state folder of its own (`name`-state)."""
    return load_config(write_config(tmp_path / f"{name}.toml", seeds,
                                    extra=f'[state]\npath = "{tmp_path / (name + "-state")}"\n'))


def builders(tmp_path: Path, seeds: Path) -> tuple[Builder, BuilderProcess]:
    """An in-process builder and a child-process one over the same seeds, each with its own state."""
    return Builder(config_named(tmp_path, seeds, "local")), BuilderProcess(config_named(tmp_path, seeds, "child"))


def assert_same(local, child) -> None:
    """The same documents (full archive pages kept gzipped only, inflating to the same bytes), feeds, counts."""
    assert list(child.documents) == list(local.documents)
    for path, doc in local.documents.items():
        theirs = child.documents[path]
        assert (plain_body(theirs), theirs.gzip_body, theirs.etag, theirs.media_type) == \
            (doc.body, doc.gzip_body, doc.etag, doc.media_type), path
        assert (theirs.body is None) == doc.immutable, path
    assert dict(child.feeds) == dict(local.feeds)
    assert list(child.pages) == list(local.pages)
    assert (child.entry_count, child.file_count, child.diagnostics) == \
        (local.entry_count, local.file_count, local.diagnostics)


def retitle(path: Path, words: str) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r'^title: "', f'title: "{words} ', text, count=1, flags=re.MULTILINE), encoding="utf-8")


def retitle_all(folder: Path) -> None:
    """Every seed changed: the next build is a full rebuild."""
    for path in sorted(folder.rglob("*.txt")):
        retitle(path, "Revised")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    # Enough entries for archive pages, and entries shared by many feeds.
    return generate_corpus(tmp_path / "seeds", 300)


def test_the_child_serves_what_an_in_process_build_makes_through_edits(tmp_path, corpus):
    local, child = builders(tmp_path, corpus)
    try:
        assert_same(local.build(), first := child.build())

        files = sorted(corpus.rglob("*.txt"))
        retitle(files[0], "Edited")
        files[1].unlink()
        (files[2].parent / "added-copy.txt").write_bytes(files[3].read_bytes().replace(b"https://", b"https://copy."))
        second = child.build()
        assert_same(local.build(), second)
        assert any(b"Edited " in plain_body(doc) for doc in second.documents.values())
        # Documents the change did not touch are the very objects served before.
        kept = [path for path, doc in second.documents.items() if first.documents.get(path) is doc]
        assert kept and len(kept) < len(second.documents)

        assert child.build() is second  # nothing changed: the same snapshot object
    finally:
        child.close()


def test_a_builder_that_forgot_its_bodies_still_makes_what_a_cold_build_makes(tmp_path, corpus):
    """The child drops the bytes it has sent (`Builder.forget_bodies`): its later builds
    still tell unchanged documents (the same stub objects, never sent again) from changed
    ones, and every changed one has the bytes a cold build makes."""
    builder = Builder(config_named(tmp_path, corpus, "warm"))
    first = builder.build()
    stubbed = builder.forget_bodies()
    feed_paths = [path for path in stubbed.documents if path not in stubbed.pages]
    assert feed_paths and all(stubbed.documents[p].body is None and stubbed.documents[p].gzip_body is None
                              for p in feed_paths)
    assert [d.etag for d in stubbed.documents.values()] == [d.etag for d in first.documents.values()]
    assert all(stubbed.documents[p] is first.documents[p] for p in stubbed.pages)  # pages are not rendered feeds
    assert builder.build() is stubbed  # nothing changed: the same snapshot object
    del first

    retitle(sorted(corpus.rglob("*.txt"))[0], "Edited")
    second = builder.build()
    cold = Builder(config_named(tmp_path, corpus, "cold")).build()
    assert list(second.documents) == list(cold.documents)
    kept = [path for path, doc in second.documents.items() if doc is stubbed.documents[path]]
    fresh = [path for path in second.documents if path not in kept]
    assert fresh and any(b"Edited " in second.documents[p].body for p in fresh)
    assert any(path in feed_paths for path in kept)  # feeds the edit did not touch: the stubs, not re-sent
    for path in kept:
        assert second.documents[path].etag == cold.documents[path].etag
    for path in fresh:
        doc, theirs = second.documents[path], cold.documents[path]
        assert (doc.body, doc.gzip_body, doc.etag) == (theirs.body, theirs.gzip_body, theirs.etag), path


def test_a_full_rebuild_reaches_the_serving_process_in_small_messages(tmp_path, corpus, monkeypatch):
    """Unpickling holds the serving process's GIL: no message may carry the whole snapshot."""
    local, child = builders(tmp_path, corpus)
    sizes: list[tuple[str, int]] = []
    real_loads = builder_process.Connection.recv

    def recv(conn):
        message = real_loads(conn)
        sizes.append((message[0] if isinstance(message, tuple) else message,
                      len(message[1]) if isinstance(message, tuple) and hasattr(message[1], "__len__") else 0))
        return message

    monkeypatch.setattr(builder_process.Connection, "recv", recv)
    try:
        retitle_all(corpus)
        assert_same(local.build(), child.build())
    finally:
        child.close()
    kinds = {kind for kind, _ in sizes}
    assert {"documents", "entries", "feeds", "done"} <= kinds
    assert max(n for kind, n in sizes if kind == "entries") <= builder_process.CHUNK_ENTRIES
    assert max(n for kind, n in sizes if kind == "feeds") <= builder_process.CHUNK_FEEDS
    assert sum(1 for kind, _ in sizes if kind == "entries") >= 2


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux-only; elsewhere the child runs at nice 19")
def test_the_builder_child_only_takes_cpu_the_server_leaves(tmp_path, seed_dir):
    """SCHED_IDLE, on one CPU: a rebuild runs in what the server leaves."""
    config = load_config(write_config(tmp_path / "c.toml", seed_dir))
    child = BuilderProcess(config)
    try:
        child.build()
        assert os.sched_getscheduler(child.pid) == os.SCHED_IDLE
        assert os.sched_getscheduler(os.getpid()) != os.SCHED_IDLE
        ours = sorted(os.sched_getaffinity(0))
        # Kept on one CPU where there are several (moving between them, it costs requests more).
        assert os.sched_getaffinity(child.pid) == ({ours[-1]} if len(ours) > 1 else set(ours))
        assert sorted(os.sched_getaffinity(0)) == ours  # the serving process is left as it was
    finally:
        child.close()


def test_the_serving_worker_hands_the_gil_over_within_half_a_millisecond(tmp_path, seed_dir):
    """The worker `serve` runs (web.serving.wsgi_app, in a process of its own here)
    lowers CPython's switch interval from 5 ms: while a refresh thread runs Python,
    a request thread waits at most about that long for the GIL."""
    import subprocess
    import sys

    config = write_config(tmp_path / "c.toml", seed_dir)
    script = ("import os, sys\nfrom web.serving import wsgi_app\nwsgi_app()\n"
              "print(sys.getswitchinterval(), flush=True)\nos._exit(0)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "SEEDFEEDS_CONFIG": str(config)}, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.split()[-1]) == pytest.approx(0.0005)
    assert sys.getswitchinterval() == pytest.approx(0.005)  # this process is left alone


def state_of(pid: int) -> str:
    """The process's state letter (R running, S sleeping, T stopped...), or "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return ""


def sampling_while(work, sample, interval: float):
    """`work()`'s result, calling `sample()` every `interval` seconds meanwhile (in a thread)."""
    done = threading.Event()

    def loop() -> None:
        while not done.is_set():
            sample()
            time.sleep(interval)

    sampler = threading.Thread(target=loop)
    sampler.start()
    try:
        return work()
    finally:
        done.set()
        sampler.join()


def states_while(pid: int, work):
    """`work()`'s result, and the states of process `pid` sampled every 2 ms meanwhile."""
    samples: list[str] = []
    return sampling_while(work, lambda: samples.append(state_of(pid)), 0.002), samples


@contextmanager
def busy_serving_process():
    """This process (the builder's parent) busy on another CPU, as a server answering
    requests is: hashing releases the GIL, so the test's own threads still run."""
    stop = threading.Event()
    data = os.urandom(1 << 22)

    def burn() -> None:
        while not stop.is_set():
            hashlib.sha256(data).digest()

    burner = threading.Thread(target=burn)
    burner.start()
    try:
        yield
    finally:
        stop.set()
        burner.join()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the server and the builder need a CPU each")
def test_the_builder_runs_in_short_slices_only_while_its_server_is_busy(tmp_path, corpus):
    """A quiet server: the builder is never stopped. A busy one: the pacer stops it
    8 ms in every 10 while it builds, and the build still makes the same bytes."""
    local, child = builders(tmp_path, corpus)
    try:
        built, quiet = states_while(child.pid, child.build)
        assert_same(local.build(), built)
        assert "T" not in quiet and "R" in quiet
        [pacer] = load_bench("procs").children(child.pid)
        assert os.sched_getscheduler(pacer) != os.SCHED_IDLE  # it must run on time to stop the builder

        retitle_all(corpus)
        with busy_serving_process():
            built, busy = states_while(child.pid, child.build)
        assert_same(local.build(), built)
        stopped = busy.count("T") / len(busy)
        assert stopped > 0.5, f"stopped in {stopped:.0%} of {len(busy)} samples"
        assert state_of(child.pid) != "T"  # left running, waiting for the next build
    finally:
        child.close()
    wait_for(lambda: state_of(pacer) in ("", "Z"), timeout=2, interval=0.02)  # the pacer ends with its builder


def built_then_retitled(tmp_path: Path, corpus: Path) -> tuple[Builder, BuilderProcess, int]:
    """Builders as `builders` makes them, the child's first build done, its pacer's
    pid, and every seed retitled: the child's next build is a full rebuild."""
    local, child = builders(tmp_path, corpus)
    try:
        child.build()
        [pacer] = load_bench("procs").children(child.pid)
    except BaseException:
        child.close()
        raise
    retitle_all(corpus)
    return local, child, pacer


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the server and the builder need a CPU each")
def test_a_stopped_pacer_leaves_its_builder_running(tmp_path, corpus):
    """SIGTERM to the pacer in the middle of a paced build: the build goes on to the end."""
    local, child, pacer = built_then_retitled(tmp_path, corpus)
    try:
        with busy_serving_process():
            threading.Timer(0.3, os.kill, (pacer, signal.SIGTERM)).start()
            built, states = states_while(child.pid, child.build)
        assert "T" in states  # it was paced before the pacer went
        assert_same(local.build(), built)
        assert state_of(pacer) in ("", "Z")
        assert state_of(child.pid) not in ("T", "")
    finally:
        child.close()


def test_a_builder_left_stopped_by_a_killed_pacer_is_resumed(tmp_path, corpus):
    """SIGKILL to the pacer while the builder is stopped (no SIGCONT can follow):
    the serving process notices, resumes the builder, and the build completes."""
    local, child, pacer = built_then_retitled(tmp_path, corpus)
    try:
        os.kill(pacer, signal.SIGKILL)
        os.kill(child.pid, signal.SIGSTOP)  # as the pacer had just done when it was killed
        wait_for(lambda: state_of(child.pid) == "T", timeout=2, interval=0.001)  # a signal lands a moment later
        result: list = []
        waiting = threading.Thread(target=lambda: result.append(child.build()))
        waiting.start()
        waiting.join(timeout=60)
        if waiting.is_alive():  # never resumed: let it go on so the test can end
            os.kill(child.pid, signal.SIGCONT)
            waiting.join()
            pytest.fail("the build never ended: the builder was left stopped")
        assert_same(local.build(), result[0])
        assert state_of(child.pid) not in ("T", "")
    finally:
        child.close()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the server and the builder need a CPU each")
def test_pacing_can_be_turned_off_and_back_on_by_a_config_reload(tmp_path, corpus):
    """`[serve] pace_builds = false`: a busy server's rebuild is never stopped. The
    same builder reconfigured with it true is paced from its next rebuild."""
    def config(paced: bool):
        extra = f'[state]\npath = "{tmp_path / "state"}"\n[serve]\npace_builds = {str(paced).lower()}\n'
        return load_config(write_config(tmp_path / "pacing.toml", corpus, extra=extra))

    child = BuilderProcess(config(paced=False))
    try:
        with busy_serving_process():
            _, unpaced = states_while(child.pid, child.build)
        assert "T" not in unpaced and "R" in unpaced

        child.reconfigure(config(paced=True))
        retitle_all(corpus)
        with busy_serving_process():
            _, paced = states_while(child.pid, child.build)
        assert paced.count("T") / len(paced) > 0.5
    finally:
        child.close()


# A serving process of its own, as each of `seedfeeds serve --workers N`'s workers is:
# it holds a BuilderProcess and builds on each line it reads.
WORKER_SCRIPT = """
import sys
from feeds import load_config
from web.builder_process import BuilderProcess
child = BuilderProcess(load_config(sys.argv[1]))
print(child.pid, flush=True)
for _ in sys.stdin:
    child.build()
    print("built", flush=True)
child.close()
"""


@contextmanager
def serving_worker(config: Path, named_by_serve: bool):
    """A worker process started by this test process; `named_by_serve`: with
    $SEEDFEEDS_SERVE_PID naming this process, as `seedfeeds serve` names itself to
    its workers. Yields its builder's pid and a function that has it build."""
    env = {key: value for key, value in os.environ.items() if key != SERVE_PID_ENV}
    if named_by_serve:
        env[SERVE_PID_ENV] = str(os.getpid())
    worker = subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, str(config)], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        builder = int(worker.stdout.readline())

        def build() -> None:
            worker.stdin.write("build\n")
            worker.stdin.flush()
            assert worker.stdout.readline() == "built\n"

        yield builder, build
    finally:
        worker.stdin.close()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        worker.stdout.close()


@contextmanager
def busy_sibling_worker():
    """Another child of this process burning the first CPU, as a worker under load
    does (the builder is on the last)."""
    cpu = min(os.sched_getaffinity(0))
    burner = subprocess.Popen([sys.executable, "-c", f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"])
    try:
        yield
    finally:
        burner.kill()
        burner.wait()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the sibling and the builder need a CPU each")
def test_a_busy_sibling_worker_of_seedfeeds_serve_paces_the_builder_too(tmp_path, corpus):
    """Under `seedfeeds serve --workers N`, the builder rests while any worker is busy,
    not only its own: here its worker is idle and a sibling is busy. A worker that
    `seedfeeds serve` did not start watches only itself."""
    for named_by_serve in (True, False):
        extra = f'[state]\npath = "{tmp_path / f"state-{named_by_serve}"}"\n'
        config = write_config(tmp_path / f"worker-{named_by_serve}.toml", corpus, extra=extra)
        with serving_worker(config, named_by_serve) as (builder, build):
            build()
            retitle_all(corpus)
            with busy_sibling_worker():
                time.sleep(pacing.RELIST_SECONDS + 0.5)  # the pacer lists the workers again
                _, states = states_while(builder, build)
        stopped = states.count("T") / len(states)
        if named_by_serve:
            assert stopped > 0.5, f"stopped in {stopped:.0%} of {len(states)} samples"
        else:
            assert "T" not in states and "R" in states


def readers_of(builder: int) -> set[int]:
    """The readers of the builder's reading pool: its children forked from it (the
    same command line; its pacer and multiprocessing's resource tracker have their own)."""
    found = set()
    try:
        own = Path(f"/proc/{builder}/cmdline").read_bytes()
    except OSError:  # gone
        return found
    for child in pacing.children_of(builder):
        try:
            if Path(f"/proc/{child}/cmdline").read_bytes() == own:
                found.add(child)
        except OSError:  # just ended
            continue
    return found


def readers_while(builder: int, work) -> tuple[object, dict[int, set[int] | None]]:
    """`work()`'s result, and each reader of `builder` seen meanwhile (1 ms samples)
    with the CPUs it may run on (None if it ended before they were read).

    A reader is a child with the builder's command line for 20 ms or more: a child
    the builder starts with subprocess (the pacer) has that command line too, from
    its fork to its exec, and a 1 ms sampler catches that now and then."""
    seen: dict[int, set[int] | None] = {}
    first_seen: dict[int, float] = {}

    def sample() -> None:
        now = time.monotonic()
        for reader in readers_of(builder) - seen.keys():
            if now - first_seen.setdefault(reader, now) < 0.02:
                continue
            try:
                seen[reader] = os.sched_getaffinity(reader)
            except OSError:
                seen[reader] = None

    return sampling_while(work, sample, 0.001), seen


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="reading on every CPU needs two")
def test_the_first_build_of_serve_reads_on_every_cpu_and_makes_what_an_in_process_build_makes(tmp_path, corpus):
    """`seedfeeds serve` answers nothing until its first build is done, so that build
    reads in a pool with a reader per CPU; the builder keeps to one CPU again after
    it, and later builds (beside requests) read in the builder alone."""
    assert len(list(corpus.rglob("*.txt"))) >= PARALLEL_MIN  # or the builder reads in-process
    cpus = os.sched_getaffinity(0)
    local = Builder(config_named(tmp_path, corpus, "local"))
    child = BuilderProcess(config_named(tmp_path, corpus, "child"), first_build_alone=True)
    try:
        first, readers = readers_while(child.pid, child.build)
        assert_same(local.build(), first)
        assert len(readers) == len(cpus)
        assert all(allowed in (cpus, None) for allowed in readers.values()) and cpus in readers.values()
        assert readers_of(child.pid) == set()  # the pool ended with the build
        assert os.sched_getaffinity(child.pid) == {max(cpus)}  # back on its one CPU

        retitle_all(corpus)  # every file read again, now beside requests: no pool
        second, readers = readers_while(child.pid, child.build)
        assert readers == {}
        assert_same(local.build(), second)
    finally:
        child.close()

    plain = BuilderProcess(config_named(tmp_path, corpus, "plain"))
    try:
        cold, readers = readers_while(plain.pid, plain.build)  # a builder that may be serving beside its first build
        assert readers == {}
        assert_same(local.build(), cold)
    finally:
        plain.close()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="reading on every CPU needs two")
def test_the_readers_of_a_first_build_end_with_a_builder_killed_during_it(tmp_path):
    """A reader outliving its builder would wait for work forever."""
    seeds = generate_corpus(tmp_path / "seeds", 2000)
    child = BuilderProcess(config_named(tmp_path, seeds, "child"), first_build_alone=True)
    failed: list[BaseException] = []

    def build() -> None:
        try:
            child.build()
        except BaseException as exc:  # noqa: BLE001 - the builder is killed: its pipe closes
            failed.append(exc)

    builder = threading.Thread(target=build)
    builder.start()
    readers: set[int] = set()
    try:
        def all_readers() -> set[int] | None:
            found = readers_of(child.pid)
            return found if len(found) == len(os.sched_getaffinity(0)) else None

        readers = wait_for(all_readers, interval=0.002)
        assert all(state_of(reader) in ("R", "S", "D") for reader in readers)  # reading, not done
        os.kill(child.pid, signal.SIGKILL)
        builder.join(timeout=30)
        assert failed and not builder.is_alive()
        wait_for(lambda: all(state_of(reader) in ("", "Z") for reader in readers), timeout=10, interval=0.05)
    finally:
        for reader in readers:  # whatever the outcome, nothing of this test keeps running
            if state_of(reader) not in ("", "Z"):
                os.kill(reader, signal.SIGKILL)
        child.close()
