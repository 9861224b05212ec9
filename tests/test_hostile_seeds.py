"""Hostile and broken seed files: each gets a diagnostic (file, field, reason)
or is coerced with a warning, never an exception; every other file publishes.

Text fixtures live in tests/seeds/shapes/, named for their flaw; binary,
huge and link fixtures are made here, since they cannot be kept as text."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BUNDLED_SEEDS, FIXTURE_SEEDS, SEEDFEEDS, build_folder, write_config, write_seeds
from feeds import Builder, build_snapshot, load_config
from feeds.builder import SeedFolderEmpty, check_files
from feeds.config import Limits
from feeds.records import SeedFile, read_record

SHAPES = FIXTURE_SEEDS / "shapes"
GOOD = (BUNDLED_SEEDS / "000_3416384145912650.txt").read_bytes()
MINIMAL = '---\ntitle: "{title}"\npublishedDateTime: 2021-01-01T00:00:00Z\noriginalUrl: "https://example.com/{slug}"\n---\n'


def read(path: Path, limits: Limits = Limits()):
    st = path.stat()
    return read_record(SeedFile(path.name, path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino), limits)


def fields_of(notes, severity: str | None = None) -> list[str]:
    return [d.field for d in notes if severity is None or d.severity == severity]


# --- encodings ------------------------------------------------------------


@pytest.mark.parametrize(("name", "raw"), [
    ("utf8_bom.txt", b"\xef\xbb\xbf" + GOOD),
    ("crlf.txt", GOOD.replace(b"\n", b"\r\n")),
    ("utf16_le_bom.txt", GOOD.decode().encode("utf-16")),
    ("utf16_be_bom.txt", b"\xfe\xff" + GOOD.decode().encode("utf-16-be")),
])
def test_supported_encodings_publish(tmp_path, name, raw):
    """UTF-8 with or without BOM, CRLF line endings and UTF-16 with a BOM all read as the same record."""
    path = tmp_path / name
    path.write_bytes(raw)
    record, notes = read(path)
    assert record is not None, notes
    assert record.title == "Human Rights Groups Call On The University Of Miami To Ban Facial Recognition"
    assert record.topics == ("Computer Vision", "AI")


@pytest.mark.parametrize(("name", "raw"), [
    ("invalid_utf8.txt", GOOD[:40] + b"\xff\xfe\xfd" + GOOD[40:]),
    ("nul_bytes.txt", GOOD[:40] + b"\x00\x00" + GOOD[40:]),
    ("binary.txt", bytes(range(256)) * 16),
    ("png_named_txt.txt", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
    ("utf16_no_bom.txt", GOOD.decode().encode("utf-16-le")),
])
def test_undecodable_files_get_an_encoding_diagnostic(tmp_path, name, raw):
    """Invalid bytes, NUL bytes and binary files are reported under (encoding), never raised."""
    path = tmp_path / name
    path.write_bytes(raw)
    record, notes = read(path)
    assert record is None
    assert fields_of(notes, "error") == ["(encoding)"]


# --- wrong shapes -----------------------------------------------------------


@pytest.mark.parametrize(("name", "field"), [
    ("title_is_a_list.txt", "title"),
    ("published_no.txt", "published"),
    ("empty_front_matter.txt", "title"),
])
def test_ambiguous_shapes_are_rejected(name, field):
    """A value whose meaning is unclear makes the file unusable, naming the field."""
    record, notes = read(SHAPES / name)
    assert record is None and fields_of(notes, "error") == [field]


@pytest.mark.parametrize(("name", "check", "warned"), [
    ("title_is_a_number.txt", lambda r: r.title == "2024", ["title"]),
    ("topics_as_one_string.txt", lambda r: r.topics == ("Computer Vision",), ["topics"]),
    ("quality_as_string.txt", lambda r: r.quality == 86 and r.heat is None, ["heat", "quality"]),
    ("published_false_as_string.txt", lambda r: r.is_published is False, ["published"]),
    ("provider_missing.txt", lambda r: r.provider is None, []),
    ("provider_is_a_string.txt", lambda r: r.provider.name == "Reuters" and r.provider.domain is None, ["provider"]),
    ("images_not_a_list.txt", lambda r: [i.url for i in r.images] == ["https://example.com/a.jpg"], ["images"]),
    ("related_not_mappings.txt", lambda r: [x.title for x in r.related] == ["A real one"],
     ["related[0]", "related[1]"]),
    ("two_front_matter_blocks.txt", lambda r: r.title == "The first block wins" and r.body == "The body.",
     ["(front matter)"]),
    ("sexagesimal_and_words.txt", lambda r: (r.title, r.excerpt, r.category, r.topics)
     == ("1:20", "off", "y", ("NO", "yes", "on")), []),
])
def test_unambiguous_shapes_are_coerced_and_say_so(name, check, warned):
    """Where the meaning is clear the value is coerced, with a warning on that field."""
    record, notes = read(SHAPES / name)
    assert record is not None, notes
    assert check(record)
    assert sorted(fields_of(notes, "warning")) == warned


# --- limits -------------------------------------------------------------------


def test_billion_laughs_is_refused_quickly(tmp_path):
    """A YAML alias bomb fails under the alias limit in well under a second."""
    lol = 'title: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for name in "bcdefghij":
        lol += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
        prev = name
    path = tmp_path / "billion_laughs.txt"
    path.write_text(f"---\n{lol}---\n")
    started = time.perf_counter()
    record, notes = read(path)
    assert time.perf_counter() - started < 2
    assert record is None and fields_of(notes, "error") == ["(yaml)"]
    assert "alias" in notes[0].message


def test_aliases_of_a_long_string_are_refused_before_they_expand(tmp_path):
    """A few hundred aliases of one long string stay under the alias event limit but
    would make a copy each (yaml-rs replays them): aliases may replay 16 Mi
    characters in all, so this file (100 Mi of them, under the size limit) is refused."""
    path = tmp_path / "long_aliases.txt"
    path.write_text(f'---\ntitle: &a "{"x" * 200_000}"\npublishedDateTime: 2021-01-01T00:00:00Z\n'
                    f'originalUrl: "https://example.com/x"\nx: [{", ".join(["*a"] * 500)}]\n---\n')
    record, notes = read(path)
    assert record is None and fields_of(notes, "error") == ["(yaml)"]
    assert "alias" in notes[0].message and "16,777,216 characters" in notes[0].message


def test_a_front_matter_never_closed_is_said_to_be_so(tmp_path):
    """A front matter with no '---' line after it is one error saying so (it was
    reported as a second front-matter block and a missing title)."""
    path = tmp_path / "open.txt"
    path.write_text('---\ntitle: "x"\npublishedDateTime: 2021-01-01T00:00:00Z\n'
                    'originalUrl: "https://example.com/x"\nthe body, with no line closing the front matter\n')
    record, notes = read(path)
    assert record is None
    assert [(d.field, d.severity) for d in notes] == [("(front matter)", "error")]
    assert "never closed" in notes[0].message


def test_a_key_given_twice_keeps_the_last_value_and_says_so(tmp_path):
    """YAML forbids a key twice in one mapping; the seed still publishes, with its
    last value (as YAML 1.1 loaders did silently) and a warning naming the key."""
    path = tmp_path / "twice.txt"
    path.write_text('---\ntitle: "First"\ntitle: "Second"\npublishedDateTime: 2021-01-01T00:00:00Z\n'
                    'originalUrl: "https://example.com/x"\n---\n')
    record, notes = read(path)
    assert record.title == "Second"
    assert [(d.field, d.severity) for d in notes] == [("(yaml)", "warning")]
    assert "'title' given twice" in notes[0].message


def test_a_few_aliases_in_an_ordinary_seed_still_load(tmp_path):
    path = tmp_path / "aliases.txt"
    path.write_text('---\ntitle: &t "Same words"\nexcerpt: *t\npublishedDateTime: 2021-01-01T00:00:00Z\n'
                    'originalUrl: "https://example.com/x"\ntopics: &topics [AI, Robots]\nkeywords: *topics\n---\n')
    record, notes = read(path)
    assert (record.title, record.excerpt, record.topics) == ("Same words", "Same words", ("AI", "Robots"))


@pytest.mark.parametrize("depth", [21, 1000, 100_000])
def test_deep_nesting_is_refused(tmp_path, depth):
    """Front matter nested past the depth limit is refused, however deep (no crash, no recursion error)."""
    path = tmp_path / "deep.txt"
    path.write_text(f"---\ntitle: x\nnest: {'[' * depth}{']' * depth}\n---\n")
    record, notes = read(path)
    assert record is None and fields_of(notes, "error") == ["(yaml)"]


def test_oversized_file_is_refused_unread(tmp_path):
    """A file over limits.file_bytes is refused with a (file) error."""
    path = tmp_path / "huge.txt"
    path.write_bytes(GOOD + b"\n" + b"x" * 2_000_000)
    record, notes = read(path)
    assert record is None and fields_of(notes, "error") == ["(file)"]


def test_a_file_of_exactly_the_limit_is_read(tmp_path):
    """The size limit is inclusive: one byte more is refused."""
    path = tmp_path / "edge.txt"
    limit = len(GOOD) + 1024
    path.write_bytes(GOOD + b"\n" + b"x" * (limit - len(GOOD) - 1))
    record, notes = read(path, Limits(file_bytes=limit))
    assert record is not None and not fields_of(notes, "error")
    path.write_bytes(path.read_bytes() + b"x")
    record, notes = read(path, Limits(file_bytes=limit))
    assert record is None and fields_of(notes, "error") == ["(file)"]


def test_a_file_with_no_size_is_read_to_its_end(tmp_path):
    """A seed whose stat tells no size (here a pipe) is still read whole, up to the limit."""
    reader, writer = os.pipe()
    os.write(writer, GOOD)  # smaller than a pipe's buffer
    os.close(writer)
    try:
        record, notes = read(Path(f"/proc/self/fd/{reader}"))
    finally:
        os.close(reader)
    assert record is not None and record.title and not fields_of(notes, "error")


def test_long_texts_are_cut_and_long_lists_trimmed(tmp_path):
    """Over-long titles and excerpts are cut with a warning; lists keep their first list_items items."""
    topics = "".join(f"  - topic {i}\n" for i in range(30))
    path = tmp_path / "long.txt"
    path.write_text(f'---\ntitle: "{"word " * 200}"\nexcerpt: "{"e" * 5000}"\n'
                    f'publishedDateTime: 2021-01-01T00:00:00Z\noriginalUrl: "https://example.com/long"\n'
                    f"topics:\n{topics}---\n")
    record, notes = read(path, Limits(title_chars=50, excerpt_chars=100, list_items=10))
    assert len(record.title) <= 50 and record.title.endswith("…")
    assert len(record.excerpt) <= 100
    assert len(record.topics) == 10
    assert sorted(fields_of(notes, "warning")) == ["excerpt", "title", "topics"]


# --- names that become paths ----------------------------------------------------


def test_labels_and_domains_never_escape_their_folder(tmp_path):
    """Topic labels and provider domains from data become safe, distinct, single path segments."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(SHAPES / "hostile_names.txt", seeds)
    shutil.copy(SHAPES / "provider_with_port.txt", seeds)
    snapshot = build_snapshot(load_config(write_config(tmp_path / "c.toml", seeds)))
    topic_keys = [k for k in snapshot.feeds if k.startswith("topics/")]
    assert len(topic_keys) == 7  # the empty label is dropped; the others stay distinct
    for key in topic_keys:
        segment = key.removeprefix("topics/")
        assert segment not in (".", "..") and "/" not in segment and segment.isascii()
    assert not [k for k in snapshot.feeds if k.startswith("providers/")]
    warned = {(d.file, d.field) for d in snapshot.diagnostics}
    assert ("hostile_names.txt", "provider.domain") in warned
    assert ("provider_with_port.txt", "provider.domain") in warned
    out = tmp_path / "site"
    from feeds.static import write_site

    write_site(snapshot, out)
    for path in tmp_path.rglob("*"):
        assert path.resolve().is_relative_to(tmp_path.resolve())
    assert all(p.resolve().is_relative_to(out.resolve()) for p in out.rglob("*"))


