"""The builder in a child process, so a rebuild never competes with requests for the GIL.

The serving process asks the child to build; the child runs `feeds.Builder`
and sends back only what changed since the last snapshot it sent: documents,
entries it has not sent before, then the changed feeds with their entries
given by id, then the counts. The serving process keeps a mirror snapshot and
applies each change set to a copy, so unchanged documents stay the very same
objects (same prepared answers, same ETags). If the serving process dies, the
child sees its pipe close and exits.

Every message is small: unpickling holds the GIL of the serving process for
its whole length, and request threads wait that long. A full rebuild of
10,000 seeds once sent its feeds in one 21 MB message that took 250 ms to load.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from functools import partial
from multiprocessing import current_process, get_context
from multiprocessing.connection import Connection
from types import MappingProxyType
from typing import Any, Callable, Iterable, Iterator

from feeds import Builder, Config
from feeds.builder import READ_CHUNK, BuildReport, collector_paused
from feeds.catalog import Feed
from feeds.entries import Entry
from feeds.snapshot import Document, Snapshot, gzip_only

from . import SERVE_PID_ENV
from .heap import out_of_collector_sight, return_free_memory
from .pacing import Pacer, resume_if_orphaned, stat_fields

CHUNK_BYTES = 1 << 18  # documents per message: a quarter MiB, so unpickling never holds the GIL long
CHUNK_ENTRIES = 64  # entries per message (about a millisecond to unpickle)
CHUNK_FEEDS = 25  # feeds per message, entries by id
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent ends
STALL_SECONDS = 1.0  # how often a build that is taking long is checked for a builder left stopped


class BuilderProcess:
    """A `Builder` look-alike whose work happens in a child process.

    `first_build_alone`: no request is answered until the first build is done
    (`seedfeeds serve` with the in-memory store), so that build may read on every
    CPU (see `_reading_on_every_cpu`); every later one runs in the child alone."""

    def __init__(self, config: Config, first_build_alone: bool = False) -> None:
        context = get_context("spawn")  # the serving process has threads: never fork it
        self._conn, child_end = context.Pipe()
        self._process = context.Process(target=_serve_builds, args=(config, child_end, first_build_alone),
                                        name="seedfeeds-builder", daemon=True)
        self._process.start()
        child_end.close()
        self._mirror: Snapshot | None = None
        self._lock = threading.Lock()
        self.last_report: BuildReport | None = None  # the child's, for the refresh log

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def build(self) -> Snapshot:
        """Have the child rescan; the same snapshot object back when nothing changed."""
        with self._lock:
            self._conn.send("build")
            while not self._conn.poll(STALL_SECONDS):  # the first answer comes when the build is done
                resume_if_orphaned(self._process.pid)
            kind, payload = self._conn.recv()
            if kind == "same":
                self.last_report = payload
                return self._mirror
            with collector_paused():  # the rest comes at once: tens of thousands of objects
                return self._take_in(kind, payload)

    def _take_in(self, kind: str, payload: Any) -> Snapshot:
        """The mirror with a change set applied, from its first message to "done"
        (or the child's error, which it raises)."""
        documents: dict[str, Document] = {}
        feeds: dict[str, Feed] = {}
        entries: dict[str, Entry] | None = None  # by id: the mirror's, then the new ones
        while True:
            if kind == "documents":
                documents.update(payload)
            elif kind in ("entries", "feeds"):
                if entries is None:
                    entries = _entries_of(self._mirror.feeds.values()) if self._mirror else {}
                if kind == "entries":
                    entries.update((entry.id, entry) for entry in payload)
                else:
                    feeds.update((key, _with_entries(feed, entries)) for key, feed in payload.items())
            elif kind == "done":
                self.last_report = payload.pop("report")
                self._mirror = _apply(self._mirror, documents, feeds=feeds, **payload)
                out_of_collector_sight()  # or the collector, back on, goes over all of it before the swap
                return self._mirror
            elif kind == "error":
                raise RuntimeError(payload)
            kind, payload = self._conn.recv()

    def reconfigure(self, config: Config) -> None:
        """Hand the child a new config (applied before its next build)."""
        with self._lock:
            self._conn.send(("reconfigure", config))

    def close(self) -> None:
        try:
            self._conn.send("stop")
        except OSError:
            pass
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()


def _apply(mirror: Snapshot | None, documents: dict[str, Document], *, removed: list[str],
           feeds: dict[str, Feed], feed_order: list[str], page_paths: list[str], meta: dict[str, Any]) -> Snapshot:
    """The mirror with one change set applied (a new object; the old one is untouched)."""
    old_docs = dict(mirror.documents) if mirror else {}
    for path in removed:
        old_docs.pop(path, None)
    old_docs.update(documents)
    old_feeds = mirror.feeds if mirror else {}
    ordered = {key: feeds[key] if key in feeds else old_feeds[key] for key in feed_order}
    pages = MappingProxyType({path: old_docs[path] for path in page_paths})
    return Snapshot(documents=MappingProxyType(old_docs), feeds=MappingProxyType(ordered), pages=pages, **meta)


def _by_id(feed: Feed) -> Feed:
    """The feed with its entries given by id (see `_with_entries`)."""
    return replace(feed, entries=tuple(e.id for e in feed.entries), older=tuple(e.id for e in feed.older))


def _with_entries(feed: Feed, entries: dict[str, Entry]) -> Feed:
    """A feed from `_by_id` with its entries back."""
    return replace(feed, entries=tuple(entries[i] for i in feed.entries),
                   older=tuple(entries[i] for i in feed.older))


def _entries_of(feeds: Iterable[Feed]) -> dict[str, Entry]:
    return {entry.id: entry for feed in feeds for entries in (feed.entries, feed.older) for entry in entries}


def _serve_builds(config: Config, conn: Connection, first_build_alone: bool = False) -> None:
    """The child: build on request, answer with what changed; exit when the parent goes."""
    pacer = Pacer(serving=os.getppid(), group=_serving_group(os.getppid()))  # while this process has no other thread
    every_cpu = _yield_to_serving()  # before any thread starts: threads inherit its CPU and policy
    _exit_with(os.getppid())
    builder = Builder(config)
    sent: Snapshot | None = None
    pooled = first_build_alone and len(every_cpu) > 1 and _readers_can_end_with_parent()
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if isinstance(request, tuple) and request[0] == "reconfigure":
            builder.reconfigure(request[1])
            continue
        if request != "build":
            return
        try:
            with pacer.building() if builder.config.pace_builds else nullcontext(), \
                    _reading_on_every_cpu(builder, every_cpu) if pooled else nullcontext():
                snapshot = builder.build()
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which keeps its snapshot
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
            continue
        finally:
            pooled = False
        if snapshot is sent:
            conn.send(("same", builder.last_report))
            continue
        _send_changes(conn, sent, snapshot, builder.last_report)
        # The serving process holds the documents now; this one keeps stubs (what it
        # compares next time is which objects changed, never their bytes).
        sent = builder.forget_bodies()
        del snapshot
        return_free_memory()  # the bodies, and what the previous snapshot held


def _serving_group(serving: int) -> int | None:
    """The `seedfeeds serve` process that started `serving` as one of its workers:
    its pid is in $SEEDFEEDS_SERVE_PID and it is the parent of `serving`. None
    for a serving process of any other kind (flask run, a test)."""
    try:
        group = int(os.environ.get(SERVE_PID_ENV, ""))
    except ValueError:
        return None
    fields = stat_fields(serving)
    return group if fields[1:2] == [str(group)] else None


def _yield_to_serving() -> set[int]:
    """Serving comes first: this process runs when the CPUs have nothing else to do
    (SCHED_IDLE, or nice 19 where that is missing), so a rebuild takes longer on a
    busy machine rather than taking CPU from the process answering requests. And
    it stays on one CPU (the last this process may use), where there are several.

    Measured with wrk against 10,000 seeds while every seed changed: p99 4.7x idle
    under SCHED_IDLE, 10.7x at nice 10. A bare busy loop at SCHED_IDLE beside the
    server, on these 2-vCPU machines: free to move between CPUs it costs p99 3.9-4.5x
    under wrk's full load and 7-9x under a steady 3,700 requests/s; kept on one CPU,
    1.4-2.4x and 1.5x. SCHED_IDLE still gets a small share of a saturated CPU, so
    refreshes slow down under load but never stop. What is left of that cost, the
    pacer takes away (`web.pacing`).

    Returns the CPUs this process could use before (none where that is unknown)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):  # not Linux: the scheduler places it
        return set()
    if len(cpus) > 1:
        _set_cpus({max(cpus)})
    return cpus


@contextmanager
def _reading_on_every_cpu(builder: Builder, cpus: set[int]) -> Iterator[None]:
    """This build on every CPU of `cpus`: seed files read in a process pool, one
    reader per CPU, as `seedfeeds build` reads them, and this process free to
    leave the one CPU `_yield_to_serving` keeps it to. The pool ends with the
    build. For the first build of `seedfeeds serve` only: no request waits beside
    it, and the pacer, which stops this process alone, would not pace the readers.
    At 10,000 seeds, `seedfeeds serve` answered its first request after 6.3-6.8 s
    instead of 7.8-8.8 s (four interleaved pairs), and the builder then held
    76 MiB RSS instead of 102: the parsers' leftovers stay in the readers."""
    kept = os.sched_getaffinity(0)
    # The serving process started this one as a daemon (to end it when it exits), and
    # multiprocessing refuses children to a daemon; that flag is the parent's business.
    current_process().daemon = False
    _set_cpus(cpus)  # the readers inherit them
    try:
        with ProcessPoolExecutor(max_workers=len(cpus), mp_context=get_context("fork"),
                                 initializer=_reader_started, initargs=(os.getpid(),)) as pool:
            builder.read_map = partial(pool.map, chunksize=READ_CHUNK)
            try:
                yield
            finally:
                builder.read_map = None
    finally:
        _set_cpus(kept)


def _set_cpus(cpus: set[int]) -> None:
    """Run on `cpus` if the system lets this process (a container's CPU set may
    have changed meanwhile): where it runs is never worth failing a build for."""
    try:
        os.sched_setaffinity(0, cpus)
    except OSError:
        pass


def _readers_can_end_with_parent() -> bool:
    """Whether a reader can be made to end with this process (Linux's
    PR_SET_PDEATHSIG). A pool's reader whose parent is gone waits for work
    forever, and it holds a copy of this process's end of the pipe to the serving
    process: that process would never see the pipe close, and wait on."""
    return _prctl() is not None


def _prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError, TypeError):
        return None


