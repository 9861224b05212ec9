"""Feeds, entries and snapshot listings as JSON bytes, and back.

What serving processes share through a store: JSON, never pickle, so whoever
can write the store cannot make a reader run code. `decode_feed(encode_feed(f))`
equals `f` and renders to the same bytes. Decoding checks every field's type
and refuses unknown or missing keys with `CodecError`; equal input gives equal
bytes. A schema below names each dataclass field, and importing this module
fails if a dataclass gains a field the schema lacks.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, fields
from datetime import datetime
from types import MappingProxyType
from typing import Any, Callable, Mapping

from .catalog import Feed
from .entries import Author, Entry, Topic
from .fields import Diagnostic
from .records import Image
from .snapshot import Snapshot

FORMAT = 1  # bump when the layout changes: a reader refuses a format it does not know


class CodecError(ValueError):
    """The bytes are not what the codec writes (corrupt, foreign, or another format)."""


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """A document without its bytes: what a reader needs to fetch, check and date it."""

    media_type: str
    etag: str
    gzip_etag: str
    last_modified: datetime
    immutable: bool
    links: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """A snapshot without bytes or entries: each document's metadata, each feed's
    digest (in directory order), and the counts `/` and `/healthz` show."""

    documents: Mapping[str, DocumentInfo]
    pages: tuple[str, ...]  # paths of the documents that are not feeds
    feeds: Mapping[str, str]
    diagnostics: tuple[Diagnostic, ...]
    left_out: Mapping[str, int]
    entry_count: int
    file_count: int
    newest: datetime


def digest(data: bytes) -> str:
    """The content digest used for ETags and store keys: 32 hex digits of SHA-256."""
    return hashlib.sha256(data).hexdigest()[:32]


# --- kinds: how one value is written to JSON and checked on the way back


@dataclass(frozen=True, slots=True)
class _Kind:
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _plain(types: tuple[type, ...], expected: str) -> _Kind:
    def decode(value: Any) -> Any:
        # bool is an int to isinstance; no field here takes one for the other.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise CodecError(f"expected {expected}, got {type(value).__name__}")
        return value

    return _Kind(lambda value: value, decode)


def _time(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(_TEXT.decode(value))
    except ValueError:
        raise CodecError(f"expected an ISO 8601 date, got {value!r:.40}") from None
    if moment.tzinfo is None:
        raise CodecError(f"expected a date with a time zone, got {value!r:.40}")
    return moment


def _optional(kind: _Kind) -> _Kind:
    return _Kind(lambda v: None if v is None else kind.encode(v),
                 lambda v: None if v is None else kind.decode(v))


def _many(kind: _Kind) -> _Kind:
    def decode(value: Any) -> tuple:
        if not isinstance(value, list):
            raise CodecError(f"expected a list, got {type(value).__name__}")
        return tuple(kind.decode(v) for v in value)

    return _Kind(lambda values: [kind.encode(v) for v in values], decode)


def _mapping(kind: _Kind) -> _Kind:
    def decode(value: Any) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise CodecError(f"expected an object, got {type(value).__name__}")
        return MappingProxyType({key: kind.decode(v) for key, v in value.items()})

    return _Kind(lambda values: {key: kind.encode(v) for key, v in values.items()}, decode)


def _record(cls: type, **schema: _Kind) -> _Kind:
    names = [f.name for f in fields(cls)]
    if sorted(names) != sorted(schema):  # a field added to the dataclass must be added here too
        raise TypeError(f"codec schema of {cls.__name__} names {sorted(schema)}, the class has {sorted(names)}")

    def encode(value: Any) -> dict[str, Any]:
        return {name: kind.encode(getattr(value, name)) for name, kind in schema.items()}

    def decode(value: Any) -> Any:
        if not isinstance(value, dict) or value.keys() != schema.keys():
            raise CodecError(f"expected a {cls.__name__} object with keys {', '.join(schema)}")
        try:
            return cls(**{name: kind.decode(value[name]) for name, kind in schema.items()})
        except CodecError as exc:
            raise CodecError(f"{cls.__name__}: {exc}") from None

    return _Kind(encode, decode)


_TEXT = _plain((str,), "a string")


def _matching(pattern: str, expected: str) -> _Kind:
    """Text that must match `pattern`: values that end up in HTTP headers."""
    check = re.compile(pattern).fullmatch

    def decode(value: Any) -> str:
        if not check(_TEXT.decode(value)):
            raise CodecError(f"expected {expected}, got {value!r:.40}")
        return value

    return _Kind(lambda value: value, decode)


# RFC 9110 section 8.8.3: an entity tag's characters; a media type is one header line of printable ASCII.
_TAG = _matching(r"[\x21\x23-\x7e]{1,200}", "an entity tag")
_MEDIA_TYPE = _matching(r"[\x20-\x7e]{1,200}", "a media type")
_LINKS = _matching(r"[\x20-\x7e]{0,4000}", "a Link header value")
_INT = _plain((int,), "an integer")
_BOOL = _plain((bool,), "true or false")
_TIME = _Kind(lambda moment: moment.isoformat(), _time)
# Entry.content is UTF-8 bytes (see entries.py); JSON carries it as text.
_UTF8 = _Kind(lambda data: data.decode("utf-8"), lambda v: _TEXT.decode(v).encode("utf-8"))
_OPT_TEXT = _optional(_TEXT)

_IMAGE = _record(Image, url=_TEXT, width=_optional(_INT), height=_optional(_INT), title=_OPT_TEXT)
_ENTRY = _record(
    Entry, id=_TEXT, file=_TEXT, link=_TEXT, title=_TEXT, summary=_OPT_TEXT, content=_UTF8,
    published=_TIME, updated=_TIME, author=_optional(_record(Author, name=_TEXT, uri=_OPT_TEXT)),
    provider_domain=_OPT_TEXT, provider_icon=_OPT_TEXT, topics=_many(_record(Topic, label=_TEXT, slug=_TEXT)),
    category=_OPT_TEXT, type=_OPT_TEXT, locale=_OPT_TEXT, quality=_optional(_INT), is_published=_BOOL,
    image=_optional(_IMAGE),
)
_FEED = _record(
    Feed, key=_TEXT, kind=_TEXT, title=_TEXT, subtitle=_TEXT, language=_TEXT, home_url=_TEXT,
    url_stem=_TEXT, topics_stem=_TEXT, icon=_OPT_TEXT, logo=_OPT_TEXT, publisher=_TEXT, ttl=_INT,
    hubs=_many(_TEXT), entries=_many(_ENTRY), total=_INT, updated=_TIME, size=_INT, older=_many(_ENTRY),
    page=_optional(_INT), pages=_INT, current_stem=_OPT_TEXT,
)
_DIAGNOSTIC = _record(Diagnostic, file=_TEXT, field=_TEXT, severity=_TEXT, message=_TEXT, stale=_BOOL)
_MANIFEST = _record(
    Manifest,
    documents=_mapping(_record(DocumentInfo, media_type=_MEDIA_TYPE, etag=_TAG, gzip_etag=_TAG,
                                        last_modified=_TIME, immutable=_BOOL, links=_LINKS)),
    pages=_many(_TEXT), feeds=_mapping(_TEXT), diagnostics=_many(_DIAGNOSTIC), left_out=_mapping(_INT),
    entry_count=_INT, file_count=_INT, newest=_TIME,
)


# --- the public functions


def encode_feed(feed: Feed) -> bytes:
    """A feed and all its entries as compact JSON bytes."""
    return _dumps("feed", _FEED.encode(feed))


def decode_feed(data: bytes) -> Feed:
    """The feed `encode_feed` wrote; `CodecError` for anything else."""
    return _loads("feed", _FEED, data)


def manifest_of(snapshot: Snapshot, feed_digests: Mapping[str, str]) -> Manifest:
    """The manifest of `snapshot`, given the digest of each feed's encoding."""
    return Manifest(
        documents={path: DocumentInfo(doc.media_type, doc.etag, doc.gzip_etag, doc.last_modified,
                                      doc.immutable, doc.links)
                   for path, doc in snapshot.documents.items()},
        pages=tuple(snapshot.pages), feeds={key: feed_digests[key] for key in snapshot.feeds},
        diagnostics=snapshot.diagnostics, left_out=snapshot.left_out, entry_count=snapshot.entry_count,
        file_count=snapshot.file_count, newest=snapshot.newest,
    )


def encode_manifest(manifest: Manifest) -> bytes:
    return _dumps("manifest", _MANIFEST.encode(manifest))


def decode_manifest(data: bytes) -> Manifest:
    """The manifest `encode_manifest` wrote; `CodecError` for anything else."""
    return _loads("manifest", _MANIFEST, data)


def _dumps(what: str, value: Any) -> bytes:
    # ASCII: a lone surrogate in a str must not make encoding fail.
    return json.dumps({"format": FORMAT, what: value}, separators=(",", ":")).encode("ascii")


def _loads(what: str, kind: _Kind, data: bytes) -> Any:
    try:
        outer = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise CodecError(f"not JSON: {exc}") from None
    if not isinstance(outer, dict) or outer.keys() != {"format", what}:
        raise CodecError(f"expected a {what} object")
    if outer["format"] != FORMAT:
        raise CodecError(f"format {outer['format']!r:.20}, this reader knows {FORMAT}")
    return kind.decode(outer[what])
