"""Every document rendered once: body, gzip body, media type, ETag, Last-Modified, Link.

A `Snapshot` is immutable; the web layer serves one and swaps in the next.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import BinaryIO, Callable, Counter, Mapping, Sequence
from urllib.parse import quote

from isal import igzip, isal_zlib
from zlib_ng import gzip_ng

from .atom_rss import MEDIA_TYPES, entry_xml, entry_xml_both, render_atom, render_rss
from .catalog import EPOCH, Feed
from .entries import Entry
from .fields import Diagnostic
from .jsonfeed import item_json, render_json
from .pages import article_html, render_preview
from .urls import FORMATS

RENDERERS: dict[str, Callable[..., bytes]] = {"atom": render_atom, "rss": render_rss, "json": render_json,
                                              "html": render_preview}
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Document:
    """One rendered representation, ready to send as is."""

    body: bytes | None  # None where only the gzip body is kept (see `gzip_only`): read it with `plain_body`
    gzip_body: bytes
    media_type: str
    etag: str  # strong entity tag, unquoted; the gzip body has its own
    gzip_etag: str
    last_modified: datetime
    immutable: bool = False  # a full archive page: cacheable for a long time
    links: str = ""  # the HTTP Link header, empty for none


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the service answers with, built from one scan of the seeds."""

    documents: Mapping[str, Document]  # by URL path: "/", "/feeds/all.atom", ...
    feeds: Mapping[str, Feed]  # by key: "all", "topics/ai", ...
    diagnostics: tuple[Diagnostic, ...]
    left_out: Mapping[str, int]
    entry_count: int
    file_count: int
    pages: Mapping[str, Document]  # documents that are not feeds: "/", "/icon.png", "/feeds.opml"...; also in documents
    newest: datetime = field(default=EPOCH)

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "error")


def make_document(body: bytes, media_type: str, last_modified: datetime, immutable: bool = False,
                  links: str = "", archive: bool = False) -> Document:
    """Wrap bytes with their validators and their gzip form (compressed once, mtime 0
    so the gzip bytes are as reproducible as the body).

    The documents readers poll are compressed at level 6 by zlib-ng (zlib's
    format, 1.7x faster). Archive pages are three quarters of the bytes of a
    build and rarely fetched: zlib-ng's level 2 (231 MiB of them at 10,000
    seeds in 0.54 s, to 38 MiB). Not ISA-L's level 2, though faster (0.25 s):
    a test once saw it deflate one body to different bytes in two processes (not
    reproduced in ~400 tries since), which would change a gzip body under an
    unchanged ETag."""
    digest = hashlib.sha256(body).hexdigest()[:32]
    return Document(
        body=body,
        gzip_body=compress(body, archive),
        media_type=media_type,
        etag=digest,
        gzip_etag=f"{digest}-gz",
        last_modified=last_modified,
        immutable=immutable,
        links=links,
    )


def compress(body: bytes, archive: bool = False) -> bytes:
    """A document's gzip body (see `make_document`)."""
    return gzip_ng.compress(body, compresslevel=2 if archive else 6, mtime=0)


def gzip_only(doc: Document) -> Document:
    """`doc` without its plain body if it is a full archive page, else `doc` itself.

    Full archive pages are most of a site's bytes (at 10,000 seeds, 218 of the
    315 MiB of plain bodies), hardly ever fetched, and then nearly always with
    gzip: a serving process keeps only their gzip body, and `plain_body`
    inflates it, byte for byte, for the rare reader that asks without gzip."""
    return replace(doc, body=None) if doc.immutable and doc.body is not None else doc


def plain_body(doc: Document) -> bytes:
    """The plain body, inflated from the gzip body where `gzip_only` dropped it."""
    return doc.body if doc.body is not None else igzip.decompress(doc.gzip_body)


def media_type(fmt: str) -> str:
    return HTML if fmt == "html" else f"{MEDIA_TYPES[fmt]}; charset=utf-8"


class Fragments:
    """Entries serialized for the documents about to be rendered: an entry in
    several of them is serialized once, and dropped after its last use.

    With archive pages nearly every entry waits for a later document: at 10,000
    seeds a format's fragments wait ~11 MiB deflated. Given `spill`, a temporary
    file, they wait there instead, in the page cache (which the kernel may write
    out and drop) rather than on the heap; a write of ~3 kB and a pread cost
    about what deflating and inflating it did. Without one (or once a write to
    it fails) they are kept deflated in memory (ISA-L's level 0: 4 us in, 4 us
    out for 2.8 kB). A kept fragment that cannot be read back is serialized
    again: the bytes are the same either way."""

    def __init__(self, topics_stem: str, uses: Counter[int], spill: BinaryIO | None = None) -> None:
        self.topics_stem = topics_stem
        # Keyed by id(entry): the documents of one build share their Entry objects, and
        # hashing a whole entry (all its fields) cost more than serializing it again.
        self._uses = uses
        self._made: dict[int, bytes | tuple[int, int]] = {}  # deflated bytes, or (offset, length) in spill
        self._spill = spill
        self._end = 0  # bytes written to spill
        self._flushed = 0  # of which readable with pread

    def __call__(self, fmt: str) -> Callable[[Entry], bytes]:
        def fragment(entry: Entry) -> bytes:
            key = id(entry)
            kept = self._made.get(key)
            made = None if kept is None else self._read(kept)
            fresh = made is None
            if fresh:
                made = serialize(entry, fmt, self.topics_stem)
            left = self._uses[key] - 1
            self._uses[key] = left
            if left <= 0:
                self._made.pop(key, None)
            elif fresh:
                self._made[key] = self._keep(made)
            return made

        return fragment

    def _keep(self, made: bytes) -> bytes | tuple[int, int]:
        if self._spill is not None:
            try:
                self._spill.write(made)
            except OSError:  # a full disk: keep the rest in memory
                self._spill = None
            else:
                self._end += len(made)
                return self._end - len(made), len(made)
        return isal_zlib.compress(made, 0)

    def _read(self, kept: bytes | tuple[int, int]) -> bytes | None:
        if isinstance(kept, bytes):
            return isal_zlib.decompress(kept)
        offset, length = kept
        spill = self._spill
        if spill is None:  # given up after a failed write
            return None
        try:
            if offset + length > self._flushed:
                spill.flush()
                self._flushed = self._end
            made = os.pread(spill.fileno(), length, offset)
        except OSError:
            return None
        return made if len(made) == length else None


