"""The pipeline in-process: seed files on disk -> diagnostics, entries, feeds."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone

import pytest

from conftest import BUNDLED_SEEDS, FIXTURE_SEEDS, build_folder, write_config, write_seeds
from feeds import Builder, build_snapshot, load_config
from feeds.builder import check_files
from feeds.entries import to_entry
from feeds.records import SeedFile, read_record
from feeds.urls import canonical_url, provider_domain, slugify

FLAWED = FIXTURE_SEEDS / "flawed"
GLOBS = ("*.txt", "*.md", "*.markdown")


def _entry(name: str):
    path = FLAWED / name
    record, notes = read_record(SeedFile(name, path, 0, 0, 0, 0))
    assert record is not None, notes
    return to_entry(record), notes


@pytest.fixture(scope="module")
def flawed_diagnostics():
    return check_files(FLAWED, GLOBS)[1]


@pytest.mark.parametrize(("file", "field"), [
    ("missing_title.txt", "title"),
    ("missing_url.txt", "webUrl"),
    ("missing_date.txt", "publishedDateTime"),
    ("unparsable_date.txt", "publishedDateTime"),
    ("javascript_url.txt", "originalUrl"),
    ("bad_yaml.txt", "(yaml)"),
    ("list_front_matter.txt", "(yaml)"),
    ("no_front_matter.md", "(front matter)"),
])
def test_unusable_file_gets_an_error_naming_file_and_field(flawed_diagnostics, file, field):
    """Each unusable file is skipped with one error that names its file and the failing field."""
    errors = [d for d in flawed_diagnostics if d.file == file and d.severity == "error"]
    assert [d.field for d in errors] == [field]
    assert errors[0].message


def test_every_other_file_still_publishes(tmp_path):
    """Broken files beside good ones: the good ones publish, the broken ones are counted."""
    seeds = tmp_path / "seeds"
    shutil.copytree(FLAWED, seeds)
    shutil.copy(BUNDLED_SEEDS / "000_3416384145912650.txt", seeds)
    snapshot = build_snapshot(load_config(write_config(tmp_path / "c.toml", seeds)))
    assert snapshot.errors == 8
    titles = [e.title for e in snapshot.feeds["all"].entries]
    assert "Human Rights Groups Call On The University Of Miami To Ban Facial Recognition" in titles
    assert len(titles) == 4  # the bundled one, naive_date, yaml11_words, hostile_text (its duplicate merged)


def test_date_without_zone_is_utc_with_a_warning():
    """A naive publishedDateTime is read as UTC, and says so."""
    entry, notes = _entry("naive_date.txt")
    assert entry.published == datetime(2021, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    assert [(d.field, d.severity) for d in notes] == [("publishedDateTime", "warning")]


def test_yaml_11_words_keep_the_text_the_author_typed():
    """`NO`, `off`, `y`, `on` and `1:20` stay text (YAML 1.2), not booleans or sexagesimal numbers."""
    entry, notes = _entry("yaml11_words.txt")
    assert entry.title == "NO"
    assert entry.summary == "1:20"
    assert entry.category == "off"
    assert [t.label for t in entry.topics] == ["y", "on", "Norway"]
    assert notes == []


def test_text_fields_are_plain_text():
    """Titles, excerpts, provider names and topic labels lose tags, entities and control characters."""
    entry, _ = _entry("hostile_text.txt")
    assert entry.title == "Breaking news & views now"
    assert entry.summary == "Excerpt with inside"
    assert entry.author.name == "Evil Corp"
    assert [t.label for t in entry.topics] == ["AI"]


def test_body_html_keeps_only_the_allowlist_and_http_urls():
    """The rendered body has no script, iframe, event handler, style, or non-http(s) URL;
    relative links are made absolute against the article URL."""
    entry, _ = _entry("hostile_text.txt")
    html = entry.content_html
    for bad in ("<script", "<iframe", "onclick", "onerror", "style=", "javascript:", "data:"):
        assert bad not in html.lower()
    assert 'src="https://www.example.com/img/rel.png"' in html
    assert 'href="https://www.example.com/other"' in html
    assert 'href="mailto:desk@example.com"' in html
    assert "<h3>Related coverage</h3>" in html and "Related story" in html


def test_duplicate_article_is_one_entry_and_a_warning(flawed_diagnostics):
    """The same article at http:// and https://www., with utm_ and a slash, is one entry; the loser is reported."""
    assert canonical_url("http://example.com/hostile/?utm_medium=y") == \
        canonical_url("https://www.example.com/hostile?utm_source=x#frag")
    dupes = [d for d in flawed_diagnostics if "same article" in d.message]
    assert [(d.file, d.severity) for d in dupes] == [("duplicate_http_www.txt", "warning")]


