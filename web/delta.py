"""RFC 3229 delta feeds ("A-IM: feed"): a poll naming an earlier version gets
only the entries added or changed since then.

For each feed, the last few versions are remembered by their ETags (every
format and coding of a version maps to the same entry set), so a client that
sends `If-None-Match: <old ETag>` and `A-IM: feed` gets `226 IM Used` with the
new entries; an ETag we no longer know gets the full document.
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from dataclasses import replace
from typing import Iterable

from feeds.catalog import Feed
from feeds.entries import Entry
from feeds.snapshot import Document, Snapshot, feed_paths, render_feed
from feeds.urls import FORMATS

VERSIONS_KEPT = 4  # per feed: enough for readers polling every interval or two
DELTAS_CACHED = 256


def _fingerprint(entry: Entry) -> int:
    # An entry "changed" when any of its fields did; equal entries hash equal in this process.
    return hash(entry)


def _packed(fingerprints: Iterable[int]) -> bytes:
    """Entry fingerprints as 8 bytes each: a version of a 50-entry feed is kept in
    400 bytes, not the 4 KB of a frozenset of ints (4 versions of every feed are kept)."""
    return array("q", sorted(fingerprints)).tobytes()


def _unpacked(packed: bytes) -> frozenset[int]:
    fingerprints = array("q")
    fingerprints.frombytes(packed)
    return frozenset(fingerprints)


class History:
    """Entry sets of the last few versions of every feed, by ETag; and the deltas made from them."""

    def __init__(self) -> None:
        self._by_etag: dict[str, tuple[str, bytes]] = {}  # etag -> (feed key, packed entry fingerprints)
        self._versions: dict[str, list[list[str]]] = {}  # feed key -> etags of each kept version, oldest first
        self._deltas: OrderedDict[tuple[str, str], Document] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, snapshot: Snapshot) -> None:
        """Remember the current version of every feed (call on each new snapshot)."""
        with self._lock:
            for key, feed in snapshot.feeds.items():
                etags = [tag for fmt in FORMATS
                         for doc in [snapshot.documents[feed_paths(feed)[fmt]]]
                         for tag in (doc.etag, doc.gzip_etag)]
                if etags[0] in self._by_etag:
                    continue  # this version is known already
                entries = _packed(_fingerprint(e) for e in feed.entries)
                for tag in etags:
                    self._by_etag[tag] = (key, entries)
                versions = self._versions.setdefault(key, [])
                versions.append(etags)
                while len(versions) > VERSIONS_KEPT:
                    for tag in versions.pop(0):
                        self._by_etag.pop(tag, None)

    def delta(self, snapshot: Snapshot, key: str, fmt: str, base_etags: list[str]) -> Document | None:
        """The feed with only the entries that are new since the first known base
        version, as a document; None when no base version is known (send it all)."""
        with self._lock:
            base = next((tag for tag in base_etags if self._by_etag.get(tag, ("",))[0] == key), None)
            if base is None:
                return None
            cached = self._deltas.get((f"{key}.{fmt}", base))
            known = _unpacked(self._by_etag[base][1])
        feed = snapshot.feeds[key]
        current = snapshot.documents[feed_paths(feed)[fmt]]
        if cached is not None and cached.etag == current.etag:
            return cached
        doc = _render_delta(feed, fmt, known, current)
        with self._lock:
            self._deltas[(f"{key}.{fmt}", base)] = doc
            while len(self._deltas) > DELTAS_CACHED:
                self._deltas.popitem(last=False)
        return doc


def _render_delta(feed: Feed, fmt: str, known: frozenset[int], current: Document) -> Document:
    fresh = tuple(e for e in feed.entries if _fingerprint(e) not in known)
    body = render_feed(replace(feed, entries=fresh), fmt)
    # The 226's ETag is the current instance's (RFC 3229 section 10.4.1): the client's next base.
    return replace(body, etag=current.etag, gzip_etag=current.gzip_etag, last_modified=current.last_modified)