def test_symlinks_out_of_the_seed_folder_are_not_followed(tmp_path):
    """A symlink (file or folder) leading outside the seed folder is reported and not read."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(MINIMAL.format(title="Secret outside", slug="secret"))
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "inside.txt").write_text(MINIMAL.format(title="Inside", slug="inside"))
    (seeds / "link.txt").symlink_to(outside / "secret.txt")
    (seeds / "linked_folder").symlink_to(outside, target_is_directory=True)
    (seeds / "alias.txt").symlink_to(seeds / "inside.txt")
    count, notes = check_files(seeds, ("*.txt",))
    snapshot = build_snapshot(load_config(write_config(tmp_path / "c.toml", seeds)))
    assert [e.title for e in snapshot.feeds["all"].entries] == ["Inside"]
    assert {d.file for d in notes if "not followed" in d.message} == {"link.txt", "linked_folder"}


def test_non_regular_files_are_skipped(tmp_path):
    """A FIFO named like a seed is reported and skipped (reading it would block the refresh)."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    os.mkfifo(seeds / "pipe.txt")
    (seeds / "ok.txt").write_text(MINIMAL.format(title="Fine", slug="fine"))
    count, notes = check_files(seeds, ("*.txt",))
    assert [(d.file, d.field, d.severity) for d in notes] == [("pipe.txt", "(file)", "error")]