@pytest.mark.parametrize(("url", "canonical"), [
    ("https://www.Example.COM/a/b/", "https://example.com/a/b"),
    ("http://example.com:80/a?utm_source=x&id=3#top", "https://example.com/a?id=3"),
    ("https://example.com:443/", "https://example.com/"),
    ("https://example.com:8443/a", "https://example.com:8443/a"),
    ("https://example.com/a?b=1&utm_campaign=z&c=2", "https://example.com/a?b=1&c=2"),
    ("https://example.com/q?id=%ff", "https://example.com/q?id=%FF"),
    ("http://www.example.com/q/?utm_source=x&b=%C3%A9+x&a=%FF#f", "https://example.com/q?b=%C3%A9%20x&a=%FF"),
    ("https://example.com/q?id=%C3%A9&x=%E2%82", "https://example.com/q?id=%C3%A9&x=%E2%82"),
])
def test_canonical_url(url, canonical):
    """Identity ignores scheme, www., host case, default port, trailing slash, fragment and utm_*;
    the same query bytes written differently are one (UTF-8 or not)."""
    assert canonical_url(url) == canonical


@pytest.mark.parametrize(("label", "slug"), [
    ("Computer Vision", "computer-vision"),
    ("AI", "ai"),
    ("  Machine   Learning!! ", "machine-learning"),
    ("Künstliche Intelligenz", "kunstliche-intelligenz"),
    ("C++", "c-plus-plus"), ("C#", "c-sharp"), ("Disney+", "disney-plus"), ("#MeToo", "metoo"),
])
def test_slugify(label, slug):
    """Topic slugs are lowercase words joined by hyphens; a "+" or "#" that makes
    another name of its word is spelled out."""
    assert slugify(label) == slug


def test_c_cplusplus_and_csharp_are_three_topics(tmp_path):
    """Labels that name different things get different feeds, and an entry keeps
    each of its labels; labels differing only in case or accents are one topic."""
    labels = [["C++", "C"], ["C#"], ["c"], ["Café"], ["Cafe"]]
    seeds = write_seeds(tmp_path / "seeds", {
        f"{n}.txt": f"---\ntitle: Story {n}\npublishedDateTime: 2021-01-0{n + 1}T00:00:00Z\n"
                    f"originalUrl: https://example.com/{n}\ntopics: {json.dumps(topics)}\n---\n"
        for n, topics in enumerate(labels)})
    snapshot = build_folder(tmp_path, seeds)
    titles = {key: sorted(e.title for e in feed.entries) for key, feed in snapshot.feeds.items() if feed.kind == "topic"}
    assert titles == {"topics/c": ["Story 0", "Story 2"], "topics/c-plus-plus": ["Story 0"],
                      "topics/c-sharp": ["Story 1"], "topics/cafe": ["Story 3", "Story 4"]}
    first = next(e for e in snapshot.feeds["all"].entries if e.title == "Story 0")
    assert [t.label for t in first.topics] == ["C++", "C"]


@pytest.mark.parametrize("label", ["../../etc", "a/b", ".", "", "CON", "人工知能", "x" * 300])
def test_slugs_are_always_a_single_safe_segment(label):
    """Any label gives a non-empty slug with no slash, no dot-segment and no reserved name."""
    slug = slugify(label)
    assert slug and "/" not in slug and slug not in (".", "..") and slug.lower() != "con"
    assert len(slug) <= 60 and all(c.isascii() and (c.isalnum() or c == "-") for c in slug)


@pytest.mark.parametrize(("domain", "expected"), [
    ("www.Forbes.com", "forbes.com"), ("forbes.com.", "forbes.com"), ("bücher.de", "xn--bcher-kva.de"),
    ("a/b.com", None), ("forbes.com:8080", None), ("user@forbes.com", None), ("localhost", None),
])
def test_provider_domain(domain, expected):
    """Provider feeds are keyed by lowercase domain without www.; anything that is not a host name is refused."""
    assert provider_domain(domain) == expected


def test_bundled_seeds_give_the_expected_feeds(config_file):
    """The five bundled records: one published entry, four left out as unpublished, five feeds."""
    snapshot = build_snapshot(load_config(config_file))
    assert snapshot.entry_count == 1 and snapshot.left_out == {"unpublished": 4}
    assert list(snapshot.feeds) == ["all", "topics/ai", "topics/computer-vision", "providers/forbes.com"]
    assert snapshot.diagnostics == ()
    entry = snapshot.feeds["all"].entries[0]
    assert entry.id == ("https://forbes.com/sites/rachelsandler/2020/10/27/"
                        "human-rights-groups-call-on-the-university-of-miami-to-ban-facial-recognition")
    assert entry.author.name == "Forbes" and entry.author.uri == "https://forbes.com"
    assert snapshot.feeds["providers/forbes.com"].icon.endswith("forbes.com-50x50.jpg")


