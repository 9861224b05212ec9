"""The pipeline, top to bottom: seed folder -> records -> entries -> feeds -> snapshot.

`Builder` keeps what it learned from earlier scans, so a refresh costs what
changed: only files whose (size, mtime, ctime, inode) changed are read again,
only documents whose feed changed are rendered again (an unchanged document
keeps its very bytes and ETag), and when nothing changed the previous snapshot
object itself is returned. A file that was good and turns bad keeps publishing
its last good version, marked stale.
"""

from __future__ import annotations

import gc
import sqlite3
import tempfile
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import BinaryIO, Callable, Collection, Iterable, Iterator

from collections import Counter

from .catalog import EPOCH, KINDS, Feed, archive_pages, build_catalog, left_out_reason
from .config import ICON_TYPES, Config, Limits
from .entries import Entry, merge_duplicates, share_values, to_entry
from .fields import Diagnostic
from .ledger import Ledger
from .pages import render_directory
from .records import SeedFile, list_folder, listing_order, read_record, scan_folder, undecodable_name
from .opml import MEDIA_TYPE as OPML
from .opml import opml_path, render_opml
from .snapshot import (HTML, Document, Fragments, Snapshot, assemble_documents, feed_paths, make_document,
                       render_feed, summarize)
from .urls import FORMATS, Urls

LEDGER_FILE = "ledger.sqlite3"
RENDERED = (*FORMATS, "html")  # what each feed becomes: three formats and a preview page
PARALLEL_MIN = 256  # fewer changed files than this are read in-process
READ_CHUNK = 64  # files per task of a reading pool (8, 16, 32 and 64 took the same time at 10k seeds)

# How a builder reads many files at once: `map(read, seeds)`, e.g. a process pool's map.
ReadMap = Callable[[Callable[[SeedFile], "Read"], Iterable[SeedFile]], Iterable["Read"]]
Read = tuple[Entry | None, tuple[Diagnostic, ...], str | None]


@dataclass(frozen=True, slots=True)
class BuildReport:
    """What the last scan found: files listed, files read again (new or
    changed since the scan before) and files gone since then."""

    files: int
    read: int
    removed: int


class SeedFolderEmpty(RuntimeError):
    """The seed folder lists no files although it had some: keep the last snapshot."""


@dataclass(frozen=True, slots=True)
class _Read:
    """What one version of one file gave: an entry or not, its diagnostics, and
    the last good entry it had, if this version is bad."""

    stamp: tuple[int, int, int, int]
    entry: Entry | None
    diagnostics: tuple[Diagnostic, ...]
    stale: Entry | None = None
    left_out: str | None = None  # why a usable record is in no feed

    @property
    def published(self) -> Entry | None:
        return self.entry or self.stale


def read_entry(seed: SeedFile, config: Config) -> Read:
    """One file -> (its entry, or None; its diagnostics; why it is left out, if it is).

    A left-out record is checked and counted but never sanitized or rendered.
    Module-level, so a process pool can run it.
    """
    record, notes = read_record(seed, config.limits)
    if record is None:
        return None, tuple(notes), None
    reason = left_out_reason(record.is_published, record.quality, config)
    if reason:
        return None, tuple(notes), reason
    return to_entry(record), tuple(notes), None