# --- faults during a refresh -------------------------------------------------------


@pytest.fixture
def builder(tmp_path):
    seeds = tmp_path / "seeds"
    shutil.copytree(BUNDLED_SEEDS, seeds)
    return Builder(load_config(write_config(tmp_path / "c.toml", seeds)))


def _seed(builder) -> Path:
    return builder.config.seeds_path / "000_3416384145912650.txt"


def test_good_record_turned_bad_keeps_its_last_good_version(builder):
    """A seed truncated mid-write keeps publishing its last good entry, marked stale, until fixed."""
    first = builder.build()
    good = _seed(builder).read_bytes()
    _seed(builder).write_bytes(good[:200])  # cut inside the front matter
    second = builder.build()
    assert [e.title for e in second.feeds["all"].entries] == [e.title for e in first.feeds["all"].entries]
    assert second.documents["/feeds/all.atom"].body == first.documents["/feeds/all.atom"].body
    stale = [d for d in second.diagnostics if d.stale]
    assert [(d.file, d.severity) for d in stale] == [("000_3416384145912650.txt", "error")]
    _seed(builder).write_bytes(good.replace(b"Human Rights Groups", b"Rights Groups"))
    third = builder.build()
    assert third.feeds["all"].entries[0].title.startswith("Rights Groups")
    assert not [d for d in third.diagnostics if d.stale]