def serialize(entry: Entry, fmt: str, topics_stem: str) -> bytes:
    """An entry as the fragment documents of one format splice in: an Atom entry,
    an RSS item, a JSON Feed item, or a preview page's article ("html")."""
    if fmt == "json":
        return item_json(entry)
    if fmt == "html":
        return article_html(entry, topics_stem)
    return entry_xml(entry, fmt, topics_stem)


def serialize_all(entries: Sequence[Entry], formats: Sequence[str], topics_stem: str) -> list[list[bytes]]:
    """`[[serialize(entry, fmt, topics_stem) for entry in entries] for fmt in formats]`,
    made one format after another (faster than entry by entry: each format's code
    and data stay in the CPU's caches), but Atom and RSS together when both are
    asked for (see `entry_xml_both`)."""
    made: dict[str, list[bytes]] = {}
    if {"atom", "rss"} <= set(formats):
        pairs = [entry_xml_both(entry, topics_stem) for entry in entries]
        made = {"atom": [atom for atom, _ in pairs], "rss": [rss for _, rss in pairs]}
    return [made[fmt] if fmt in made else [serialize(entry, fmt, topics_stem) for entry in entries]
            for fmt in formats]


def render_body(feed: Feed, fmt: str, fragments: Callable[[str], Callable[[Entry], bytes]] | None = None) -> bytes:
    """The body of one feed in one format (or of its HTML preview); `fragments`
    (a `Fragments`, say) gives each entry's fragment in a format."""
    return RENDERERS[fmt](feed, fragments(fmt) if fragments else None)


def render_feed(feed: Feed, fmt: str, fragments: Fragments | None = None) -> Document:
    """One feed in one format (or its HTML preview), as a document."""
    links = link_header(feed, fmt) if fmt != "html" else ""
    return make_document(render_body(feed, fmt, fragments), media_type(fmt), feed.updated, feed.is_complete_page,
                         links, archive=feed.page is not None)


def link_header(feed: Feed, fmt: str) -> str:
    """A feed document's Link header when it has hubs: each hub and the document's
    own URL (WebSub section 4), rel values quoted as hubs look for them."""
    if not feed.hubs:
        return ""
    # The self URL is built on base_url: keep anything but URI characters out of the header.
    own = quote(feed.url(fmt), safe="/:?#[]@!$&'()*+,;=%~")
    return ", ".join([*(f'<{hub}>; rel="hub"' for hub in feed.hubs), f'<{own}>; rel="self"'])


def limit_feed(feed: Feed, limit: int) -> Feed:
    """The same feed holding only its newest `limit` entries."""
    shown = feed.entries[:limit]
    return replace(feed, entries=shown, updated=max((e.updated for e in shown), default=EPOCH))


def feed_paths(feed: Feed) -> dict[str, str]:
    """URL path of each format of a feed, and of its HTML preview."""
    return {fmt: f"/feeds/{feed.key}.{fmt}" for fmt in (*FORMATS, "html")}


def summarize(feeds: tuple[Feed, ...], *, pages: Mapping[str, Document], diagnostics: tuple[Diagnostic, ...],
              left_out: Mapping[str, int], entry_count: int, file_count: int) -> Snapshot:
    """A snapshot of everything but the feed documents (see `assemble_documents`)."""
    newest = max((f.updated for f in feeds), default=EPOCH)
    return Snapshot(
        documents=MappingProxyType(dict(pages)),
        feeds=MappingProxyType({f.key: f for f in feeds}),
        diagnostics=diagnostics,
        left_out=MappingProxyType(dict(left_out)),
        entry_count=entry_count,
        file_count=file_count,
        pages=MappingProxyType(dict(pages)),
        newest=newest,
    )


def assemble_documents(documents: Mapping[str, Document], pages: Mapping[str, Document]) -> Mapping[str, Document]:
    """The read-only map of every document a snapshot serves."""
    return MappingProxyType({**documents, **pages})


def carry_last_modified(previous: Snapshot | None, current: Snapshot, now: datetime) -> Snapshot:
    """Give each document a Last-Modified that is never earlier than a change.

    An unchanged document keeps the date it had; a changed or new one is dated
    `now`. A first build is dated `now` too: the seeds may have changed while
    no process was watching, and an older date would earn a stale client a 304.
    """
    now = now.replace(microsecond=0)
    old = previous.documents if previous else {}
    docs = {}
    for path, doc in current.documents.items():
        before = old.get(path)
        stamp = before.last_modified if before is not None and before.etag == doc.etag else now
        docs[path] = doc if stamp == doc.last_modified else replace(doc, last_modified=stamp)
    return replace(current, documents=MappingProxyType(docs))
