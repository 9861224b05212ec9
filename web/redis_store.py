"""The shared snapshot in one Redis database, and the builder's lease.

Keys (all under `seedfeeds:`):

    lease                 the builder's id; set NX with a time-out, renewed while held
    manifest              the current snapshot without bytes or entries (feeds.codec.Manifest)
    version               digest of the manifest; what servers poll and compare
    doc:<etag>            a document body, under the ETag of that representation
    doc:<etag>-gz         its gzip body, under the gzip ETag
    feed:<digest>         one feed with its entries (feeds.codec JSON), under the digest of that JSON
    channel "seedfeeds:versions"   each new version is announced here

Bodies and feeds are content-addressed, so a new version writes only what is
new, and a server fetches only what it lacks. The builder writes them first,
then the manifest and version together, in one Lua script that does nothing
unless the lease is still its own (a builder that lost the lease while
building cannot overwrite its successor's work). Blobs the new version no
longer uses expire after `GRACE_MS`, so a server still fetching the previous
version finds them.

Reads check what they get: a body must hash to its ETag, a gzip body must
inflate to its body, a feed must hash to its digest and decode.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import replace
from types import MappingProxyType
from typing import Callable, Iterator, Mapping

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from feeds.catalog import Feed
from feeds.codec import (CodecError, DocumentInfo, Manifest, decode_feed, decode_manifest, digest, encode_feed,
                         encode_manifest, manifest_of)
from feeds.snapshot import Document, Snapshot, gzip_only, plain_body

PREFIX = "seedfeeds:"
LEASE, MANIFEST, VERSION = PREFIX + "lease", PREFIX + "manifest", PREFIX + "version"
CHANNEL = PREFIX + "versions"
GRACE_MS = 60_000  # how long a blob outlives the last version that used it
BATCH = 128  # keys per pipelined round trip: a cold fetch of a large site never holds megabytes twice over

# Take the lease if it is free, or extend it if it is ours: 1 if we hold it now.
HOLD = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""
RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
# Manifest and version in one step, announced, only by the lease holder: 1 if written.
COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[3])
return 1
"""


class StoreError(RuntimeError):
    """The store holds something other than what the builder wrote (missing or corrupt)."""


class LeaseLost(RuntimeError):
    """A publish was refused: this process no longer holds the builder lease."""


