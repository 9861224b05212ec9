"""Every document rendered once: body, gzip body, media type, ETag, Last-Modified.

A `Snapshot` is immutable; the web layer serves one and swaps in the next.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Callable, Mapping

from .atom_rss import MEDIA_TYPES, entry_xml, render_atom, render_rss
from .catalog import EPOCH, Feed
from .entries import Entry
from .fields import Diagnostic
from .jsonfeed import item_json, render_json
from .urls import FORMATS

RENDERERS: dict[str, Callable[..., bytes]] = {"atom": render_atom, "rss": render_rss, "json": render_json}
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Document:
    """One rendered representation, ready to send as is."""

    body: bytes
    gzip_body: bytes
    media_type: str
    etag: str  # strong entity tag, unquoted; the gzip body has its own
    gzip_etag: str
    last_modified: datetime


@dataclass(frozen=True)
class Snapshot:
    """Everything the service answers with, built from one scan of the seeds."""

    documents: Mapping[str, Document]  # by URL path: "/", "/feeds/all.atom", ...
    feeds: Mapping[str, Feed]  # by key: "all", "topics/ai", ...
    diagnostics: tuple[Diagnostic, ...]
    left_out: Mapping[str, int]
    entry_count: int
    file_count: int
    newest: datetime = field(default=EPOCH)

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "error")


def make_document(body: bytes, media_type: str, last_modified: datetime) -> Document:
    """Wrap bytes with their validators and their gzip form (compressed once, mtime 0
    so the gzip bytes are as reproducible as the body)."""
    digest = hashlib.sha256(body).hexdigest()[:32]
    return Document(
        body=body,
        gzip_body=gzip.compress(body, compresslevel=6, mtime=0),
        media_type=media_type,
        etag=digest,
        gzip_etag=f"{digest}-gz",
        last_modified=last_modified,
    )


def media_type(fmt: str) -> str:
    return f"{MEDIA_TYPES[fmt]}; charset=utf-8"


class Fragments:
    """Each entry serialized once per format, for every document that holds it."""

    def __init__(self, topics_stem: str) -> None:
        self.topics_stem = topics_stem
        self._made: dict[tuple[str, Entry], bytes] = {}

    def __call__(self, fmt: str) -> Callable[[Entry], bytes]:
        def fragment(entry: Entry) -> bytes:
            key = (fmt, entry)
            made = self._made.get(key)
            if made is None:
                made = self._made[key] = (item_json(entry) if fmt == "json"
                                          else entry_xml(entry, fmt, self.topics_stem))
            return made

        return fragment

    def forget(self, fmt: str | None = None) -> None:
        """Drop the fragments of one format (or all): a build that is done with them frees the memory."""
        self._made = {k: v for k, v in self._made.items() if fmt is not None and k[0] != fmt}


def render_feed(feed: Feed, fmt: str, fragments: Fragments | None = None) -> Document:
    """One feed in one format, as a document."""
    fragment = fragments(fmt) if fragments else None
    return make_document(RENDERERS[fmt](feed, fragment), media_type(fmt), feed.updated)


def limit_feed(feed: Feed, limit: int) -> Feed:
    """The same feed holding only its newest `limit` entries."""
    shown = feed.entries[:limit]
    return replace(feed, entries=shown, updated=max((e.updated for e in shown), default=EPOCH))


def feed_paths(feed: Feed) -> dict[str, str]:
    """URL path of each format of a feed."""
    return {fmt: f"/feeds/{feed.key}.{fmt}" for fmt in FORMATS}


def assemble(feeds: tuple[Feed, ...], documents: Mapping[str, Document], *, directory: bytes,
             diagnostics: tuple[Diagnostic, ...], left_out: Mapping[str, int],
             entry_count: int, file_count: int) -> Snapshot:
    """Freeze the rendered documents and their feeds into a snapshot."""
    newest = max((f.updated for f in feeds), default=EPOCH)
    docs = dict(documents)
    docs["/"] = make_document(directory, HTML, newest)
    return Snapshot(
        documents=MappingProxyType(docs),
        feeds=MappingProxyType({f.key: f for f in feeds}),
        diagnostics=diagnostics,
        left_out=MappingProxyType(dict(left_out)),
        entry_count=entry_count,
        file_count=file_count,
        newest=newest,
    )


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