def test_include_unpublished_and_min_quality(tmp_path, seed_dir):
    """include_unpublished publishes all five; min_quality then leaves out the low ones, counted by reason."""
    config = write_config(tmp_path / "c.toml", seed_dir, seeds_extra="include_unpublished = true\nmin_quality = 35")
    snapshot = build_snapshot(load_config(config))
    assert snapshot.entry_count == 3  # quality 86, 35, 36
    assert snapshot.left_out == {"below min_quality": 2}


def test_named_feed_filters(tmp_path, seed_dir):
    """A config feed keeps entries matching every filter it gives (topics any-of, providers, quality)."""
    config = write_config(tmp_path / "c.toml", seed_dir, seeds_extra="include_unpublished = true", extra="""
[feed.vision]
title = "Vision"
topics = ["computer vision", "Nothing"]
min_quality = 34
entries = 2

[feed.nextgov]
title = "Nextgov only"
providers = ["www.nextgov.com"]
types = ["ARTICLE"]
""")
    snapshot = build_snapshot(load_config(config))
    vision = snapshot.feeds["vision"]
    assert [e.quality for e in vision.entries] == [36, 35] and vision.total == 3
    assert [e.provider_domain for e in snapshot.feeds["nextgov"].entries] == ["nextgov.com"]
    assert "/feeds/vision.rss" in snapshot.documents


def test_entries_are_newest_first_ties_by_id(tmp_path):
    """Feeds list the newest entry first; equal dates are ordered by id."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name, day in (("a", 1), ("c", 2), ("b", 2)):
        (seeds / f"{name}.md").write_text(
            f'---\ntitle: "{name}"\npublishedDateTime: 2021-01-0{day}T00:00:00Z\n'
            f'originalUrl: "https://example.com/{name}"\n---\n', encoding="utf-8")
    snapshot = build_snapshot(load_config(write_config(tmp_path / "c.toml", seeds)))
    assert [e.title for e in snapshot.feeds["all"].entries] == ["b", "c", "a"]


def test_secured_signature_never_appears_in_output(config_file, seed_dir):
    """The opaque `secured` value of a seed is in no document."""
    snapshot = build_snapshot(load_config(config_file))
    secret = "Sofr7qzPc218LhAUBiofhoetRr"
    assert secret in (seed_dir / "000_3416384145912650.txt").read_text()
    assert not any(secret.encode() in doc.body for doc in snapshot.documents.values())


def test_unchanged_seeds_give_identical_bytes(config_file):
    """Two cold builds of the same seeds give byte-identical documents and ETags."""
    first, second = build_snapshot(load_config(config_file)), build_snapshot(load_config(config_file))
    assert {p: d.body for p, d in first.documents.items()} == {p: d.body for p, d in second.documents.items()}
    assert {p: d.gzip_body for p, d in first.documents.items()} == {p: d.gzip_body for p, d in second.documents.items()}
    assert {p: d.etag for p, d in first.documents.items()} == {p: d.etag for p, d in second.documents.items()}


def test_feed_updated_is_the_newest_entry_never_now(config_file):
    """A feed's updated date is its newest entry's, in every format."""
    snapshot = build_snapshot(load_config(config_file))
    assert b"<updated>2020-10-27T10:37:00+00:00</updated>" in snapshot.documents["/feeds/all.atom"].body
    assert b"<lastBuildDate>Tue, 27 Oct 2020 10:37:00 +0000</lastBuildDate>" in snapshot.documents["/feeds/all.rss"].body
    items = json.loads(snapshot.documents["/feeds/all.json"].body)["items"]
    assert items[0]["date_modified"] == "2020-10-27T10:37:00Z"


def test_entries_per_feed_caps_every_document(tmp_path):
    """No document holds more than entries_per_feed entries; the directory shows the full count."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for i in range(7):
        (seeds / f"s{i}.md").write_text(
            f'---\ntitle: "n{i}"\npublishedDateTime: 2021-01-0{i + 1}T00:00:00Z\n'
            f'originalUrl: "https://example.com/{i}"\n---\n', encoding="utf-8")
    config = write_config(tmp_path / "c.toml", seeds, feeds_extra="entries_per_feed = 3")
    snapshot = build_snapshot(load_config(config))
    assert len(json.loads(snapshot.documents["/feeds/all.json"].body)["items"]) == 3
    assert snapshot.feeds["all"].total == 7