def test_file_deleted_between_listing_and_reading(builder, monkeypatch):
    """A file that vanishes after the scan listed it is a diagnostic, not an exception."""
    builder.build()
    import feeds.builder as builder_module

    real_scan = builder_module.list_folder

    def scan_then_delete(root, globs):
        listed = real_scan(root, globs)
        _seed(builder).unlink()
        return listed

    _seed(builder).write_bytes(_seed(builder).read_bytes() + b"\n")  # changed, so it will be re-read
    monkeypatch.setattr(builder_module, "list_folder", scan_then_delete)
    snapshot = builder.build()
    assert [d.field for d in snapshot.diagnostics if d.stale] == ["(file)"]
    assert snapshot.entry_count == 1  # its last good version, until the next scan drops it
    monkeypatch.setattr(builder_module, "list_folder", real_scan)
    assert builder.build().entry_count == 0


def test_emptied_seed_folder_keeps_the_last_snapshot(builder):
    """A folder that suddenly lists no seeds (unmounted?) fails the refresh instead of emptying the feeds."""
    builder.build()
    for path in builder.config.seeds_path.iterdir():
        path.unlink()
    with pytest.raises(SeedFolderEmpty):
        builder.build()


def test_missing_seed_folder_fails_the_refresh(builder):
    """A folder that disappeared fails the refresh (the web layer then keeps the last snapshot)."""
    builder.build()
    shutil.rmtree(builder.config.seeds_path)
    with pytest.raises(FileNotFoundError):
        builder.build()


# --- identity that survives edits -------------------------------------------------------


def test_corrected_url_keeps_the_first_id(builder):
    """A seed whose URL is corrected in the same file keeps the id it was first published with."""
    first_id = builder.build().feeds["all"].entries[0].id
    text = _seed(builder).read_text()
    _seed(builder).write_text(text.replace("human-rights-groups-call-on", "human-rights-groups-urge"))
    entry = builder.build().feeds["all"].entries[0]
    assert "urge" in entry.link and entry.id == first_id
    restarted = Builder(builder.config)  # the ledger is on disk: a new process remembers
    assert restarted.build().feeds["all"].entries[0].id == first_id


