"""A cold build of the whole site on two cores, in about the memory of one process.

    read     this process and a fork claim parts of the seed files in turn
             until none is left (`Parts`). Each entry is serialized where it
             is read, in every format, and spilled to a file (with its pickle
             if the ledger may give it another id); what stays in memory is
             a `Stub`: what the ledger, the duplicate check and the catalog
             read, and where the entry is.
             The fork hands back its stubs and ends.
    lay out  the builder's own ledger, catalog and pages, over stubs.
    write    this process assembles each document from its head and the
             spilled fragments of its entries (read back with pread: from the
             page cache, which the kernel may write out and drop, not the heap);
             two threads compress and write the documents (C and system calls,
             which release the GIL).

Why not keep the entries and fork renderers, as this build did before: CPython's
reference counts write to every object a child touches, so copy-on-write copied
each page of the entries into each child, and a process forked after the
reading copies every page of free heap its own allocations land in. Stubs are a
sixth of the entries; the second process lives only as long as the reading.
Whatever both processes use is imported and warmed before the fork, so they
share it rather than each loading its own.

The bytes are the builder's: fragments come from `serialize`, bodies from
`render_body`, gzip bodies from `compress`, the layout from `Builder.summarize`;
an entry whose ledger id is not the one it was serialized under is serialized
again from its pickle.
"""

from __future__ import annotations

import gc
import mmap
import os
import pickle
import queue
import signal
import struct
import tempfile
import threading
import time
import traceback
from array import array
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, replace
from dataclasses import fields as dataclass_fields
from datetime import datetime
from functools import partial
from operator import attrgetter
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator, Protocol

from .builder import PARALLEL_MIN, RENDERED, Builder, Read, formats_of, read_entry, state_file, with_archives
from .config import Config
from .entries import Author, Entry, Topic, share_values
from .records import SeedFile, pickled_by_fields, prefetch
from .snapshot import Snapshot, compress, feed_paths, render_body, serialize, serialize_all
from .static import SiteWriter

_COUNT = struct.Struct("<Q")
_PART = struct.Struct("<I")  # a part's number in the claiming pipe
_IN_FLIGHT = 16  # documents assembled and waiting for the writing thread
_BATCH = 32  # seeds read before their entries are serialized (`serialize_all`: a format at a time)
# A seed that reaches the lazy imports and caches of reading and serializing
# (YAML, Markdown, bleach, feedgen, the templates) before the fork.
_SAMPLE = """---
title: "Warm-up <b>sample</b>"
excerpt: An excerpt.
publishedDateTime: 2020-01-02T03:04:05Z
originalUrl: https://example.com/story
provider: {name: Example, domain: example.com, images: [{url: "https://example.com/icon.png"}]}
topics: [Sample]
images: [{url: "https://example.com/lead.jpg", width: 10, height: 10, title: Lead}]
related: [{title: Other, url: "https://example.org/other", publishedDateTime: 2020-01-01T00:00:00Z,
           provider: {name: Other}}]
---
Some *Markdown* with [a link](/relative) and <img src="https://example.com/a.png" alt="a"> <script>x</script>.
"""


class Steps(Protocol):
    """A progress bar's handle: `update(n)` advances it n steps."""

    def update(self, steps: int) -> None: ...


Bar = Callable[[str, int], AbstractContextManager[Steps]]  # (label, length) -> a progress bar


class _Quiet:
    """Steps that show nothing (no bar, or stderr not a terminal: `web.progress`)."""

    def update(self, steps: int) -> None:
        pass


QUIET = _Quiet()


def no_bar(label: str, length: int) -> AbstractContextManager[Steps]:
    return nullcontext(QUIET)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Stub:
    """What a cold build keeps of an entry in memory: the fields the ledger, the
    duplicate check and the catalog read (as `Entry` declares them), and where
    the entry is spilled."""

    id: str
    file: str
    published: datetime
    updated: datetime
    author: Author | None
    provider_domain: str | None
    provider_icon: str | None
    topics: tuple[Topic, ...]
    category: str | None
    type: str | None
    quality: int | None
    read_id: str  # the id it was serialized under (the ledger may give it another)
    spill: int  # which reading process's spill file
    number: int  # its place there (see `Spills`)


# What a stub copies of its entry: every field it declares before its own three.
_STUB_OF = attrgetter(*(f.name for f in dataclass_fields(Stub)[:-3]))


