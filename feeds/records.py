"""The seed folder -> `Record`s: each file becomes a record or a diagnostic.

A record holds the seed's fields typed and checked (dates aware, URLs
absolute http(s)) but its text not yet sanitized; `entries.py` does that.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import struct
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import datetime
from pathlib import Path
from functools import lru_cache
from operator import attrgetter, methodcaller
from typing import Any, BinaryIO, Callable, Iterable, NamedTuple

from .config import Limits
from .fields import Diagnostic, Fields, Unusable
from .front_matter import (FrontMatterError, SeedHandler, has_front_matter, nesting_depth, pop_duplicate_key,
                           split_seed)
from .urls import INSIDE, UNDECODABLE, http_url, inside_networks, provider_domain, why_unusable


_SUFFIX_GLOB = re.compile(r"\*(\.[^*?\[\]/]+)")  # "*.txt": any name ending in ".txt"
_STAMP = struct.Struct("=qqqQ")  # size, mtime_ns, ctime_ns, inode
_2_63, _2_64 = 1 << 63, 1 << 64


class SeedFile(NamedTuple):
    """A file found in the seed folder; its stat tells whether it changed.
    (A named tuple: a changed folder's refresh makes one per file, and a tuple
    is made in a third of the time of a frozen dataclass. Its last four fields,
    `seed[2:]`, are the stamp a refresh compares; the times are only compared,
    never shown.)"""

    rel: str
    path: str | os.PathLike
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int


def pickled_by_fields(cls: type) -> type:
    """A frozen slotted dataclass pickled as its constructor's arguments. Its own
    pickling (dataclasses' __getstate__/__setstate__ for slots) looks up the fields
    on every call: unpickling an entry took 3x longer (`feeds.cold` pickles stubs,
    and entries the ledger may renumber)."""
    values = attrgetter(*(f.name for f in dataclass_fields(cls)))

    def __reduce__(self):
        return cls, values(self)

    cls.__reduce__ = __reduce__
    return cls


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Image:
    url: str
    width: int | None = None
    height: int | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Provider:
    name: str | None
    domain: str | None
    images: tuple[Image, ...] = ()


@dataclass(frozen=True, slots=True)
class Related:
    title: str
    url: str | None
    excerpt: str | None
    published: datetime | None
    provider: Provider | None
    quality: int | None


@dataclass(frozen=True, slots=True)
class Record:
    """One usable seed file, typed; text still as the author wrote it."""

    file: str
    title: str
    url: str  # originalUrl, else webUrl
    web_url: str | None
    published: datetime
    updated: datetime
    excerpt: str | None
    category: str | None
    type: str | None
    locale: str | None
    quality: int | None
    heat: int | None
    is_published: bool
    provider: Provider | None
    topics: tuple[str, ...]
    tags: tuple[str, ...]
    images: tuple[Image, ...]
    related: tuple[Related, ...]
    body: str


@dataclass(frozen=True, slots=True)
class Listing:
    """What one scan of the seed folder found, kept compact: for each folder
    with seed files, one string (the folder's path relative to the seed folder,
    then its seed files' names, NUL-separated, in the order it listed them), and
    each file's stamp (size, mtime_ns, ctime_ns, inode), packed in one buffer.

    A refresh compares its listing with the last one (`same_as`) without making
    an object per file or touching any of the last scan's: with an object per
    file (made, looked up in a dict, dropped) a no-change refresh cost 3.8 us per
    seed at 10k and 5.0 at 100k, the stat calls themselves 2.4 and 2.5."""

    root: str
    folders: list[str]
    stamps: bytearray
    notes: list[Diagnostic]  # sorted
    unlisted: tuple[str, ...] = ()  # folders that could not be listed, as prefixes ("a/b/"; "" for the root)

    def __len__(self) -> int:
        return len(self.stamps) // _STAMP.size

    def key(self) -> tuple[tuple[str, ...], bytes]:
        """What `same_as` compares a later listing with."""
        return tuple(self.folders), bytes(self.stamps)

    def same_as(self, key: tuple[tuple[str, ...], bytes]) -> bool:
        """The same files, with the same stamps, listed in the same order."""
        return self.stamps == key[1] and tuple(self.folders) == key[0]

    def files(self) -> list[SeedFile]:
        """A `SeedFile` for each file, in the listing's order."""
        rels: list[str] = []
        for folder in self.folders:
            prefix, *names = folder.split("\0")
            rels += [prefix + name for name in names]
        join = os.path.join
        return [SeedFile(rel, join(self.root, rel), *stamp) for rel, stamp in zip(rels, _STAMP.iter_unpack(self.stamps))]


def list_folder(root: Path, globs: Iterable[str]) -> Listing:
    """Every seed file under `root` (recursively, hidden names skipped), in the
    order the folders list them (stable while nothing changes).

    Symlinks that lead outside `root` are not followed, and are reported; so are
    names that are not valid UTF-8 (see `_undecodable_dropped`). This runs on
    every refresh, so it only lists and stats: one syscall per file.
    """
    matches = name_matcher(globs)
    root = root.resolve()
    if not root.is_dir():
        # Raise rather than report "no files": an unmounted folder must not empty the feeds.
        raise FileNotFoundError(f"seed folder {root} is missing")
    folders: list[str] = []
    stamps = bytearray()
    notes: list[Diagnostic] = []
    unlisted: list[str] = []
    pending = [(str(root), "")]
    while pending:
        folder, prefix = pending.pop()
        subfolders, names, noted, packed = [], [prefix], len(notes), len(stamps)
        try:
            # Each entry is dropped as soon as it is looked at: kept in a list, 20k of
            # them (a folder) cost 15 % more than the stat calls, in fresh memory.
            with os.scandir(folder) as listing:
                for item in listing:
                    name = item.name
                    if name[0] == ".":
                        continue
                    if item.is_dir(follow_symlinks=False):
                        if refused := undecodable_name(f"{prefix}{name}/"):  # every file in it would carry the name
                            notes.append(refused)
                        else:
                            subfolders.append((item.path, f"{prefix}{name}/"))
                    elif item.is_symlink() and not _inside(item.path, root):
                        kind = "folder" if item.is_dir() else "file"
                        notes.append(Diagnostic(shown_name(prefix + name), "(file)", "warning",
                                                f"symlinked {kind} outside the seed folder not followed"))
                    elif matches(name):
                        stamp = _packed_stamp(item, prefix, notes)
                        if stamp is not None:
                            names.append(name)
                            stamps += stamp
        except OSError as exc:  # the folder as a whole: nothing of it is listed
            del notes[noted:], stamps[packed:]
            notes.append(Diagnostic(prefix or ".", "(file)", "error", f"cannot list folder: {exc.strerror}; "
                                    "what it held before keeps publishing"))
            unlisted.append(prefix)
            continue
        if len(names) > 1:
            listed = "\0".join(names)  # NUL is in no file name
            if not listed.isascii() and UNDECODABLE.search(listed):  # isascii: O(1), a flag of the str
                listed = _undecodable_dropped(names, stamps, packed, notes)
            if listed:
                folders.append(listed)
        pending.extend(subfolders)
    return Listing(str(root), folders, stamps, sorted(notes, key=lambda d: (d.file, d.field, d.message)),
                   tuple(unlisted))


def scan_folder(root: Path, globs: Iterable[str]) -> tuple[list[SeedFile], list[Diagnostic]]:
    """Every seed file under `root`, in `listing_order`; and what the scan noticed."""
    listing = list_folder(root, globs)
    return sorted(listing.files(), key=listing_order), listing.notes


def name_matcher(globs: Iterable[str]) -> Callable[[str], object]:
    """Whether a file name matches one of `globs` (fnmatch patterns, case-sensitive
    as on POSIX). When each is "*.<suffix>", the usual case, a suffix test: a scan
    asks once per file, and `str.endswith` costs half what a regular expression does."""
    globs = tuple(globs)
    suffixes = tuple(match[1] for match in map(_SUFFIX_GLOB.fullmatch, globs) if match)
    if len(suffixes) == len(globs):
        return methodcaller("endswith", suffixes)  # called from C: no Python frame per file
    return re.compile("|".join(fnmatch.translate(g) for g in globs)).match


def listing_order(seed: SeedFile) -> tuple[list[str], str]:
    """Folder by folder, each folder's files by name before its subfolders'."""
    *folders, name = seed.rel.split("/")
    return folders, name


def _undecodable_dropped(names: list[str], stamps: bytearray, packed: int, notes: list[Diagnostic]) -> str:
    """One folder's listing (`names`: its prefix, then its files, whose stamps
    start at `packed`) without the files whose names are not valid UTF-8, each
    reported instead; "" if none is left.

    Such a name cannot be stored (the ledger), printed (the directory page,
    `check --json`) or published as it is, and a name shown differently would
    not be the file's: the operator renames it. Checked once per folder, on the
    joined names, so a folder of ASCII names costs nothing more."""
    prefix, kept, kept_stamps = names[0], [names[0]], bytearray()
    for i, name in enumerate(names[1:]):
        if refused := undecodable_name(prefix + name):
            notes.append(refused)
        else:
            kept.append(name)
            at = packed + i * _STAMP.size
            kept_stamps += stamps[at:at + _STAMP.size]
    stamps[packed:] = kept_stamps
    return "\0".join(kept) if len(kept) > 1 else ""


def shown_name(name: str) -> str:
    """A file name as it can be shown and stored: each byte that was not UTF-8 as U+FFFD."""
    return UNDECODABLE.sub("\ufffd", name)


def undecodable_name(name: str) -> Diagnostic | None:
    """The error that keeps a file (or folder) whose name is not valid UTF-8 from being
    read, or None for a valid name."""
    if not UNDECODABLE.search(name):
        return None
    return Diagnostic(shown_name(name), "(file)", "error", "name is not valid UTF-8 (shown with \ufffd"
                      " for each invalid byte); not read: rename it to valid UTF-8")


def _inside(path: str, root: Path) -> bool:
    return Path(path).resolve().is_relative_to(root)


def _packed_stamp(item: os.DirEntry, prefix: str, notes: list[Diagnostic]) -> bytes | None:
    """The file's stamp, packed; None (and a note) if it cannot be read as a seed."""
    try:
        st = item.stat()
    except OSError as exc:  # not the folder's fault: caught here, not by list_folder
        notes.append(Diagnostic(shown_name(prefix + item.name), "(file)", "error", f"cannot stat: {exc.strerror}"))
        return None
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block the reader forever
        notes.append(Diagnostic(shown_name(prefix + item.name), "(file)", "error", "not a regular file; not read"))
        return None
    try:
        return _STAMP.pack(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    except struct.error:  # a time before 1678 or after 2262 in ns: wrapped, it still changes with the file
        return _STAMP.pack(st.st_size, _wrapped(st.st_mtime_ns), _wrapped(st.st_ctime_ns), st.st_ino)


def _wrapped(value: int) -> int:
    return (value + _2_63) % _2_64 - _2_63


def read_record(seed: SeedFile, limits: Limits = Limits()) -> tuple[Record | None, list[Diagnostic]]:
    """Read and check one seed file: a record (maybe with warnings) or an error."""
    warnings: list[Diagnostic] = []
    try:
        text = decode(_read_bytes(seed.path, limits.file_bytes))
        if not has_front_matter(text):
            raise Unusable("(front matter)", "no front matter: the file must open with a '---' line")
        data, body = split_seed(text, _handler(limits.yaml_alias_events))
        duplicate = pop_duplicate_key(data)
        if duplicate is not None:
            warnings.append(Diagnostic(seed.rel, "(yaml)", "warning",
                                       f"key {duplicate} given twice in one mapping; the last value is used"))
        depth = nesting_depth(data)
        if depth > limits.yaml_depth:
            raise Unusable("(yaml)", f"nested {depth} levels deep; the limit is {limits.yaml_depth}")
        if has_front_matter(body):
            rest = _after_front_matter(body)
            if not data and rest is None:  # what split_seed left is the one block, unclosed
                raise Unusable("(front matter)", "never closed: no '---' line ends the front matter")
            warnings.append(Diagnostic(seed.rel, "(front matter)", "warning",
                                       "a second front-matter block follows the first; it is ignored"))
            body = body if rest is None else rest
    except Unusable as exc:
        return None, [Diagnostic(seed.rel, exc.field, "error", exc.message)]
    except OSError as exc:
        return None, [Diagnostic(seed.rel, "(file)", "error", f"cannot read: {exc.strerror or exc}")]
    except (FrontMatterError, RecursionError) as exc:
        return None, [Diagnostic(seed.rel, "(yaml)", "error", _one_line(exc))]
    fields = Fields(seed.rel, data, warnings=warnings, max_items=limits.list_items)
    try:
        record = to_record(fields, body, limits)
    except Unusable as exc:
        return None, [*fields.warnings, Diagnostic(seed.rel, exc.field, "error", exc.message)]
    return record, fields.warnings


@lru_cache(maxsize=8)
def _handler(max_alias_events: int) -> SeedHandler:
    return SeedHandler(max_alias_events)


def prefetch(seeds: Iterable[SeedFile]) -> None:
    """Ask the kernel to start reading these files into the page cache
    (POSIX_FADV_WILLNEED), without waiting for them. A file that cannot be opened
    is left for its reader to report; O_NONBLOCK: a file turned into a FIFO since
    the scan does not block the opening.

    Seed files left unread for a while are not in memory (the kernel evicts cold
    page cache; on these VMs, after a few seconds): read one after the other,
    each read waits for the disk. A 10k cold build took 0.2-0.5 s longer with its
    seeds out of the page cache than with them in."""
    for seed in seeds:
        try:
            fd = os.open(seed.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


def _read_bytes(path: str | os.PathLike, limit: int) -> bytes:
    """The file's bytes, refusing files over `limit` without reading them whole.

    The read asks for the size the file has (one byte more, to see growth), not
    for the limit: a buffer of `limit` bytes is a fresh mmap, page faults and a
    munmap for every file, 16 us of each 24 a 5 kB seed took to read."""
    with open(path, "rb", buffering=0) as handle:
        wanted = min(os.fstat(handle.fileno()).st_size, limit) + 1
        raw = _read_up_to(handle, wanted)
        if len(raw) == wanted and wanted <= limit:  # it grew since the stat (or has no size: a pipe)
            raw += _read_up_to(handle, limit + 1 - len(raw))
    if len(raw) > limit:
        raise Unusable("(file)", f"larger than the {limit}-byte limit (limits.file_bytes)")
    return raw


def _read_up_to(handle: BinaryIO, count: int) -> bytes:
    """Up to `count` more bytes: fewer only at the end of the file (one read of an
    unbuffered file may return less: a pipe, a FUSE or network file system)."""
    chunks = []
    while count > 0:
        chunk = handle.read(count)
        if not chunk:
            break
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def _after_front_matter(text: str) -> str | None:
    """The text after the front matter it opens with, or None if no line closes it."""
    parts = SeedHandler.FM_BOUNDARY.split(text.lstrip(), 2)
    return parts[2].strip() if len(parts) == 3 else None


def decode(raw: bytes) -> str:
    """Seed bytes -> text: UTF-8 (BOM optional) or UTF-16 with a BOM."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise Unusable("(encoding)", f"not valid {encoding.upper()} at byte {exc.start}") from None
    if "\x00" in text:
        raise Unusable("(encoding)", "contains NUL bytes: a binary file?")
    return text


def to_record(f: Fields, body: str, limits: Limits = Limits()) -> Record:
    """The typed record of one front-matter mapping; raises `Unusable`."""
    title = _cut(f, "title", f.text("title", required=True), limits.title_chars)
    url, web_url = _article_urls(f)
    published = f.date("publishedDateTime", required=True)
    updated = f.date("updatedDateTime") or published
    if updated < published:
        f.warn("updatedDateTime", "earlier than publishedDateTime; publishedDateTime used")
        updated = published
    return Record(
        file=f.file, title=title, url=url, web_url=web_url,
        published=published, updated=updated,
        excerpt=_cut(f, "excerpt", f.text("excerpt"), limits.excerpt_chars), category=f.text("category"), type=f.text("type"),
        locale=f.text("locale"), quality=f.integer("quality"), heat=f.integer("heat"),
        is_published=f.boolean("published", default=True),
        provider=_provider(f, "provider"),
        topics=_texts(f, "topics"), tags=_texts(f, "tags"),
        images=_images(f, "images"), related=_related(f),
        body=body,
    )


def _url(f: Fields, key: str) -> str | None:
    raw = f.text(key)
    if raw is None:
        return None
    url = http_url(raw)
    if url is None:
        f.warn(key, f"{why_unusable(raw)}: {raw[:100]!r}; ignored")
    return url


def _article_urls(f: Fields) -> tuple[str, str | None]:
    raw = {key: f.text(key) for key in ("originalUrl", "webUrl")}
    checked = {key: http_url(value) if value else None for key, value in raw.items()}
    url = checked["originalUrl"] or checked["webUrl"]
    if url is None:
        bad = "originalUrl" if raw["originalUrl"] else "webUrl"
        reason = f"{why_unusable(raw[bad])}: {raw[bad][:100]!r}" if raw[bad] else "is missing"
        raise Unusable(bad, f"{reason} (an http(s) originalUrl or webUrl is required)")
    for key, value in raw.items():
        if value and checked[key] is None:
            f.warn(key, f"not an absolute http(s) URL: {value[:100]!r}; ignored")
    return url, checked["webUrl"]


def _texts(f: Fields, key: str) -> tuple[str, ...]:
    out = []
    for i, item in enumerate(f.items(key)):
        text = f.nested({"item": item}, f"{key}[{i}].").text("item")
        if text is not None and text.strip():
            out.append(text)
    return tuple(out)


def _mappings(f: Fields, key: str) -> list[tuple[int, Fields]]:
    out = []
    for i, item in enumerate(f.items(key)):
        if isinstance(item, dict):
            out.append((i, f.nested(item, f"{key}[{i}].")))
        else:
            f.warn(f"{key}[{i}]", f"expected a mapping, got a {type(item).__name__}; ignored")
    return out


def _images(f: Fields, key: str) -> tuple[Image, ...]:
    images = []
    for _, g in _mappings(f, key):
        url = _url(g, "url")
        if url:
            width, height = g.integer("width"), g.integer("height")
            images.append(Image(url, _positive(width), _positive(height), g.text("title")))
    return tuple(images)


def _provider(f: Fields, key: str) -> Provider | None:
    value: Any = f.data.get(key)
    if isinstance(value, str) and value.strip():
        f.warn(key, "expected a mapping {name, domain}; the text is read as the name")
        return Provider(name=str(value), domain=None)
    mapping = f.mapping(key)
    if mapping is None:
        return None
    g = f.nested(mapping, f"{key}.")
    raw_domain = g.text("domain")
    domain = provider_domain(raw_domain) if raw_domain else None
    if raw_domain and domain is None:
        reason = INSIDE if inside_networks(raw_domain) else "not a host name"
        g.warn("domain", f"{reason}: {raw_domain[:100]!r}; ignored")
    return Provider(name=g.text("name"), domain=domain, images=_images(g, "images"))


def _related(f: Fields) -> tuple[Related, ...]:
    out = []
    for _, g in _mappings(f, "related"):
        title = g.text("title")
        if not title:
            g.warn("title", "related item without a title; ignored")
            continue
        out.append(Related(
            title=title, url=_url(g, "webUrl"), excerpt=g.text("excerpt"),
            published=g.date("publishedDateTime"), provider=_provider(g, "provider"),
            quality=g.integer("quality"),
        ))
    return tuple(out)


def _cut(f: Fields, key: str, text: str | None, limit: int) -> str | None:
    """Text cut to `limit` characters (at a space where one is near), with a warning."""
    if text is None or len(text) <= limit:
        return text
    f.warn(key, f"{len(text)} characters; cut to {limit}")
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + "…"


def _positive(value: int | None) -> int | None:
    return value if value is not None and 0 < value < 100_000 else None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]