def test_seed_folder_is_read_recursively_with_globs(tmp_path):
    """Subfolders are scanned; only files matching the globs are read; hidden files are skipped."""
    seeds = tmp_path / "seeds"
    (seeds / "deep" / "er").mkdir(parents=True)
    body = '---\ntitle: "{t}"\npublishedDateTime: 2021-01-01T00:00:00Z\noriginalUrl: "https://example.com/{t}"\n---\n'
    (seeds / "deep" / "er" / "one.markdown").write_text(body.format(t="one"))
    (seeds / "two.txt").write_text(body.format(t="two"))
    (seeds / "three.html").write_text(body.format(t="three"))
    (seeds / ".hidden.txt").write_text(body.format(t="hidden"))
    snapshot = build_snapshot(load_config(write_config(tmp_path / "c.toml", seeds)))
    assert sorted(e.title for e in snapshot.feeds["all"].entries) == ["one", "two"]
    only_txt = write_config(tmp_path / "d.toml", seeds, seeds_extra='globs = ["*.txt"]')
    assert [e.title for e in build_snapshot(load_config(only_txt)).feeds["all"].entries] == ["two"]


def test_seed_files_are_listed_folder_by_folder_files_first(tmp_path):
    """A scan lists each folder's files by name, then its subfolders' in name order;
    a refresh's first look (the folders' own order) finds the same files."""
    from feeds.records import list_folder, scan_folder

    names = ["z.txt", "a.txt", "a/x/1.txt", "a/2.txt", "a-b/3.txt", "b/4.txt", "a/y/z/5.txt", "a/y/6.txt",
             "A.txt", "a/x/0.txt", ".hidden/7.txt"]
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    ordered, _ = scan_folder(tmp_path, ("*.txt",))
    assert [f.rel for f in ordered] == ["A.txt", "a.txt", "z.txt", "a/2.txt", "a/x/0.txt", "a/x/1.txt",
                                        "a/y/6.txt", "a/y/z/5.txt", "a-b/3.txt", "b/4.txt"]
    unordered = list_folder(tmp_path, ("*.txt",)).files()
    assert sorted(unordered) == sorted(ordered)


def test_a_folder_that_fails_mid_listing_is_reported_and_left_out(tmp_path, monkeypatch):
    """A folder whose listing fails part way (an I/O error) is a diagnostic, and
    none of it is listed: no file of it half-seen, no stamp left behind."""
    import errno
    import os

    from feeds import records
    from feeds.fields import Diagnostic

    for name, text in (("a/1.txt", "x"), ("a/2.txt", "xx"), ("b/3.txt", "xxx")):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    real = os.scandir

    class FailsAfterOne:
        def __init__(self, path):
            self.listing = real(path)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.listing.close()

        def __iter__(self):
            yield next(iter(self.listing))
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(records.os, "scandir",
                        lambda path: FailsAfterOne(path) if path.endswith(f"{os.sep}a") else real(path))
    listing = records.list_folder(tmp_path, ("*.txt",))
    assert [(f.rel, f.size) for f in listing.files()] == [("b/3.txt", 3)]
    assert len(listing) == 1
    assert listing.notes == [Diagnostic("a/", "(file)", "error", "cannot list folder: Input/output error; "
                                                                   "what it held before keeps publishing")]
    assert listing.unlisted == ("a/",)


def test_seeds_in_a_folder_that_cannot_be_listed_keep_publishing(tmp_path, monkeypatch):
    """A subfolder that cannot be listed for a while (an I/O error, a permission
    change) is reported, and the entries it held keep publishing until it can be
    listed again: a refresh never drops seeds it cannot see for that reason."""
    import errno
    import os

    from feeds import records

    seeds = tmp_path / "seeds"
    for name, title in (("a/one.txt", "One"), ("b/two.txt", "Two")):
        (seeds / name).parent.mkdir(parents=True, exist_ok=True)
        (seeds / name).write_text(f'---\ntitle: "{title}"\npublishedDateTime: 2021-01-0{len(title)}T00:00:00Z\n'
                                  f'originalUrl: "https://example.com/{title}"\n---\n', encoding="utf-8")
    builder = Builder(load_config(write_config(tmp_path / "c.toml", seeds)))
    assert sorted(e.title for e in builder.build().feeds["all"].entries) == ["One", "Two"]
    real = os.scandir

    def failing(path):
        if path.endswith(f"{os.sep}a"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(path)

    monkeypatch.setattr(records.os, "scandir", failing)
    (seeds / "b" / "two.txt").write_text((seeds / "b" / "two.txt").read_text().replace("Two", "Too"))
    during = builder.build()
    assert sorted(e.title for e in during.feeds["all"].entries) == ["One", "Too"]
    assert [d.file for d in during.diagnostics if d.severity == "error"] == ["a/"]
    assert builder.last_report.removed == 0
    monkeypatch.setattr(records.os, "scandir", real)
    (seeds / "a" / "one.txt").unlink()  # gone for real: the next good listing drops it
    assert [e.title for e in builder.build().feeds["all"].entries] == ["Too"]
