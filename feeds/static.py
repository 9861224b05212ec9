"""The static build: documents written as files any web server can serve.

    OUT -> .OUT.versions/<n>/          OUT is a symlink, swapped atomically
           index.html, index.html.gz
           feeds/all.atom, feeds/all.atom.gz, feeds/topics/ai.rss, ...

Each build writes a new version folder and then points OUT at it with one
rename of a symlink, so a reader of OUT (nginx, rsync) never sees half a build;
the previous version stays until the next build, so a reader that resolved OUT
just before the swap (an rsync walking it) finishes on a complete tree.
A file whose bytes did not change is hard-linked from the previous version, so
it keeps its mtime and inode and a sync uploads only what changed. `.gz`
siblings are there for nginx's `gzip_static`. Paths come from the snapshot
(single safe segments); each is checked to stay inside the version folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

from .snapshot import Document, Snapshot, plain_body


class SiteWriter:
    """Writes one new version of the site, then swaps it in (`commit`) or not (`abort`)."""

    def __init__(self, out: Path) -> None:
        self.out = Path(os.path.abspath(out))
        self.versions = self.out.parent / f".{self.out.name}.versions"
        if self.out.exists() and not self.out.is_symlink():
            raise FileExistsError(f"{self.out} exists and is not a seedfeeds build; remove it or choose another folder")
        self.versions.mkdir(parents=True, exist_ok=True)
        self.previous = self.out.resolve() if self.out.is_symlink() else None
        self.folder = Path(tempfile.mkdtemp(prefix="v", dir=self.versions))
        self.written = 0  # files whose bytes changed
        self.kept = 0  # files hard-linked unchanged from the previous version
        self._made = {str(self.folder)}  # folders known to exist
        self._counting = threading.Lock()  # `write` may be called from several threads

    def write(self, path: str, doc: Document) -> None:
        """Write one document (and its .gz sibling) under its URL path."""
        self.write_bodies(path, plain_body(doc), doc.gzip_body)

    def write_bodies(self, path: str, body: bytes, gzip_body: bytes) -> None:
        """Write a document's body and gzip body under its URL path (.gz for the second)."""
        rel = "index.html" if path == "/" else path.lstrip("/")
        # Lexical: the version folder is new and holds only what this writer made, no symlinks.
        target = os.path.normpath(os.path.join(self.folder, rel))
        if not target.startswith(f"{self.folder}{os.sep}"):
            raise ValueError(f"refusing to write outside the output folder: {path!r}")
        parent = os.path.dirname(target)
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        self._put(rel, target, body)
        self._put(rel + ".gz", target + ".gz", gzip_body)

    def _put(self, rel: str, target: str, data: bytes) -> None:
        old = self.previous / rel if self.previous else None
        try:
            if old is not None and old.stat().st_size == len(data) and old.read_bytes() == data:
                os.link(old, target)
                with self._counting:
                    self.kept += 1
                return
        except OSError:
            pass  # no previous file (or it vanished): write it
        _write_new(target, data)
        with self._counting:
            self.written += 1

    def commit(self) -> None:
        """Point OUT at the new version in one atomic rename, then drop the versions
        before the previous one (a reader still walking the previous one can finish)."""
        os.chmod(self.folder, 0o755)
        link = self.versions / f".link-{os.getpid()}"
        link.unlink(missing_ok=True)
        link.symlink_to(os.path.relpath(self.folder, self.out.parent))
        os.replace(link, self.out)
        keep = {self.folder, self.previous}
        for old in self.versions.iterdir():
            if old not in keep and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _write_new(target: str, data: bytes) -> None:
    """Write `data` as the new file `target`. Never into an existing one: in a
    version folder, that would be a hard link to the version being served, and
    writing through it would change the live site (FileExistsError instead).

    os.open and os.write rather than open(): a buffered file object makes three
    more system calls per file (fstat, ioctl, lseek), and writing the 14,400
    files of a 10,000-seed build took 0.83-0.92 s of kernel time that way,
    against 0.44-0.59 s with this (two interleaved rounds)."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def write_site(snapshot: Snapshot, out: Path) -> SiteWriter:
    """Write every document of `snapshot` as a new version of the site at `out`."""
    writer = SiteWriter(out)
    try:
        for path, doc in snapshot.documents.items():
            writer.write(path, doc)
    except BaseException:
        writer.abort()
        raise
    writer.commit()
    return writer
