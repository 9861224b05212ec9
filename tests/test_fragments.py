"""An entry in several documents is serialized once; while its fragment waits for
its next use it waits in a temporary file in the state folder, not on the heap,
and a spill file that fails changes no byte of any document."""

from __future__ import annotations

import errno
import tempfile
from collections import Counter

import pytest

from conftest import BUNDLED_SEEDS, FIXTURE_SEEDS, write_config, write_stories
from feeds import builder as builder_module
from feeds.builder import Builder, with_archives
from feeds.config import load_config
from feeds.snapshot import Fragments, render_feed, serialize, serialize_all

FORMATS = ("atom", "rss", "json", "html")  # the feed formats, and the preview pages' articles


@pytest.fixture
def documents(tmp_path):
    """Every feed document (archive pages too) of 31 stories on one topic: each
    entry is in `all` or one of its archive pages, and in the topic's feed or pages."""
    write_stories(tmp_path / "seeds", range(1, 32))
    config = load_config(write_config(tmp_path / "seedfeeds.toml", tmp_path / "seeds",
                                      feeds_extra="entries_per_feed = 5"))
    return config, with_archives(tuple(Builder(config).summarize().feeds.values()))


def _render(feeds, fmt, fragments=None):
    return [render_feed(feed, fmt, fragments).body for feed in feeds]


def _fragments(feeds, spill=None):
    topics_stem = feeds[0].topics_stem
    return Fragments(topics_stem, Counter(id(e) for feed in feeds for e in feed.entries), spill)


@pytest.mark.parametrize("fmt", FORMATS)
def test_waiting_fragments_go_to_the_spill_file_and_change_no_byte(documents, fmt):
    """Each fragment used again later is written to the spill file once; the
    documents are those rendered entry by entry, with no fragment kept."""
    _, feeds = documents
    uses = Counter(id(e) for feed in feeds for e in feed.entries)
    reused = {id(e): e for feed in feeds for e in feed.entries if uses[id(e)] > 1}
    assert len(reused) == 31  # every entry: `all` and the topic
    with tempfile.TemporaryFile() as spill:
        assert _render(feeds, fmt, _fragments(feeds, spill)) == _render(feeds, fmt)
        spill.seek(0, 2)
        assert spill.tell() == sum(len(serialize(e, fmt, feeds[0].topics_stem)) for e in reused.values())


class FullDisk:
    """A spill file whose writes fail after the first few (ENOSPC)."""

    def __init__(self, real, writes: int) -> None:
        self.real, self.writes = real, writes

    def write(self, data: bytes) -> int:
        self.writes -= 1
        if self.writes < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.real.write(data)

    def flush(self) -> None:
        self.real.flush()

    def fileno(self) -> int:
        return self.real.fileno()


class LostWrites(FullDisk):
    """A spill file whose buffered writes never reach it: every flush fails."""

    def flush(self) -> None:
        raise OSError(errno.EIO, "Input/output error")


@pytest.mark.parametrize("spill", [lambda f: FullDisk(f, writes=5), lambda f: LostWrites(f, writes=10 ** 6)],
                         ids=["disk full after five fragments", "every flush fails"])
def test_a_failing_spill_file_changes_no_byte(documents, spill):
    """A fragment that could not be kept, or cannot be read back, is serialized again."""
    _, feeds = documents
    with tempfile.TemporaryFile() as real:
        for fmt in FORMATS:
            assert _render(feeds, fmt, _fragments(feeds, spill(real))) == _render(feeds, fmt)


def test_builds_spill_into_the_state_folder_and_leave_nothing_there(documents, monkeypatch):
    """The builder's spill files are made in the state folder and gone after the build."""
    config, _ = documents
    made, real = [], tempfile.TemporaryFile

    def recorded(*args, **kwargs):
        made.append(kwargs.get("dir"))
        return real(*args, **kwargs)

    monkeypatch.setattr(builder_module.tempfile, "TemporaryFile", recorded)
    builder = Builder(config)
    builder.build()
    summary = builder.summarize()
    for fmt in FORMATS:
        assert list(builder.documents(summary, fmt))
    assert made and set(made) == {config.state_path}
    assert sorted(p.name for p in config.state_path.iterdir()) == ["ledger.sqlite3"]


def test_without_a_writable_state_folder_fragments_wait_in_memory(documents, tmp_path):
    """A state folder that cannot be made costs the spill file, not the build."""
    config, _ = documents
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder should be")
    stranded = Builder(load_config(write_config(
        tmp_path / "stranded.toml", tmp_path / "seeds", feeds_extra="entries_per_feed = 5",
        extra=f'[state]\npath = "{blocker / "state"}"\n')))
    reference = Builder(config)
    feeds = {p: d.body for p, d in reference.build().documents.items() if p.startswith("/feeds/")}
    assert len(feeds) > 30
    assert {p: d.body for p, d in stranded.build().documents.items() if p.startswith("/feeds/")} == feeds


@pytest.mark.parametrize("formats", [FORMATS, ("rss", "atom"), ("atom",), ("rss", "json"), ("html",), ()])
def test_serializing_a_batch_gives_each_entry_the_bytes_it_gets_alone(tmp_path, formats):
    """A cold build serializes entries in batches, Atom and RSS from one feedgen
    entry: every fragment is still the one `serialize` makes for that entry and
    format alone (bundled and hostile seeds: no summary, no author, no topics...)."""
    from feeds.builder import read_entry
    from feeds.records import scan_folder

    config = load_config(write_config(tmp_path / "c.toml", FIXTURE_SEEDS))
    seeds = [seed for root in (BUNDLED_SEEDS, FIXTURE_SEEDS) for seed in scan_folder(root, config.globs)[0]]
    entries = [entry for entry, _, _ in (read_entry(seed, config) for seed in seeds) if entry is not None]
    assert len(entries) > 20
    assert {bool(e.summary) for e in entries} == {bool(e.topics) for e in entries} == {True, False}
    stem = "https://example.com/feeds/topics/"
    made = serialize_all(entries, formats, stem)
    assert made == [[serialize(entry, fmt, stem) for entry in entries] for fmt in formats]
    assert serialize_all([], formats, stem) == [[] for _ in formats]
