"""The entry-id ledger: ids that survive a corrected URL.

An entry's id is its canonical URL, except when a file keeps its name but its
URL is corrected: readers already hold the first id, so the entry keeps it.
The ledger remembers, in a small SQLite file in the state folder (never the
seed folder), which id each canonical URL and each file was published under.
Deleting it loses only that memory: ids fall back to canonical URLs.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

SCHEMA = """
CREATE TABLE IF NOT EXISTS by_url (canonical TEXT PRIMARY KEY, entry_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS by_file (file TEXT PRIMARY KEY, canonical TEXT NOT NULL, entry_id TEXT NOT NULL);
"""


class Ledger:
    """Published ids by canonical URL and by file; in memory, saved to SQLite when a path is given."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.by_url: dict[str, str] = {}
        self.by_file: dict[str, tuple[str, str]] = {}
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._transaction() as db:
                self.by_url = dict(db.execute("SELECT canonical, entry_id FROM by_url"))
                self.by_file = {f: (c, i) for f, c, i in db.execute("SELECT file, canonical, entry_id FROM by_file")}

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:  # commits, or rolls back on error
                db.executescript(SCHEMA)
                yield db
        finally:
            db.close()

    def assign(self, canonical_by_file: Mapping[str, str]) -> dict[str, str]:
        """The id each file's entry publishes under, given each file's canonical URL now."""
        current = set(canonical_by_file.values())
        ids: dict[str, str] = {}
        new_urls: dict[str, str] = {}
        new_files: dict[str, tuple[str, str]] = {}
        for file, canonical in canonical_by_file.items():
            entry_id = self.by_url.get(canonical)
            if entry_id is None:
                before = self.by_file.get(file)
                # Same file, new URL, and the old URL is gone: a corrected URL keeps its id.
                corrected = before is not None and before[0] != canonical and before[0] not in current
                entry_id = before[1] if corrected else canonical
                new_urls[canonical] = entry_id
            ids[file] = entry_id
            if self.by_file.get(file) != (canonical, entry_id):
                new_files[file] = (canonical, entry_id)
        gone = [file for file in self.by_file if file not in canonical_by_file]
        self._save(new_urls, new_files, gone)
        return ids

    def may_renumber(self, file: str, canonical: str) -> bool:
        """Whether `assign` could give the entry of `file` an id other than its
        canonical URL, whatever the other files' URLs: that URL was published
        under another id, or the file under another URL or id. (Only then does a
        cold build keep the whole entry, to serialize it again under that id.)"""
        entry_id = self.by_url.get(canonical)
        if entry_id is not None:
            return entry_id != canonical
        before = self.by_file.get(file)
        return before is not None and before != (canonical, canonical)

    def _save(self, urls: dict[str, str], files: dict[str, tuple[str, str]], gone: list[str]) -> None:
        self.by_url.update(urls)
        self.by_file.update(files)
        for file in gone:
            del self.by_file[file]
        if self.path is None or not (urls or files or gone):
            return
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO by_url VALUES (?, ?)", urls.items())
            db.executemany("INSERT OR REPLACE INTO by_file VALUES (?, ?, ?)",
                           [(f, c, i) for f, (c, i) in files.items()])
            db.executemany("DELETE FROM by_file WHERE file = ?", [(f,) for f in gone])
