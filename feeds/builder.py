"""The pipeline, top to bottom: seed folder -> records -> entries -> feeds -> snapshot.

`Builder` keeps what it learned from the last scan, so a refresh re-reads only
the files whose (size, mtime, ctime, inode) changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .catalog import build_catalog, select_published
from .config import Config
from .entries import Entry, merge_duplicates, to_entry
from .fields import Diagnostic
from .pages import render_directory
from .records import SeedFile, read_record, scan_folder
from .snapshot import Snapshot, assemble, feed_paths, render_feed
from .urls import Urls


@dataclass(frozen=True)
class _Read:
    """What one version of one file gave: an entry or not, and its diagnostics."""

    stamp: tuple[int, int, int, int]
    entry: Entry | None
    diagnostics: tuple[Diagnostic, ...]


class Builder:
    """Builds snapshots of one seed folder under one config."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.urls = Urls(config.base_url)
        self._reads: dict[str, _Read] = {}

    def build(self) -> Snapshot:
        """Scan the folder and render every document."""
        files, diagnostics = scan_folder(self.config.seeds_path, self.config.globs)
        reads = [self._read(seed) for seed in files]
        self._reads = {seed.rel: read for seed, read in zip(files, reads)}
        for read in reads:
            diagnostics.extend(read.diagnostics)
        entries, duplicates = merge_duplicates(r.entry for r in reads if r.entry)
        diagnostics.extend(duplicates)
        published, left_out = select_published(entries, self.config)
        feeds = build_catalog(published, self.config, self.urls)
        documents = {path: render_feed(feed, fmt) for feed in feeds for fmt, path in feed_paths(feed).items()}
        diagnostics = sorted(diagnostics, key=lambda d: (d.file, d.field, d.message))
        directory = render_directory(feeds, self.config, len(published), left_out, diagnostics)
        return assemble(feeds, documents, directory=directory, diagnostics=tuple(diagnostics), left_out=left_out,
                        entry_count=len(published), file_count=len(files))

    def _read(self, seed: SeedFile) -> _Read:
        stamp = (seed.size, seed.mtime_ns, seed.ctime_ns, seed.inode)
        known = self._reads.get(seed.rel)
        if known is not None and known.stamp == stamp:
            return known
        record, notes = read_record(seed)
        return _Read(stamp, to_entry(record) if record else None, tuple(notes))


def build_snapshot(config: Config) -> Snapshot:
    """A cold build: every file read, every document rendered."""
    return Builder(config).build()


def check_files(folder: Path, globs: tuple[str, ...]) -> tuple[int, list[Diagnostic]]:
    """Every diagnostic for a folder (or a single file): how many files, and what is wrong."""
    if folder.is_file():
        seed = SeedFile(folder.name, folder, 0, 0, 0, 0)
        files, diagnostics = [seed], []
    else:
        files, diagnostics = scan_folder(folder, globs)
    entries = []
    for seed in files:
        record, notes = read_record(seed)
        diagnostics.extend(notes)
        if record:
            entries.append(to_entry(record))
    diagnostics.extend(merge_duplicates(entries)[1])
    return len(files), sorted(diagnostics, key=lambda d: (d.file, d.field, d.message))
