"""The serving side's heap: a new snapshot comes in without the cyclic collector going
over it, and a dropped one's memory goes back to the system."""

from __future__ import annotations

import gc
import os
import sys
import threading

import pytest

from bench_scripts import generate_corpus
from conftest import write_config
from feeds import Builder, load_config
from web.builder_process import BuilderProcess
from web.heap import return_free_memory
from web.refresh import Service


def rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def test_freed_memory_between_live_objects_goes_back_to_the_system():
    """Like a replaced snapshot: 200 MiB of documents dropped, a few kept, so the free
    space sits between live blocks where glibc's own trimming (top of heap only) cannot
    reach it. return_free_memory() gives it back."""
    documents = [bytes([n % 251]) * 40_000 for n in range(5_000)]  # 40 kB each: malloc's heap, not mmap
    kept = documents[::50]
    del documents
    held = rss_mib()
    return_free_memory()
    assert held - rss_mib() > 100, (held, rss_mib())
    assert all(len(doc) == 40_000 for doc in kept)


def generated(tmp_path, count: int):
    """`count` generated seed files and a config for them, state kept in tmp_path."""
    seeds = generate_corpus(tmp_path / "seeds", count)
    return seeds, load_config(write_config(tmp_path / "seedfeeds.toml", seeds,
                                           extra=f'[state]\npath = "{tmp_path / "state"}"\n'))


@pytest.fixture
def collections(monkeypatch):
    """Collections of the cyclic collector that this thread sets off, counted from
    `collections.start()` on (threads left by other tests may allocate too), with
    thresholds low enough that a few thousand new objects would set several off."""
    class Counter:
        counting = False
        seen: list[int] = []
        thread = threading.get_ident()

        def start(self) -> None:
            self.counting = True

        def __call__(self, phase: str, info: dict) -> None:
            if self.counting and phase == "start" and threading.get_ident() == self.thread:
                self.seen.append(info["generation"])

    counter = Counter()
    thresholds = gc.get_threshold()
    gc.set_threshold(100, 2, 2)
    gc.callbacks.append(counter)
    yield counter
    gc.callbacks.remove(counter)
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def test_taking_in_a_rebuild_runs_no_collection_and_freezes_what_it_made(tmp_path, collections, monkeypatch):
    """`serve` takes in a full rebuild of 300 seeds from its builder child, dates it,
    prepares its answers and swaps it in without the collector going over the new
    objects (at 10k seeds one pass held the GIL 40-50 ms); afterwards the collector
    is back on and those objects are out of its sight."""
    _, config = generated(tmp_path, 300)
    child = BuilderProcess(config)
    take_in = BuilderProcess._take_in

    def counted(self, *args):
        collections.start()  # from the first message on: waiting for the build allocates nothing
        return take_in(self, *args)

    monkeypatch.setattr(BuilderProcess, "_take_in", counted)
    try:
        service = Service(config, child)
        frozen = gc.get_freeze_count()
        assert service.refresh()
        assert collections.counting
        assert collections.seen == []
        assert gc.isenabled()
        assert gc.get_freeze_count() - frozen > 300 * 10  # entries, their fields, documents, answers
        assert gc.is_tracked(service.snapshot)
        assert not any(o is service.snapshot for o in gc.get_objects())  # frozen ones are not listed
    finally:
        child.close()


def test_installing_a_snapshot_made_elsewhere_runs_no_collection(tmp_path, collections):
    """The Redis mode's path: a fetched snapshot is installed (answers prepared, swapped in)
    with the collector paused, then frozen."""
    _, config = generated(tmp_path, 100)
    made = Builder(config).build()
    service = Service(config)
    gc.collect()  # counts start from zero: the few objects made on the way into the pause cannot set one off
    collections.start()
    service.install(made)
    assert collections.seen == []
    assert service.snapshot is made
    assert gc.isenabled()
    assert not any(o is made for o in gc.get_objects())


def test_a_limited_answer_does_not_keep_its_snapshot_alive_after_a_swap(tmp_path):
    """`?limit=N` answers are cached for the snapshot they came from; a refresh drops
    them with it, so the old snapshot is freed by the swap (not kept until the next
    such request, and then freed in that request's time)."""
    seeds, config = generated(tmp_path, 30)
    service = Service(config)
    assert service.refresh()
    old = service.snapshot
    assert service.limited(old, "all", "atom", 1).body.count(b"</entry>") == 1
    first = next(seeds.rglob("*.txt"))
    first.write_text(first.read_text(encoding="utf-8").replace("title: ", "title: Changed ", 1), encoding="utf-8")
    assert service.refresh() and service.snapshot is not old
    # Held by `old` alone (getrefcount counts its own argument too). gc.get_referrers
    # cannot tell: the swap freezes what it made, and frozen objects are not searched.
    assert sys.getrefcount(old) == 2


def test_a_dropped_snapshot_is_freed_a_slice_at_a_time():
    """release_in_slices frees what it is handed from the end of the list, a bounded
    number of objects per step (between steps another thread can take the GIL),
    until nothing is left: the objects are gone, not just out of the list."""
    import weakref

    from web.heap import release_in_slices

    class Held:
        pass

    steps: list[int] = []

    class Recording(list):
        def __delitem__(self, key):
            steps.append(len(self[key]))
            super().__delitem__(key)

    doomed = Recording(Held() for _ in range(1000))
    alive = [weakref.ref(o) for o in doomed]
    release_in_slices(doomed, size=64)
    assert doomed == []
    assert max(steps) == 64 and sum(steps) == 1000
    assert not any(ref() for ref in alive)