def test_deleting_the_ledger_loses_only_that_memory(builder):
    """Without the ledger, ids fall back to canonical URLs; no feed is lost."""
    builder.build()
    text = _seed(builder).read_text()
    _seed(builder).write_text(text.replace("human-rights-groups-call-on", "human-rights-groups-urge"))
    (builder.config.state_path / "ledger.sqlite3").unlink()
    snapshot = Builder(builder.config).build()
    assert snapshot.entry_count == 1
    assert "urge" in snapshot.feeds["all"].entries[0].id


def test_unwritable_state_folder_is_a_warning_not_a_failure(tmp_path):
    """When the ledger cannot be opened the build still publishes, with a (state) warning."""
    seeds = tmp_path / "seeds"
    shutil.copytree(BUNDLED_SEEDS, seeds)
    (tmp_path / "blocker").write_text("a file where the state folder should be")
    config = load_config(write_config(tmp_path / "c.toml", seeds, extra='[state]\npath = "blocker/state"'))
    snapshot = build_snapshot(config)
    assert snapshot.entry_count == 1
    assert [d.field for d in snapshot.diagnostics if d.file == "(state)"] == ["state.path"]


def test_an_edit_that_keeps_size_and_mtime_is_still_seen(builder):
    """A refresh compares size, mtime, ctime and inode: an edit that restores the
    size and the mtime (as `cp -p` or an rsync may) is noticed by its ctime."""
    first = builder.build()
    seed = _seed(builder)
    before = seed.stat()
    text = seed.read_bytes()
    seed.write_bytes(text.replace(b"Human Rights Groups Call", b"Human Rights Groups Urge"))
    os.utime(seed, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert seed.stat().st_size == before.st_size and seed.stat().st_mtime_ns == before.st_mtime_ns
    second = builder.build()
    assert second is not first
    assert second.feeds["all"].entries[0].title.startswith("Human Rights Groups Urge")
    assert builder.build() is second  # and nothing changed since


# 2286 is past what 64 bits of nanoseconds hold (2262); 1653 is before it (1678), but
# ext4 keeps it as 1901: it is here for filesystems that keep what they are given.
@pytest.mark.parametrize("seconds", [10**10, -10**10])
def test_a_seed_dated_far_from_now_on_disk_is_read_and_its_changes_seen(builder, seconds):
    """File times outside what 64 bits of nanoseconds hold (before 1678, after 2262)
    do not break the scan, and an edit to such a file is still noticed."""
    seed = _seed(builder)
    os.utime(seed, (seconds, seconds))
    first = builder.build()
    assert first.entry_count == 1 and builder.build() is first
    seed.write_bytes(seed.read_bytes().replace(b"Human Rights Groups Call", b"Human Rights Groups Urge"))
    os.utime(seed, (seconds, seconds))
    assert builder.build().feeds["all"].entries[0].title.startswith("Human Rights Groups Urge")


def test_the_same_files_listed_in_another_order_are_not_read_again(builder, monkeypatch):
    """A folder may list the same files in another order (after a filesystem repair or
    a copy): the refresh then compares file by file, finds nothing changed and keeps
    the snapshot, without reading a file."""
    import feeds.builder as builder_module
    from feeds.records import Listing

    (builder.config.seeds_path / "sub").mkdir()
    shutil.copy(_seed(builder), builder.config.seeds_path / "sub" / "copy.txt")
    first = builder.build()
    real = builder_module.list_folder

    def reversed_listing(root, globs):
        listing = real(root, globs)
        size = len(listing.stamps) // len(listing)
        counts = [folder.count("\0") for folder in listing.folders]
        chunks, at = [], 0
        for count in counts:
            chunks.append(listing.stamps[at:at + count * size])
            at += count * size
        return Listing(listing.root, listing.folders[::-1], bytearray(b"".join(chunks[::-1])), listing.notes)

    monkeypatch.setattr(builder_module, "list_folder", reversed_listing)
    monkeypatch.setattr(builder_module, "read_record", lambda *a: pytest.fail("a file was read again"))
    assert builder.build() is first
    assert builder.last_report.read == 0


# --- dates too big for the date parser -------------------------------------------

HUGE_DATES = [
    "Mon, 01 Jan 99999999999999999999 00:00:00 +0000",  # year
    "Mon, 01 Jan 2021 99999999999999999999:00:00 +0000",  # hour
    "Mon, 01 Jan 9999999999 00:00:00 +0000",  # a year past what a C int holds
]


def _seeds_with(tmp_path: Path, bad: str) -> Path:
    """A seed folder holding a good file and `bad` (a seed's text) as x.txt."""
    return write_seeds(tmp_path / "seeds", {"good.txt": MINIMAL.format(title="Good", slug="good"), "x.txt": bad})


@pytest.mark.parametrize("date", HUGE_DATES)
def test_a_date_too_big_to_parse_makes_the_file_unusable_not_the_build(tmp_path, date):
    """An RFC 2822 date whose year or hour overflows the parser is an out-of-range
    date: the file gets an error on publishedDateTime, the others publish."""
    seeds = _seeds_with(tmp_path, f'---\ntitle: "x"\npublishedDateTime: "{date}"\n'
                                  'originalUrl: "https://example.com/x"\n---\n')
    count, notes = check_files(seeds, ("*.txt",))
    assert [(d.file, d.field, d.severity) for d in notes] == [("x.txt", "publishedDateTime", "error")]
    assert "out of range" in notes[0].message
    snapshot = build_folder(tmp_path, seeds)
    assert [e.title for e in snapshot.feeds["all"].entries] == ["Good"]
    assert ("x.txt", "publishedDateTime", "error") in [(d.file, d.field, d.severity) for d in snapshot.diagnostics]


@pytest.mark.parametrize("date", HUGE_DATES)
def test_a_related_date_too_big_to_parse_is_dropped_like_any_bad_related_date(tmp_path, date):
    """In a related item the same date is dropped with a warning, as any unreadable
    optional date is; the file and its related item still publish."""
    seeds = _seeds_with(tmp_path, '---\ntitle: "x"\npublishedDateTime: 2021-02-01T00:00:00Z\n'
                                  'originalUrl: "https://example.com/x"\nrelated:\n'
                                  f'  - {{title: r, webUrl: "https://example.com/r", publishedDateTime: "{date}"}}\n---\n')
    count, notes = check_files(seeds, ("*.txt",))
    assert [(d.file, d.field, d.severity) for d in notes] == [("x.txt", "related[0].publishedDateTime", "warning")]
    assert "out of range" in notes[0].message
    snapshot = build_folder(tmp_path, seeds)
    assert [e.title for e in snapshot.feeds["all"].entries] == ["x", "Good"]
    record, _ = read(seeds / "x.txt")
    assert [(r.title, r.published) for r in record.related] == [("r", None)]


# --- file names that are not UTF-8 -------------------------------------------------

RENAME = "name is not valid UTF-8"


def _badly_named_seeds(tmp_path: Path) -> Path:
    """A good file, a usable file and an unusable one whose names hold invalid
    UTF-8 bytes, and a folder so named holding a usable file."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "good.txt").write_text(MINIMAL.format(title="Good", slug="good"))
    root = os.fsencode(seeds)
    with open(root + b"/usable\xff.txt", "w") as handle:
        handle.write(MINIMAL.format(title="Usable", slug="usable"))
    with open(root + b"/unusable\xfe\xfd.txt", "w") as handle:
        handle.write('---\ntitle: [x]\npublishedDateTime: 2021-01-01T00:00:00Z\n---\n')
    os.mkdir(root + b"/sub\xff")
    with open(root + b"/sub\xff/inner.txt", "w") as handle:
        handle.write(MINIMAL.format(title="Inner", slug="inner"))
    return seeds


BADLY_NAMED = {"usable\ufffd.txt", "unusable\ufffd\ufffd.txt", "sub\ufffd/"}


def test_a_file_name_that_is_not_utf8_is_reported_not_read(tmp_path):
    """A file (or folder) whose name is not valid UTF-8 is not read: one error asks
    for a rename, showing each undecodable byte as U+FFFD; the others publish."""
    seeds = _badly_named_seeds(tmp_path)
    count, notes = check_files(seeds, ("*.txt",))
    assert count == 1
    assert {(d.file, d.field, d.severity) for d in notes} == {(name, "(file)", "error") for name in BADLY_NAMED}
    assert all(RENAME in d.message and "rename" in d.message for d in notes)
    snapshot = build_folder(tmp_path, seeds)
    assert [e.title for e in snapshot.feeds["all"].entries] == ["Good"]
    assert {d.file for d in snapshot.diagnostics} == BADLY_NAMED
    snapshot.documents["/"].body.decode("utf-8")


def test_a_refresh_with_badly_named_files_and_nothing_changed_returns_early(tmp_path, monkeypatch):
    """The rename diagnostics are the same each scan: a refresh with nothing changed
    keeps the snapshot without reading a file; a rename to valid UTF-8 publishes."""
    import feeds.builder as builder_module

    seeds = _badly_named_seeds(tmp_path)
    builder = Builder(load_config(write_config(tmp_path / "c.toml", seeds)))
    first = builder.build()
    real_read = builder_module.read_record
    monkeypatch.setattr(builder_module, "read_record", lambda *a: pytest.fail("a file was read again"))
    assert builder.build() is first and builder.last_report.read == 0
    monkeypatch.setattr(builder_module, "read_record", real_read)
    os.rename(os.fsencode(seeds) + b"/usable\xff.txt", seeds / "usable.txt")
    second = builder.build()
    assert sorted(e.title for e in second.feeds["all"].entries) == ["Good", "Usable"]
    assert {d.file for d in second.diagnostics} == BADLY_NAMED - {"usable\ufffd.txt"}


def test_badly_named_files_through_the_cli(tmp_path):
    """`build --out` exits 0 and publishes the good file; `check --json` prints strict
    JSON naming each badly named file as shown, with no lone surrogate."""
    seeds = _badly_named_seeds(tmp_path)
    config = write_config(tmp_path / "c.toml", seeds)
    out = tmp_path / "site"
    built = subprocess.run([SEEDFEEDS, "build", "--out", str(out), "--config", str(config)],
                           capture_output=True, timeout=120)
    assert built.returncode == 0, built.stderr.decode(errors="replace")
    assert [item["title"] for item in json.loads((out / "feeds" / "all.json").read_bytes())["items"]] == ["Good"]
    index = (out / "index.html").read_bytes().decode("utf-8")
    assert all(name in index for name in BADLY_NAMED)
    checked = subprocess.run([SEEDFEEDS, "check", "--json", "--config", str(config)], capture_output=True, timeout=120)
    assert checked.returncode == 1, checked.stderr.decode(errors="replace")
    report = json.loads(checked.stdout.decode("utf-8"))
    json.dumps(report, ensure_ascii=False).encode("utf-8")  # strict: a lone surrogate would raise
    assert {d["file"] for d in report["diagnostics"]} == BADLY_NAMED
    assert report["files"] == 1 and report["unusable"] == len(BADLY_NAMED)


def test_a_badly_named_file_checked_alone_is_reported_not_read(tmp_path):
    """`check FILE` on such a name (it is not listed, so the listing cannot refuse
    it) gets the same rename error, in strict JSON."""
    seeds = _badly_named_seeds(tmp_path)
    config = write_config(tmp_path / "c.toml", seeds)
    checked = subprocess.run([SEEDFEEDS, "check", "--json", "--config", str(config),
                              os.fsencode(seeds) + b"/usable\xff.txt"], capture_output=True, timeout=120)
    assert checked.returncode == 1, checked.stderr.decode(errors="replace")
    report = json.loads(checked.stdout.decode("utf-8"))
    assert [(d["file"], d["field"], d["severity"]) for d in report["diagnostics"]] == [
        ("usable\ufffd.txt", "(file)", "error")]
    assert RENAME in report["diagnostics"][0]["message"]


def test_other_notes_on_a_badly_named_file_show_it_renamed_too(tmp_path):
    """A FIFO with such a name is reported as any FIFO is, under the name as shown."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "ok.txt").write_text(MINIMAL.format(title="Fine", slug="fine"))
    os.mkfifo(os.fsencode(seeds) + b"/pipe\xff.txt")
    count, notes = check_files(seeds, ("*.txt",))
    assert [(d.file, d.field, d.severity) for d in notes] == [("pipe\ufffd.txt", "(file)", "error")]