class Builder:
    """Builds snapshots of one seed folder under one config.

    `read_map` spreads the reading of many changed files (at least
    `parallel_min`) over several processes; without it everything runs in this one.
    """

    def __init__(self, config: Config, read_map: ReadMap | None = None, parallel_min: int = PARALLEL_MIN) -> None:
        self.config = config
        self.read_map = read_map
        self.parallel_min = parallel_min
        self.urls = Urls(config.base_url, icon_name="icon" + config.icon_path.suffix.lower())
        self._reads: dict[str, _Read] = {}
        self._shared: dict = {}  # one copy of each provider, author, topic... (see share_values)
        icon = config.icon_path
        self._icon = make_document(icon.read_bytes(), ICON_TYPES[icon.suffix.lower()], EPOCH)
        self._ledger, self._ledger_note = _open_ledger(config.state_path / LEDGER_FILE)
        self._rendered: dict[str, tuple[Feed, Document]] = {}  # path -> (the feed it was made from, document)
        self._last: tuple[list, Snapshot] | None = None  # (scan notes, snapshot) of the last build
        self._listed: tuple[tuple[str, ...], bytes] = ((), b"")  # its folder listing (Listing.key)
        self.last_report: BuildReport | None = None  # for the refresh log

    def reconfigure(self, config: Config) -> None:
        """Take a new config, keeping what still holds: documents whose feed does not
        change keep their bytes; records are re-read only if how seeds are read changed."""
        reading = ("seeds_path", "globs", "include_unpublished", "min_quality", "limits")
        if any(getattr(config, name) != getattr(self.config, name) for name in reading):
            self._reads = {}
        if config.state_path != self.config.state_path:
            self._ledger, self._ledger_note = _open_ledger(config.state_path / LEDGER_FILE)
        self.config = config
        self.urls = Urls(config.base_url, icon_name="icon" + config.icon_path.suffix.lower())
        self._icon = make_document(config.icon_path.read_bytes(), ICON_TYPES[config.icon_path.suffix.lower()], EPOCH)
        self._last = None

    def build(self) -> Snapshot:
        """Scan the folder; re-read what changed and re-render what that touched."""
        with collector_paused():
            listing = list_folder(self.config.seeds_path, self.config.globs)
            unchanged = self._last is not None and self._last[0] == listing.notes
            if unchanged and listing.same_as(self._listed):
                self.last_report = BuildReport(files=len(listing), read=0, removed=0)
                return self._last[1]
            files = listing.files()
            if unchanged and not self._changed(files):  # the same files, listed in another order
                self._listed = listing.key()
                self.last_report = BuildReport(files=len(files), read=0, removed=0)
                del files  # dropped while the collector is off: they never cost it a pass
                return self._last[1]
        files.sort(key=listing_order)
        summary = self._summarize(files, listing.notes, listing.unlisted)
        documents = assemble_documents(self._render(tuple(summary.feeds.values())), summary.pages)
        snapshot = replace(summary, documents=documents)
        self._last = (listing.notes, snapshot)
        self._listed = listing.key()
        return snapshot

    def forget_bodies(self) -> Snapshot | None:
        """Drop the bytes of every feed document rendered so far, and return the
        last snapshot with those documents as stubs (body and gzip body None).

        For a builder whose documents are served by another process, which keeps
        its own copy (`web.builder_process`): at 10,000 seeds that is ~370 MiB
        it need not hold twice. What a build needs of an unchanged document is
        the object itself (reused while its feed is unchanged, so that whoever
        holds the previous snapshot sees the same object), never its bytes.
        Every snapshot built after this holds the stubs where a feed did not
        change: only documents that are not the previous snapshot's objects may
        be read."""
        stubs = {id(doc): replace(doc, body=None, gzip_body=None) for _, doc in self._rendered.values()}
        self._rendered = {path: (feed, stubs[id(doc)]) for path, (feed, doc) in self._rendered.items()}
        if self._last is None:
            return None
        notes, snapshot = self._last
        documents = {path: stubs.get(id(doc), doc) for path, doc in snapshot.documents.items()}
        snapshot = replace(snapshot, documents=assemble_documents(documents, {}))
        self._last = (notes, snapshot)
        return snapshot

    def summarize(self) -> Snapshot:
        """A full scan and read, laid out as feeds: a snapshot holding every field
        but the feed documents, which `documents()` can then render one at a time
        (the cold static build, `feeds.cold`, assembles its own from stubs)."""
        files, scan_notes = scan_folder(self.config.seeds_path, self.config.globs)
        return self._summarize(files, scan_notes)

    def documents(self, summary: Snapshot, fmt: str,
                  kinds: Collection[str] = KINDS) -> Iterator[tuple[str, Document]]:
        """Each feed of `summary` of one of `kinds`, with its archive pages, rendered
        in one format (or "html": each feed's preview page), as (path, document). An
        entry in several documents is serialized once and held until its last use."""
        feeds = tuple(feed for feed in summary.feeds.values() if feed.kind in kinds)
        documents = self._render_format(documents_in(feeds, fmt), fmt, {})
        for path, _, doc in documents:
            yield path, doc

    def _summarize(self, files: list[SeedFile], scan_notes: list[Diagnostic], unlisted: tuple[str, ...] = ()) -> Snapshot:
        """Read what changed and lay out the feeds: a snapshot with no feed documents yet.
        Files in `unlisted` folders (which could not be listed) keep what they had."""
        if not files and not unlisted and any(r.published for r in self._reads.values()):
            raise SeedFolderEmpty(f"seed folder {self.config.seeds_path} lists no seed files")
        self._reads = self._read_all(files, unlisted)
        diagnostics = list(scan_notes)
        for read in self._reads.values():
            diagnostics.extend(read.diagnostics)
        published, notes = self._identified({rel: r.published for rel, r in self._reads.items() if r.published})
        diagnostics.extend(notes)
        left_out = dict(sorted(Counter(r.left_out for r in self._reads.values() if r.left_out).items()))
        feeds = build_catalog(published, self.config, self.urls)
        diagnostics = sorted(diagnostics, key=lambda d: (d.file, d.field, d.message))
        pages = self._pages(feeds, len(published), left_out, diagnostics)
        return summarize(feeds, pages=pages, diagnostics=tuple(diagnostics), left_out=left_out,
                         entry_count=len(published), file_count=len(files))

    def _pages(self, feeds: tuple[Feed, ...], entry_count: int, left_out: dict[str, int],
               diagnostics: list[Diagnostic]) -> dict[str, Document]:
        """The documents that are not feeds: the directory page, the OPML files, the icon."""
        newest = max((f.updated for f in feeds), default=EPOCH)
        directory = render_directory(feeds, self.config, self.urls, entry_count, left_out, diagnostics)
        pages = {"/": make_document(directory, HTML, newest)}
        for fmt in FORMATS:
            pages[opml_path(fmt)] = make_document(
                render_opml(feeds, self.config.title, self.urls.directory(), fmt), OPML, newest)
        pages[self.urls.icon_path] = self._icon
        return pages

    def _changed(self, files: list[SeedFile]) -> bool:
        """Whether any file was added, removed, or changed since the last build."""
        if len(files) != len(self._reads):
            return True
        reads = self._reads
        for seed in files:
            known = reads.get(seed.rel)
            if known is None or known.stamp != _stamp(seed):
                return True
        return False

    def _render(self, feeds: tuple[Feed, ...]) -> dict[str, Document]:
        """Every feed document (archive pages too); one whose feed is unchanged keeps
        its previous document."""
        rendered: dict[str, tuple[Feed, Document]] = {}
        for fmt in RENDERED:
            for path, feed, doc in self._render_format(documents_in(feeds, fmt), fmt, self._rendered):
                rendered[path] = (feed, doc)
        self._rendered = rendered
        return {path: doc for path, (_, doc) in rendered.items()}

    def _render_format(self, feeds: tuple[Feed, ...], fmt: str,
                       before: dict[str, tuple[Feed, Document]]) -> Iterator[tuple[str, Feed, Document]]:
        """(path, feed, document) for each feed in one format, reusing `before` where the
        feed is unchanged. An entry in several of the documents to render is
        serialized once, and its fragment freed after its last use."""
        paths = {feed.key: feed_paths(feed)[fmt] for feed in feeds}
        todo = {feed.key for feed in feeds
                if paths[feed.key] not in before or before[paths[feed.key]][0] != feed}
        uses = Counter(id(e) for feed in feeds if feed.key in todo for e in feed.entries)
        with self._spill_file(any(n > 1 for n in uses.values())) as spill:
            fragments = Fragments(self.urls.feed_stem("topics/"), uses, spill)
            for feed in feeds:
                path = paths[feed.key]
                if feed.key in todo:
                    yield path, feed, render_feed(feed, fmt, fragments)
                else:
                    yield path, feed, before[path][1]

    @contextmanager
    def _spill_file(self, wanted: bool) -> Iterator[BinaryIO | None]:
        """A temporary file in the state folder for fragments waiting for their next
        use (see `Fragments`), closed and gone afterwards; None if not `wanted`
        or it cannot be made (the fragments then wait in memory)."""
        spill = state_file(self.config.state_path) if wanted else None
        with spill or nullcontext():
            yield spill

    def may_renumber(self, entry: Entry) -> bool:
        """Whether the ledger could publish `entry`, as read, under another id."""
        return self._ledger.may_renumber(entry.file, entry.id)

    def _read_all(self, files: list[SeedFile], unlisted: tuple[str, ...] = ()) -> dict[str, _Read]:
        """A `_Read` per file: the known one if its stamp is unchanged, else a fresh read;
        and the known ones of files in folders that could not be listed this time."""
        known = {seed.rel: self._reads.get(seed.rel) for seed in files}
        kept = {rel: read for rel, read in self._reads.items() if rel.startswith(unlisted) and rel not in known}
        todo = [seed for seed in files if known[seed.rel] is None or known[seed.rel].stamp != _stamp(seed)]
        self.last_report = BuildReport(files=len(files), read=len(todo),
                                       removed=len(self._reads.keys() - known.keys() - kept.keys()))
        read = partial(read_entry, config=self.config)
        if self.read_map is not None and len(todo) >= self.parallel_min:
            results = {seed.rel: (share_values(e, self._shared) if e else e, notes, left_out)
                       for seed, (e, notes, left_out) in zip(todo, self.read_map(read, todo))}
        else:
            results = {seed.rel: read(seed) for seed in todo}
        return {**{seed.rel: _fresh(_stamp(seed), results[seed.rel], known[seed.rel]) if seed.rel in results
                   else known[seed.rel] for seed in files}, **kept}

    def _identified(self, by_file: dict[str, Entry]) -> tuple[list[Entry], list[Diagnostic]]:
        """Entries under their ledger ids, duplicates merged."""
        notes = [self._ledger_note] if self._ledger_note else []
        try:
            ids = self._ledger.assign({rel: entry.id for rel, entry in by_file.items()})
        except sqlite3.Error as exc:
            notes.append(Diagnostic("(state)", "state.path", "warning", f"entry-id ledger not saved: {exc}"))
            ids = {rel: self._ledger.by_file.get(rel, (None, entry.id))[1] for rel, entry in by_file.items()}
        entries = [e if e.id == ids[rel] else replace(e, id=ids[rel]) for rel, e in by_file.items()]
        merged, duplicates = merge_duplicates(entries)
        return merged, notes + duplicates


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off while many objects are made that hold no cycles.

    Otherwise those objects trigger collections, now and then full ones over
    every object alive: during a scan (one object per file, dropped again when
    nothing changed) 15-30 % of a no-change refresh at 100k seeds; while a
    serving process takes in a new snapshot of 10k entries, 40-50 ms with the
    GIL held, which every request waits for. Nested pauses are fine; the
    outermost one restores the collector."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def state_file(folder: Path) -> BinaryIO | None:
    """A temporary file in the state folder (beside the entry-id ledger), deleted
    when closed; None if the folder cannot take one."""
    try:
        return tempfile.TemporaryFile(dir=folder)
    except OSError:
        return None


