"""The pipeline, top to bottom: seed folder -> records -> entries -> feeds -> snapshot.

`Builder` keeps what it learned from earlier scans, so a refresh costs what
changed: only files whose (size, mtime, ctime, inode) changed are read again,
only documents whose feed changed are rendered again (an unchanged document
keeps its very bytes and ETag), and when nothing changed the previous snapshot
object itself is returned. A file that was good and turns bad keeps publishing
its last good version, marked stale.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path

from .catalog import build_catalog, select_published
from .config import Config, Limits
from .entries import Entry, merge_duplicates, to_entry
from .fields import Diagnostic
from .ledger import Ledger
from .pages import render_directory
from .records import SeedFile, read_record, scan_folder
from .snapshot import Document, Fragments, Snapshot, assemble, feed_paths, render_feed
from .urls import FORMATS, Urls

LEDGER_FILE = "ledger.sqlite3"


class SeedFolderEmpty(RuntimeError):
    """The seed folder lists no files although it had some: keep the last snapshot."""


@dataclass(frozen=True)
class _Read:
    """What one version of one file gave: an entry or not, its diagnostics, and
    the last good entry it had, if this version is bad."""

    stamp: tuple[int, int, int, int]
    entry: Entry | None
    diagnostics: tuple[Diagnostic, ...]
    stale: Entry | None = None

    @property
    def published(self) -> Entry | None:
        return self.entry or self.stale


class Builder:
    """Builds snapshots of one seed folder under one config."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.urls = Urls(config.base_url)
        self._reads: dict[str, _Read] = {}
        self._ledger, self._ledger_note = _open_ledger(config.state_path / LEDGER_FILE)
        self._rendered: dict[str, tuple[object, Document]] = {}  # path -> (what it was made from, document)
        self._last: tuple[list, Snapshot] | None = None  # (scan notes, snapshot) of the last build

    def build(self) -> Snapshot:
        """Scan the folder; re-read what changed and re-render what that touched."""
        files, scan_notes = scan_folder(self.config.seeds_path, self.config.globs)
        if not files and any(r.published for r in self._reads.values()):
            raise SeedFolderEmpty(f"seed folder {self.config.seeds_path} lists no seed files")
        if self._last is not None and self._last[0] == scan_notes and not self._changed(files):
            return self._last[1]
        self._reads = {seed.rel: self._read(seed) for seed in files}
        diagnostics = list(scan_notes)
        for read in self._reads.values():
            diagnostics.extend(read.diagnostics)
        entries, notes = self._identified({rel: r.published for rel, r in self._reads.items() if r.published})
        diagnostics.extend(notes)
        published, left_out = select_published(entries, self.config)
        feeds = build_catalog(published, self.config, self.urls)
        documents = self._render(feeds)
        diagnostics = sorted(diagnostics, key=lambda d: (d.file, d.field, d.message))
        directory = render_directory(feeds, self.config, len(published), left_out, diagnostics)
        snapshot = assemble(feeds, documents, directory=directory, diagnostics=tuple(diagnostics),
                            left_out=left_out, entry_count=len(published), file_count=len(files))
        self._last = (scan_notes, snapshot)
        return snapshot

    def _changed(self, files: list[SeedFile]) -> bool:
        """Whether any file was added, removed, or changed since the last build."""
        if len(files) != len(self._reads):
            return True
        reads = self._reads
        for seed in files:
            known = reads.get(seed.rel)
            if known is None or known.stamp != (seed.size, seed.mtime_ns, seed.ctime_ns, seed.inode):
                return True
        return False

    def _render(self, feeds: tuple) -> dict[str, Document]:
        """Every feed document; one whose feed is unchanged keeps its previous document.

        Formats are rendered one after the other, so only one format's entry
        fragments are held at a time."""
        fragments = Fragments(self.urls.feed_stem("topics/"))
        rendered: dict[str, tuple[object, Document]] = {}
        for fmt in FORMATS:
            for feed in feeds:
                path = feed_paths(feed)[fmt]
                before = self._rendered.get(path)
                if before is not None and before[0] == feed:
                    rendered[path] = before
                else:
                    rendered[path] = (feed, render_feed(feed, fmt, fragments))
            fragments.forget(fmt)
        self._rendered = rendered
        return {path: doc for path, (_, doc) in rendered.items()}

    def _read(self, seed: SeedFile) -> _Read:
        stamp = (seed.size, seed.mtime_ns, seed.ctime_ns, seed.inode)
        known = self._reads.get(seed.rel)
        if known is not None and known.stamp == stamp:
            return known
        record, notes = read_record(seed, self.config.limits)
        if record is not None:
            return _Read(stamp, to_entry(record), tuple(notes))
        last_good = known.published if known else None
        if last_good is not None:
            notes = [replace(d, message=f"{d.message}; its last good version keeps publishing", stale=True)
                     if d.severity == "error" else d for d in notes]
        return _Read(stamp, None, tuple(notes), stale=last_good)

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


def check_files(folder: Path, globs: tuple[str, ...], limits: Limits = Limits()) -> tuple[int, list[Diagnostic]]:
    """Every diagnostic for a folder (or a single file): how many files, and what is wrong."""
    if folder.is_file():
        files, diagnostics = [SeedFile(folder.name, folder, 0, 0, 0, 0)], []
    else:
        files, diagnostics = scan_folder(folder, globs)
    entries = []
    for seed in files:
        record, notes = read_record(seed, limits)
        diagnostics.extend(notes)
        if record:
            entries.append(to_entry(record))
    diagnostics.extend(merge_duplicates(entries)[1])
    return len(files), sorted(diagnostics, key=lambda d: (d.file, d.field, d.message))