class Spills:
    """One spill file per reading process, made before the fork so that every
    process holds all of them; each process appends only to its own. An entry's
    record there is its pickle (empty unless `renumbered` says the ledger may
    give it another id: 2.5 kB an entry, a fifth of the record, and 12 us),
    then its fragment in each of `RENDERED`; its offsets are in `ends[spill]`,
    `len(RENDERED) + 2` numbers from `number * (len(RENDERED) + 1)`. Writes go through the file's buffer
    (unbuffered, a write per entry cost a cold build at 10,000 seeds 0.6 s,
    most of it in the kernel's writeback)."""

    _PARTS = len(RENDERED) + 1

    def __init__(self, files: list[BinaryIO], topics_stem: str, renumbered: Callable[[Entry], bool]) -> None:
        self.files = files
        self.topics_stem = topics_stem
        self.renumbered = renumbered
        self.ends = [array("Q", [0]) for _ in files]

    def keep_all(self, entries: list[Entry], spill: int) -> Iterator[Stub]:
        """Spill the entries and their fragments to file number `spill`; their stubs.
        The batch is serialized by `serialize_all` (see `_BATCH`)."""
        ends = self.ends[spill]
        file = self.files[spill]
        first = (len(ends) - 1) // self._PARTS
        parts = [[pickle.dumps(entry, pickle.HIGHEST_PROTOCOL) if self.renumbered(entry) else b""
                  for entry in entries],
                 *serialize_all(entries, RENDERED, self.topics_stem)]
        end = ends[-1]
        for index in range(len(entries)):
            for part in parts:
                data = part[index]
                file.write(data)
                end += len(data)
                ends.append(end)
        for number, entry in enumerate(entries, start=first):
            yield Stub(*_STUB_OF(entry), read_id=entry.id, spill=spill, number=number)

    def flush(self, spill: int) -> None:
        self.files[spill].flush()

    def of(self, stubs: Iterable[Stub], formats: tuple[str, ...]) -> Callable[[str], Callable[[Stub], bytes]]:
        """The fragments of these stubs' entries in `formats` (for `render_body`),
        `formats` being a run of `RENDERED`: each entry's are side by side in its
        record, so one pread reads them all. A document's formats are rendered
        together for that: reading fragment by fragment, the GIL went to a writing
        thread at each of 119,000 reads (10,000 seeds), each read cost 7 us."""
        first = RENDERED.index(formats[0]) + 1
        stop = first + len(formats)
        read = {(stub.spill, stub.number): self._parts(stub, first, stop) for stub in stubs if stub.id == stub.read_id}

        def source(fmt: str) -> Callable[[Stub], bytes]:
            at = RENDERED.index(fmt) + 1 - first
            if not 0 <= at < len(formats):
                raise ValueError(f"{fmt} is not among the formats read: {formats}")

            def fragment(stub: Stub) -> bytes:
                if stub.id != stub.read_id:
                    return serialize(self.entry(stub), fmt, self.topics_stem)
                return read[stub.spill, stub.number][at]

            return fragment

        return source

    def entry(self, stub: Stub) -> Entry:
        """The stub's entry, under the stub's id."""
        kept = self._parts(stub, 0, 1)[0]
        if not kept:
            raise RuntimeError(f"{stub.file}: entry not kept, yet the ledger gives it the id {stub.id!r}"
                               " (Ledger.may_renumber said it could not)")
        entry = pickle.loads(kept)
        return entry if entry.id == stub.id else replace(entry, id=stub.id)

    def _parts(self, stub: Stub, first: int, stop: int) -> list[bytes]:
        """Parts `first` to `stop` (excluded) of a stub's record, in one read."""
        ends = self.ends[stub.spill]
        at = stub.number * self._PARTS
        start, end = ends[at + first], ends[at + stop]
        data = os.pread(self.files[stub.spill].fileno(), end - start, start)
        if len(data) != end - start:
            raise OSError(f"spill file {stub.spill} is cut short before {end}")
        return [data[ends[at + part] - start:ends[at + part + 1] - start] for part in range(first, stop)]


def build_site(config: Config, writer: SiteWriter, bar: Bar = no_bar) -> Snapshot:
    """Read every seed, lay out the feeds and write every document through `writer`
    (which the caller commits or aborts); the summary of what was built."""
    _warm(config)
    gc.collect()
    gc.freeze()  # alive now, so shared with the fork: its collections never touch it
    with _temporary_files(config.state_path, 3) as (mine, theirs, results):
        builder = Builder(config, parallel_min=1)
        spills = Spills([mine, theirs], builder.urls.feed_stem("topics/"), builder.may_renumber)
        builder.read_map = partial(_read_on_two_cores, spills=spills, results=results, bar=bar)
        summary = builder.summarize()
        gc.collect()
        gc.freeze()
        _write_in_threads(summary, spills, writer, bar)
    return summary