def with_archives(feeds: tuple[Feed, ...]) -> tuple[Feed, ...]:
    """Every feed followed by its archive pages: all the documents to render."""
    return tuple(document for feed in feeds for document in (feed, *archive_pages(feed)))


def formats_of(document: Feed) -> tuple[str, ...]:
    """What a document is rendered in: every format, and a preview page unless it is an archive page."""
    return RENDERED if document.page is None else FORMATS


def documents_in(feeds: tuple[Feed, ...], fmt: str) -> tuple[Feed, ...]:
    """The feeds and their archive pages that are rendered in `fmt` (`formats_of`)."""
    return tuple(document for document in with_archives(feeds) if fmt in formats_of(document))


def _stamp(seed: SeedFile) -> tuple[int, int, int, int]:
    return seed[2:]  # (size, mtime_ns, ctime_ns, inode), sliced in C


def _fresh(stamp: tuple[int, int, int, int], result: Read, known: _Read | None) -> _Read:
    """The new `_Read` of a file; a bad version keeps the last good entry, marked stale."""
    entry, notes, left_out = result
    if entry is not None or left_out is not None:
        return _Read(stamp, entry, notes, left_out=left_out)
    last_good = known.published if known else None
    if last_good is not None:
        notes = tuple(replace(d, message=f"{d.message}; its last good version keeps publishing", stale=True)
                      if d.severity == "error" else d for d in notes)
    return _Read(stamp, None, notes, stale=last_good)