class RedisStore:
    """One Redis database holding the current snapshot, as the builder wrote it.

    Every method may raise `redis.RedisError` (unreachable, timed out) or
    `StoreError`; callers keep what they have and try again later.
    """

    def __init__(self, url: str, holder: str, timeout: float = 5.0) -> None:
        # One quick retry: a pooled connection may have died with a restarted Redis.
        self.redis = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                          retry=Retry(NoBackoff(), 1), health_check_interval=30)
        self.url = url
        self.holder = holder
        self._hold = self.redis.register_script(HOLD)
        self._release = self.redis.register_script(RELEASE)
        self._commit = self.redis.register_script(COMMIT)
        # What this process last published or fetched: the version, its blob keys,
        # and its feeds by digest (so an unchanged feed is neither encoded nor fetched again).
        self._version: str | None = None
        self._keys: frozenset[str] = frozenset()
        self._feeds: dict[str, Feed] = {}
        self._digests: dict[str, tuple[Feed, str]] = {}  # feed key -> (feed object, digest)
        self._manifest: tuple[Snapshot, str, bytes] | None = None  # (snapshot, version, manifest) last encoded
        self._lock = threading.Lock()  # publish and fetch share the state above

    # --- the lease

    def hold_lease(self, lease_ms: int) -> bool:
        """Take the builder lease or extend our own; True if this process holds it for `lease_ms` more."""
        return self._hold(keys=[LEASE], args=[self.holder, lease_ms]) == 1

    def release_lease(self) -> None:
        """Give the lease up (if ours), so a successor need not wait for it to expire."""
        self._release(keys=[LEASE], args=[self.holder])

    # --- the builder's side

    def publish(self, snapshot: Snapshot) -> str:
        """Make `snapshot` the store's current version and return that version.

        Writes only blobs the store lacks: none when Redis already holds this
        version, everything when Redis lost its data. Raises `LeaseLost` if
        another process holds the lease.
        """
        with self._lock:
            version, manifest = self._encode(snapshot)
            blobs = self._blobs(snapshot)
            current = self._get_version()
            if current != version:
                # Keys of the version we published or fetched last are there and kept; check the rest.
                known = self._keys if current is not None and current == self._version else None
                replaced = known if known is not None else self._keys_of_current(current)
                self._write_missing({key: make for key, make in blobs.items() if known is None or key not in known})
                if self._commit(keys=[LEASE, MANIFEST, VERSION], args=[self.holder, manifest, version, CHANNEL]) != 1:
                    raise LeaseLost("the builder lease is no longer ours (it expired, or Redis lost it)")
                self._expire(replaced - blobs.keys())
            self._version, self._keys = version, frozenset(blobs)
            self._feeds = {self._digests[key][1]: feed for key, feed in snapshot.feeds.items()}
            self._digests = {key: self._digests[key] for key in snapshot.feeds}
            return version

    def _encode(self, snapshot: Snapshot) -> tuple[str, bytes]:
        if self._manifest is None or self._manifest[0] is not snapshot:
            digests = {key: self._feed_digest(feed) for key, feed in snapshot.feeds.items()}
            manifest = encode_manifest(manifest_of(snapshot, digests))
            self._manifest = (snapshot, digest(manifest), manifest)
        return self._manifest[1], self._manifest[2]

    def _feed_digest(self, feed: Feed) -> str:
        known = self._digests.get(feed.key)
        if known is None or known[0] is not feed:  # the builder keeps an unchanged feed as the same object
            known = (feed, digest(encode_feed(feed)))
            self._digests[feed.key] = known
        return known[1]

    def _blobs(self, snapshot: Snapshot) -> dict[str, Callable[[], bytes]]:
        """Every blob key of `snapshot`, with how to make its value (made only if missing)."""
        blobs: dict[str, Callable[[], bytes]] = {}
        for doc in snapshot.documents.values():
            blobs[_doc_key(doc.etag)] = lambda doc=doc: plain_body(doc)
            blobs[_doc_key(doc.gzip_etag)] = lambda doc=doc: doc.gzip_body
        for key, feed in snapshot.feeds.items():
            blobs[_feed_key(self._digests[key][1])] = lambda feed=feed: encode_feed(feed)
        return blobs

    def _write_missing(self, blobs: Mapping[str, Callable[[], bytes]]) -> None:
        for keys in _batches(list(blobs)):
            pipe = self.redis.pipeline(transaction=False)
            for key in keys:
                pipe.exists(key)
                pipe.persist(key)  # a blob dropped by an earlier version is about to expire: keep it
            found = pipe.execute()[::2]
            pipe = self.redis.pipeline(transaction=False)
            for key, present in zip(keys, found):
                if not present:
                    pipe.set(key, blobs[key]())
            pipe.execute()

    def _keys_of_current(self, version: str | None) -> frozenset[str]:
        """Blob keys of the version in the store, which someone else published (to expire once replaced)."""
        raw = self.redis.get(MANIFEST) if version is not None else None
        try:
            return frozenset(_blob_keys(decode_manifest(raw))) if raw is not None else frozenset()
        except CodecError:
            return frozenset()

    def _expire(self, keys: frozenset[str]) -> None:
        for batch in _batches(sorted(keys)):
            pipe = self.redis.pipeline(transaction=False)
            for key in batch:
                pipe.pexpire(key, GRACE_MS)
            pipe.execute()

    # --- the servers' side

    def version(self) -> str | None:
        """The current version, or None when the store holds no snapshot (never written, or lost)."""
        return self._get_version()

    def fetch(self, have: Snapshot | None) -> tuple[str, Snapshot] | None:
        """The current version and its snapshot, or None if the store holds none.

        Documents and feeds already in `have` (same ETag, same digest) are
        reused as they are, so unchanged documents stay the very same objects.
        """
        with self._lock:
            version, raw = self.redis.mget(VERSION, MANIFEST)
            if version is None or raw is None:
                return None
            version = version.decode("ascii", "replace")
            try:
                manifest = decode_manifest(raw)
            except CodecError as exc:
                raise StoreError(f"manifest of version {version}: {exc}") from None
            if "/" not in manifest.documents:
                raise StoreError(f"manifest of version {version} has no directory page")
            documents = self._documents(manifest.documents, have.documents if have else {})
            feeds = self._fetch_feeds(manifest.feeds)
            self._version, self._keys = version, frozenset(_blob_keys(manifest))
        return version, Snapshot(
            documents=MappingProxyType(documents), feeds=MappingProxyType(feeds),
            diagnostics=manifest.diagnostics, left_out=manifest.left_out, entry_count=manifest.entry_count,
            file_count=manifest.file_count, newest=manifest.newest,
            pages=MappingProxyType({path: documents[path] for path in manifest.pages}))

    def _documents(self, infos: Mapping[str, DocumentInfo], have: Mapping[str, Document]) -> dict[str, Document]:
        by_etag = {doc.etag: doc for doc in have.values()}
        wanted = {info.etag: info.gzip_etag for info in infos.values() if info.etag not in by_etag}
        bodies = self._get_many([_doc_key(etag) for etag in wanted])
        gzipped = self._get_many([_doc_key(gzip_etag) for gzip_etag in wanted.values()])
        fetched = {}
        for etag, body, gzip_body in zip(wanted, bodies, gzipped):
            fetched[etag] = _checked(etag, body, gzip_body)
        documents = {}
        for path, info in infos.items():
            doc = by_etag.get(info.etag)
            if doc is None:
                doc = gzip_only(Document(*fetched[info.etag], info.media_type, info.etag, info.gzip_etag,
                                         info.last_modified, info.immutable, info.links))
            elif (doc.media_type, doc.gzip_etag, doc.last_modified, doc.immutable, doc.links) != (
                    info.media_type, info.gzip_etag, info.last_modified, info.immutable, info.links):
                doc = replace(doc, media_type=info.media_type, gzip_etag=info.gzip_etag,
                              last_modified=info.last_modified, immutable=info.immutable, links=info.links)
            documents[path] = doc  # unchanged: the same object, which keeps its prepared answers
        return documents

    def _fetch_feeds(self, digests: Mapping[str, str]) -> dict[str, Feed]:
        wanted = sorted({d for d in digests.values() if d not in self._feeds})
        decoded: dict[str, Feed] = {}
        shared: dict = {}  # one object per distinct entry: an entry sits in several feeds
        for wanted_digest, raw in zip(wanted, self._get_many([_feed_key(d) for d in wanted])):
            if raw is None or digest(raw) != wanted_digest:
                raise StoreError(f"feed {wanted_digest} is {'missing' if raw is None else 'corrupt'} in the store")
            try:
                feed = decode_feed(raw)
            except CodecError as exc:
                raise StoreError(f"feed {wanted_digest}: {exc}") from None
            decoded[wanted_digest] = replace(feed, entries=tuple(shared.setdefault(e, e) for e in feed.entries))
        known = {**self._feeds, **decoded}
        self._feeds = {d: known[d] for d in digests.values()}
        return {key: known[d] for key, d in digests.items()}

    def _get_many(self, keys: list[str]) -> list[bytes | None]:
        values: list[bytes | None] = []
        for batch in _batches(keys):
            values.extend(self.redis.mget(batch))
        return values

    def _get_version(self) -> str | None:
        raw = self.redis.get(VERSION)
        return raw.decode("ascii", "replace") if raw is not None else None

    def subscribe(self) -> "redis.client.PubSub":
        """A subscription to version announcements (a connection of its own)."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(CHANNEL)
        return pubsub

    def close(self) -> None:
        self.redis.close()


def _checked(etag: str, body: bytes | None, gzip_body: bytes | None) -> tuple[bytes, bytes]:
    """(body, gzip body), once the body hashes to its ETag and the gzip body inflates to it."""
    if body is None or gzip_body is None:
        raise StoreError(f"document {etag} is missing from the store")
    if digest(body) != etag:
        raise StoreError(f"document {etag} is corrupt in the store")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
    try:
        # Inflate at most one byte more than the body: a gzip bomb stops there.
        same = inflater.decompress(gzip_body, len(body) + 1) == body and inflater.eof and not inflater.unused_data
    except zlib.error:
        same = False
    if not same:
        raise StoreError(f"gzip body of document {etag} is corrupt in the store")
    return body, gzip_body


def _doc_key(tag: str) -> str:
    return f"{PREFIX}doc:{tag}"


def _feed_key(feed_digest: str) -> str:
    return f"{PREFIX}feed:{feed_digest}"


def _blob_keys(manifest: Manifest) -> Iterator[str]:
    for info in manifest.documents.values():
        yield _doc_key(info.etag)
        yield _doc_key(info.gzip_etag)
    for feed_digest in manifest.feeds.values():
        yield _feed_key(feed_digest)


def _batches(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), BATCH):
        yield items[start:start + BATCH]