def _warm(config: Config) -> None:
    """Read and serialize a sample seed, so that lazy imports and caches are made once, here."""
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as sample:
            sample.write(_SAMPLE)
            sample.flush()
            seed = SeedFile("warm-up.txt", sample.name, os.stat(sample.name).st_size, 0, 0, 0)
            entry = read_entry(seed, config)[0]
    except OSError:
        return  # no temp folder: each process loads what it needs itself
    if entry is not None:
        serialize_all([entry], RENDERED, "https://example.com/feeds/topics/")
        pickle.loads(pickle.dumps(entry, pickle.HIGHEST_PROTOCOL))


@contextmanager
def _temporary_files(folder: Path, count: int) -> Iterator[list[BinaryIO]]:
    """Deleted temporary files in the state folder (beside the entry-id ledger);
    in memory (memfd) where the folder cannot take them."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass  # then memfd
    with ExitStack() as stack:
        yield [stack.enter_context(state_file(folder) or
                                   open(os.memfd_create(f"seedfeeds-{number}", os.MFD_CLOEXEC), "w+b"))
               for number in range(count)]


def _read_on_two_cores(read: Callable[[SeedFile], Read], seeds: Iterable[SeedFile], spills: Spills,
                       results: BinaryIO, bar: Bar) -> list[Read]:
    """`[read(seed) for seed in seeds]`, entries as stubs: this process and a fork
    take turns to claim the next part of the seeds (`Parts`) until none is left,
    so that the one given more CPU reads more. The fork's results and spill
    offsets come back pickled in `results`, its progress through a shared counter.

    The fork is made after the seed folder is scanned, not before: made before, it
    held 4 MiB more at 10,000 seeds. (Every page either process writes to is
    copied, and the scan's pages are written by this process either way.) The
    fork is safe: no thread has started yet (the writing threads come later).
    Fewer than `PARALLEL_MIN` seeds, or one CPU to run on, and they are read
    here alone, without a bar."""
    seeds = list(seeds)
    if len(seeds) < PARALLEL_MIN or len(os.sched_getaffinity(0)) < 2:
        with Parts(len(seeds)) as parts:
            return [r for _, reads in _read_parts(read, seeds, parts, spills, 0, None) for r in reads]
    with Parts(len(seeds)) as parts, mmap.mmap(-1, _COUNT.size) as counter, \
            bar("Reading seed files", len(seeds)) as steps:
        pid = os.fork()
        if pid == 0:
            _child(lambda: _dump((_read_parts(read, seeds, parts, spills, 1, counter), spills.ends[1]), results))
        shown = 0

        def show(done: int) -> None:
            nonlocal shown
            total = done + _COUNT.unpack(counter)[0]
            steps.update(total - shown)
            shown = total

        try:
            mine = _read_parts(read, seeds, parts, spills, 0, None, show)
        except BaseException:
            os.kill(pid, signal.SIGKILL)  # its work is for nothing now
            _reap(pid)
            raise
        done = sum(len(reads) for _, reads in mine)
        if not _reap(pid, lambda: show(done)):
            raise RuntimeError("a reading child process failed")
        results.seek(0)
        theirs, spills.ends[1] = pickle.load(results)
        show(done)
    by_part = dict(mine + theirs)
    if len(by_part) != len(parts):
        raise RuntimeError(f"{len(parts) - len(by_part)} parts of the seed files were claimed but not read")
    return [r for number in range(len(parts)) for r in by_part[number]]


class Parts:
    """The seed list cut into parts that reading processes claim in turn. Their
    numbers are queued in a pipe, 4 bytes each, before the fork; reading 4 bytes
    claims the next (the kernel serializes reads of a pipe), end of file says none
    is left. At most `MOST` parts: their numbers fit in any pipe (a page at least)
    without a reader, and the parts stay whole batches of `_BATCH` seeds where
    they can."""

    MOST = 1000

    def __init__(self, count: int) -> None:
        batches = -(-count // _BATCH)  # rounded up, as below
        self.size = max(1, -(-batches // self.MOST)) * _BATCH
        self.count = count
        self._read_end, write_end = os.pipe()
        try:
            os.write(write_end, b"".join(_PART.pack(n) for n in range(len(self))))
        finally:
            os.close(write_end)

    def __len__(self) -> int:
        return -(-self.count // self.size)

    def claim(self) -> range | None:
        """The seeds of the next unclaimed part (their indexes), or None."""
        data = os.read(self._read_end, _PART.size)
        if not data:
            return None
        start = _PART.unpack(data)[0] * self.size
        return range(start, min(start + self.size, self.count))

    def close(self) -> None:
        os.close(self._read_end)

    def __enter__(self) -> "Parts":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_parts(read: Callable[[SeedFile], Read], seeds: list[SeedFile], parts: Parts, spills: Spills, spill: int,
                counter: mmap.mmap | None, show: Callable[[int], None] | None = None) -> list[tuple[int, list[Read]]]:
    """Claim parts of `seeds` and read them until none is left: [(part number, reads)].
    The next part is claimed before this one is read, and its files are asked of
    the disk then (`prefetch`): they arrive while this part's are parsed."""
    shared: dict = {}  # one object per provider, author, topic in the stubs (and in their pickle)
    out, done = [], 0
    following = parts.claim()
    prefetch(seeds[index] for index in following or ())
    while (claimed := following) is not None:
        following = parts.claim()
        prefetch(seeds[index] for index in following or ())
        reads_of_part: list[Read] = []
        for start in range(claimed.start, claimed.stop, _BATCH):
            reads = [read(seed) for seed in seeds[start:min(start + _BATCH, claimed.stop)]]
            stubs = spills.keep_all([entry for entry, _, _ in reads if entry is not None], spill)
            for entry, notes, left_out in reads:
                reads_of_part.append((share_values(next(stubs), shared) if entry is not None else None,
                                      notes, left_out))
            done += len(reads)
            if counter is not None:
                counter[:] = _COUNT.pack(done)
            if show is not None:
                show(done)
        out.append((claimed.start // parts.size, reads_of_part))
    spills.flush(spill)
    return out


def _dump(value: object, file: BinaryIO) -> None:
    pickle.dump(value, file, pickle.HIGHEST_PROTOCOL)
    file.flush()


def _write_in_threads(summary: Snapshot, spills: Spills, writer: SiteWriter, bar: Bar) -> None:
    """Every document written through `writer`, by two threads for the two cores.
    This one assembles the bodies (Python, holding the GIL) and queues them; the
    other gzips and writes them (zlib-ng and the writes release the GIL). When
    `_IN_FLIGHT` documents wait, this thread gzips and writes the next one itself
    rather than wait for room: waiting, it slept a third of the phase, and on these
    VMs each wake-up of a sleeping thread leaves a core idle a while (at 10,000
    seeds, 0.36-0.47 core-seconds idle in a 1.3 s phase; 0.17-0.24 now). Files
    need no ETag: nothing is hashed."""
    jobs: queue.Queue = queue.Queue(maxsize=_IN_FLIGHT)
    failed: list[BaseException] = []

    def write(path: str, body: bytes, archive: bool) -> None:
        writer.write_bodies(path, body, compress(body, archive))

    def drain() -> None:
        while (job := jobs.get()) is not None:
            if failed:
                continue
            try:
                write(*job)
            except BaseException as exc:
                failed.append(exc)

    worker = threading.Thread(target=drain, name="seedfeeds-writer")
    worker.start()
    try:
        documents = with_archives(tuple(summary.feeds.values()))
        length = sum(len(formats_of(feed)) for feed in documents)
        with bar("Rendering feeds", length) as steps:
            for feed in documents:
                formats = formats_of(feed)
                fragments = spills.of(feed.entries, formats)
                for fmt in formats:
                    if failed:
                        raise failed[0]
                    job = (feed_paths(feed)[fmt], render_body(feed, fmt, fragments), feed.page is not None)
                    try:
                        jobs.put_nowait(job)
                    except queue.Full:
                        write(*job)
                    steps.update(1)
            for path, doc in summary.pages.items():
                writer.write(path, doc)
    except BaseException as exc:
        failed.append(exc)  # what is still queued is not written
        raise
    finally:
        jobs.put(None)
        worker.join()
    if failed:
        raise failed[0]


def _child(work: Callable[[], None]) -> None:
    """In a forked child: do `work` and exit, 0 if it succeeded; never returns."""
    status = 1
    try:
        work()
        status = 0
    except BaseException:
        traceback.print_exc()  # why, for the operator: the parent only sees the status
    finally:
        os._exit(status)


def _reap(pid: int, show: Callable[[], None] | None = None) -> bool:
    """Wait for the child `pid` to end (calling `show` meanwhile); whether it succeeded."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG if show else 0)
        if done:
            return status == 0
        show()
        time.sleep(0.01)