def _open_ledger(path: Path) -> tuple[Ledger, Diagnostic | None]:
    """The ledger at `path`, or an in-memory one (and why) when it cannot be opened."""
    try:
        return Ledger(path), None
    except (OSError, sqlite3.Error) as exc:
        note = Diagnostic("(state)", "state.path", "warning",
                          f"entry-id ledger unavailable ({exc}); ids follow URLs only")
        return Ledger(None), note


def build_snapshot(config: Config) -> Snapshot:
    """A cold build: every file read, every document rendered."""
    return Builder(config).build()


def check_files(folder: Path, globs: tuple[str, ...], limits: Limits = Limits(),
                track: Callable[[list[SeedFile]], Iterable[SeedFile]] = iter) -> tuple[int, list[Diagnostic]]:
    """Every diagnostic for a folder (or a single file): how many files, and what is wrong.
    The files are read in the order `track(files)` hands them over (a progress bar's hook)."""
    if folder.is_file():
        if refused := undecodable_name(folder.name):  # named alone, it was not listed: the listing's refusal
            return 1, [refused]
        files, diagnostics = [SeedFile(folder.name, folder, 0, 0, 0, 0)], []
    else:
        files, diagnostics = scan_folder(folder, globs)
    entries = []
    for seed in track(files):
        record, notes = read_record(seed, limits)
        diagnostics.extend(notes)
        if record:
            entries.append(to_entry(record))
    diagnostics.extend(merge_duplicates(entries)[1])
    return len(files), sorted(diagnostics, key=lambda d: (d.file, d.field, d.message))