def _reader_started(builder: int) -> None:
    """In each reader, first: end with the builder (SIGKILL once it is gone)."""
    _prctl()(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != builder:  # gone before the line above took hold
        os._exit(1)


def _exit_with(parent: int) -> None:
    """End this process as soon as `parent` is gone, even in the middle of a build
    (a closed pipe is only noticed between builds; a cold build takes seconds)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.25)
        os._exit(0)

    threading.Thread(target=watch, name="seedfeeds-builder-parent-watch", daemon=True).start()


def _send_changes(conn: Connection, before: Snapshot | None, after: Snapshot, report: BuildReport) -> None:
    old_docs = before.documents if before else {}
    chunk: dict[str, Document] = {}
    size = 0
    for path, doc in after.documents.items():
        if old_docs.get(path) is doc:
            continue
        chunk[path] = doc = gzip_only(doc)  # the serving process keeps full archive pages gzipped only
        size += len(doc.body or b"") + len(doc.gzip_body)
        if size >= CHUNK_BYTES:
            conn.send(("documents", chunk))
            chunk, size = {}, 0
    if chunk:
        conn.send(("documents", chunk))
    old_feeds = before.feeds if before else {}
    changed = {key: feed for key, feed in after.feeds.items() if old_feeds.get(key) != feed}
    known = _entries_of(old_feeds.values())  # what the serving process holds
    fresh = [entry for entry in _entries_of(changed.values()).values() if known.get(entry.id) is not entry]
    for start in range(0, len(fresh), CHUNK_ENTRIES):
        conn.send(("entries", fresh[start:start + CHUNK_ENTRIES]))
    keys = list(changed)
    for start in range(0, len(keys), CHUNK_FEEDS):
        conn.send(("feeds", {key: _by_id(changed[key]) for key in keys[start:start + CHUNK_FEEDS]}))
    conn.send(("done", {
        "removed": [path for path in old_docs if path not in after.documents],
        "feed_order": list(after.feeds),
        "page_paths": list(after.pages),
        "report": report,
        "meta": {"diagnostics": after.diagnostics, "left_out": dict(after.left_out), "entry_count": after.entry_count,
                 "file_count": after.file_count, "newest": after.newest},
    }))
