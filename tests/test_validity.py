"""Every document is valid in its format and carries no active content, whatever the seeds.

Atom is checked against the RELAX NG schema of RFC 4287 (with jing), RSS 2.0 and
JSON Feed 1.1 against their specs' rules, and every text is read back as HTML.
Each check runs on the bundled seeds, the hostile corpus (`tests/seeds/hostile/`,
one file per flaw) and a config with named feeds, all built in-process.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import lxml.html
import pytest

from checks import active_content, is_web_url, parse_xml, texts
from conftest import BUNDLED_SEEDS, FIXTURE_SEEDS, write_config
from feeds import build_snapshot, load_config
from feeds.snapshot import Snapshot

HOSTILE = FIXTURE_SEEDS / "hostile"
ATOM_SCHEMA = Path(__file__).resolve().parent / "schemas" / "atom.rnc"
NS = {
    "atom": "http://www.w3.org/2005/Atom",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "media": "http://search.yahoo.com/mrss/",
}
ATOM_FEED = f"{{{NS['atom']}}}feed"
# RFC 3339 section 5.6 date-time; RFC 4287 section 3.3 asks for an uppercase T and Z.
RFC_3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")

# JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/): every key the spec defines.
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
JSON_FEED_KEYS = {"version", "title", "home_page_url", "feed_url", "description", "user_comment", "next_url",
                  "icon", "favicon", "authors", "language", "expired", "hubs", "items"}
JSON_ITEM_KEYS = {"id", "url", "external_url", "title", "content_html", "content_text", "summary", "image",
                  "banner_image", "date_published", "date_modified", "authors", "tags", "language", "attachments"}
JSON_AUTHOR_KEYS = {"name", "url", "avatar"}
# "Names must start with an _ character followed by a letter" (JSON Feed 1.1, Extensions).
JSON_EXTENSION = re.compile(r"^_[A-Za-z]")

XML_DECLARATION = re.compile(rb"""^<\?xml version=["']1\.0["'] encoding=["']UTF-8["']\?>""", re.IGNORECASE)
NUMERIC_REFERENCE = re.compile(r"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));?")

NAMED_FEEDS = """
[feed.vision]
title = "Vision & \\"faces\\""
subtitle = "Computer vision, two entries at most."
topics = ["Computer Vision"]
entries = 2

[feed.picks]
title = "Picks"
providers = ["forbes.com", "www.bücher.example"]
categories = ["news", "Nachrichten 📰"]
min_quality = 50

[feed.nothing-yet]
title = "Nothing yet"
types = ["podcast"]
"""


# WebSub hubs every feed advertises (Atom link, RSS atom:link, JSON Feed hubs).
HUBS = """
[websub]
hubs = ["https://hub.example.org/", "http://hub.example.net:8080/publish?site=news&x=1"]
"""


@dataclass(frozen=True)
class Scenario:
    """Seed folders and config for one snapshot under test."""

    name: str
    folders: tuple[Path, ...]
    base_url: str = "http://127.0.0.1:8000"
    seeds_extra: str = ""
    extra: str = ""


SCENARIOS = {s.name: s for s in (
    Scenario("bundled", (BUNDLED_SEEDS,)),
    Scenario("bundled-unpublished", (BUNDLED_SEEDS,), seeds_extra="include_unpublished = true"),
    Scenario("hostile", (HOSTILE,)),
    Scenario("named", (BUNDLED_SEEDS, HOSTILE), base_url="https://feeds.example.org/news",
             seeds_extra="include_unpublished = true", extra=NAMED_FEEDS),
    Scenario("hubs", (BUNDLED_SEEDS,), base_url="https://feeds.example.org",
             seeds_extra="include_unpublished = true", extra=HUBS),
)}


@dataclass(frozen=True)
class Built:
    """A scenario's snapshot, with the config it was built from."""

    scenario: Scenario
    config: Path
    snapshot: Snapshot

    def url(self, path: str) -> str:
        return self.scenario.base_url + path

    def bodies(self, fmt: str) -> dict[str, bytes]:
        return {path: doc.body for path, doc in self.snapshot.documents.items() if path.endswith(f".{fmt}")}


def build(scenario: Scenario, root: Path, rename: bool = False) -> Built:
    """Copy the scenario's seeds under `root` and build them cold."""
    config = prepare(scenario, root, rename)
    return Built(scenario, config, build_snapshot(load_config(config)))


def prepare(scenario: Scenario, root: Path, rename: bool = False) -> Path:
    """Copy the scenario's seeds under `root` (renamed and nested with `rename`); the config's path."""
    for folder in scenario.folders:
        target = root / "seeds" / folder.name
        if not rename:
            shutil.copytree(folder, target)
            continue
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        for i, file in enumerate(files):
            renamed = target / "deeper" / f"{len(files) - i:03d}-renamed-{file.name}"
            renamed.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, renamed)
    return write_config(root / "seedfeeds.toml", root / "seeds", base_url=scenario.base_url,
                        seeds_extra=scenario.seeds_extra, extra=scenario.extra)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Built]:
    return {name: build(s, tmp_path_factory.mktemp(name)) for name, s in SCENARIOS.items()}


@pytest.fixture(params=list(SCENARIOS))
def case(request, built) -> Built:
    return built[request.param]


# --- reading documents back


def rfc_3339(value: str) -> datetime:
    assert RFC_3339.match(value), f"not an RFC 3339 date-time: {value!r}"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def rfc_822(value: str) -> datetime:
    moment = parsedate_to_datetime(value)
    assert moment.tzinfo is not None, f"no time zone in {value!r}"
    return moment


def atom_entries(body: bytes) -> list[dict[str, Any]]:
    return [{"id": e.findtext("atom:id", namespaces=NS), "title": e.findtext("atom:title", namespaces=NS),
             "published": rfc_3339(e.findtext("atom:published", namespaces=NS)),
             "updated": rfc_3339(e.findtext("atom:updated", namespaces=NS))}
            for e in parse_xml(body).iterfind("atom:entry", NS)]


def rss_items(body: bytes) -> list[dict[str, Any]]:
    return [{"id": i.findtext("guid"), "title": i.findtext("title"), "published": rfc_822(i.findtext("pubDate"))}
            for i in parse_xml(body).iterfind("channel/item")]


def json_items(body: bytes) -> list[dict[str, Any]]:
    return [{"id": i["id"], "title": i.get("title"), "published": rfc_3339(i["date_published"]),
             "updated": rfc_3339(i["date_modified"])} for i in json.loads(body)["items"]]


def entry_ids(path: str, body: bytes) -> list[str]:
    read = {"atom": atom_entries, "rss": rss_items, "json": json_items}[path.rsplit(".", 1)[1]]
    return [e["id"] for e in read(body)]


def is_forbidden_character(code: int) -> bool:
    """Outside XML 1.0's Char production, a C1 control, or a noncharacter."""
    allowed = (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
               or 0x10000 <= code <= 0x10FFFF)
    return not allowed or 0x7F <= code <= 0x9F or 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


# --- Atom: RFC 4287


@pytest.fixture(scope="module")
def jing_errors(built, tmp_path_factory) -> dict[tuple[str, str], list[str]]:
    """jing's complaints about every Atom document of every scenario, by (scenario, path), from one run."""
    jing = shutil.which("jing")
    if jing is None:
        pytest.fail("jing is missing: apt-get install jing (./run test installs it)")
    folder = tmp_path_factory.mktemp("atom")
    files: dict[str, tuple[str, str]] = {}
    for name, result in built.items():
        for path, body in result.bodies("atom").items():
            file = folder / f"{name}{path.replace('/', '~')}"
            file.write_bytes(body)
            files[str(file)] = (name, path)
    # A canary jing must reject (atom:id, atom:title and atom:updated are missing): proof it validated.
    canary = folder / "canary.atom"
    canary.write_text('<feed xmlns="http://www.w3.org/2005/Atom"/>', encoding="utf-8")
    files[str(canary)] = ("canary", "")
    run = subprocess.run([jing, "-c", str(ATOM_SCHEMA), *files], capture_output=True, text=True, timeout=120)
    errors: dict[tuple[str, str], list[str]] = {key: [] for key in files.values()}
    for line in run.stdout.splitlines():
        match = re.match(r"^(.+?):(\d+):(\d+): (?:error|fatal): (.*)$", line)
        if not match or match.group(1) not in files:
            pytest.fail(f"jing said something about no document:\n{run.stdout}{run.stderr}")
        errors[files[match.group(1)]].append(f"line {match.group(2)}: {match.group(4)}")
    if not errors.pop(("canary", "")):
        pytest.fail(f"jing accepted an invalid canary, so it validated nothing:\n{run.stdout}{run.stderr}")
    return errors


def test_atom_documents_match_the_rfc_4287_schema(case, jing_errors):
    """Every Atom document is valid against the RELAX NG schema of RFC 4287, Appendix B."""
    invalid = {path: found for (name, path), found in jing_errors.items() if name == case.scenario.name and found}
    assert invalid == {}


def test_atom_documents_keep_the_rules_jing_skips(case):
    """Every Atom feed has an author or one on each entry, and each entry an alternate link or content
    (the schema's Schematron rules, RFC 4287 sections 4.1.1 and 4.1.2)."""
    for path, body in case.bodies("atom").items():
        feed = parse_xml(body)
        for entry in feed.iterfind("atom:entry", NS):
            where = (path, entry.findtext("atom:id", namespaces=NS))
            assert feed.find("atom:author", NS) is not None or entry.find("atom:author", NS) is not None, where
            assert entry.xpath("atom:link[@rel='alternate' or not(@rel)] or atom:content", namespaces=NS), where


def test_atom_feeds_name_themselves_and_date_everything_in_rfc_3339(case):
    """Every Atom feed's self link is its own URL, its entry ids are unique, and every date is RFC 3339."""
    for path, body in case.bodies("atom").items():
        feed = parse_xml(body)
        assert feed.xpath("atom:link[@rel='self']/@href", namespaces=NS) == [case.url(path)]
        ids = feed.xpath("atom:entry/atom:id/text()", namespaces=NS)
        assert len(ids) == len(set(ids)), path
        for date in feed.xpath(".//atom:updated/text() | .//atom:published/text()", namespaces=NS):
            rfc_3339(date)


# --- RSS 2.0 (https://www.rssboard.org/rss-specification)


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_xml_documents_are_well_formed_utf8(case, fmt):
    """Every Atom and RSS document is well-formed, namespace-correct UTF-8 XML with the right root."""
    for path, body in case.bodies(fmt).items():
        body.decode("utf-8")
        assert XML_DECLARATION.match(body), path
        root = parse_xml(body)
        assert root.tag == (ATOM_FEED if fmt == "atom" else "rss"), path


def test_rss_channels_have_what_rss_2_0_requires(case):
    """Every RSS document is version 2.0 with one channel holding a title, link and description,
    and an atom:link rel=self to the document's own URL."""
    for path, body in case.bodies("rss").items():
        rss = parse_xml(body)
        assert rss.get("version") == "2.0", path
        channels = rss.findall("channel")
        assert len(channels) == 1, path
        for required in ("title", "link", "description"):
            assert len(channels[0].findall(required)) == 1, (path, required)
        assert channels[0].findtext("title").strip(), path
        assert channels[0].xpath("atom:link[@rel='self']/@href", namespaces=NS) == [case.url(path)]


def test_rss_items_have_a_title_or_description_a_guid_and_an_rfc_822_date(case):
    """Every RSS item has a title or a description, a unique guid and a pubDate in RFC 822 form."""
    for path, body in case.bodies("rss").items():
        guids = []
        for item in parse_xml(body).iterfind("channel/item"):
            guid = item.findtext("guid")
            assert guid, path
            assert (item.findtext("title") or "").strip() or (item.findtext("description") or "").strip(), guid
            rfc_822(item.findtext("pubDate"))
            guids.append(guid)
        assert len(guids) == len(set(guids)), path


def test_rss_last_build_date_is_the_newest_entry_update(case):
    """Every RSS lastBuildDate is the latest update of the feed's entries (never the build time),
    and no item is newer."""
    for path, body in case.bodies("rss").items():
        built_at = rfc_822(parse_xml(body).findtext("channel/lastBuildDate"))
        updates = [item["updated"] for item in json_items(case.snapshot.documents[path[:-3] + "json"].body)]
        if updates:
            assert built_at == max(updates), path
        assert all(item["published"] <= built_at for item in rss_items(body)), path


# --- JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/)


def _check_authors(authors: Any, where: str) -> None:
    assert isinstance(authors, list) and authors, where
    for author in authors:
        assert isinstance(author, dict) and set(author) <= JSON_AUTHOR_KEYS, (where, author)
        assert isinstance(author.get("name"), str) and author["name"].strip(), (where, author)


def test_json_feeds_follow_json_feed_1_1(case):
    """Every JSON feed has the 1.1 version URL, a title, items, its own URL as feed_url and authors with names."""
    for path, body in case.bodies("json").items():
        feed = json.loads(body.decode("utf-8"))
        assert feed["version"] == JSON_FEED_VERSION, path
        assert isinstance(feed["title"], str) and feed["title"].strip(), path
        assert isinstance(feed["items"], list), path
        assert feed["feed_url"] == case.url(path)
        assert "author" not in feed, path  # deprecated in 1.1
        _check_authors(feed["authors"], path)
        for key in ("home_page_url", "description", "language", "icon", "favicon"):
            assert isinstance(feed.get(key, ""), str), (path, key)
        for hub in feed.get("hubs", []):  # each hub an object with a type and a URL
            assert isinstance(hub, dict) and set(hub) == {"type", "url"}, (path, hub)
            assert all(isinstance(value, str) and value for value in hub.values()), (path, hub)


def test_json_items_follow_json_feed_1_1(case):
    """Every JSON item has a unique string id, content_html or content_text, RFC 3339 dates,
    and well-formed authors and tags."""
    for path, body in case.bodies("json").items():
        items = json.loads(body)["items"]
        for item in items:
            where = (path, item.get("id"))
            assert isinstance(item["id"], str) and item["id"], where
            assert isinstance(item.get("content_html"), str) or isinstance(item.get("content_text"), str), where
            for key in ("date_published", "date_modified"):
                if key in item:
                    rfc_3339(item[key])
            if "authors" in item:
                _check_authors(item["authors"], str(where))
            assert "author" not in item, where
            tags = item.get("tags", [])
            assert isinstance(tags, list) and all(isinstance(t, str) and t for t in tags), where
            for key in ("url", "title", "summary", "image"):
                assert isinstance(item.get(key, ""), str), (where, key)
        assert len({item["id"] for item in items}) == len(items), path


def test_json_feeds_extend_only_through_underscore_keys(case):
    """No JSON feed, item or author carries a key JSON Feed 1.1 does not define,
    unless it starts with an underscore."""
    for path, body in case.bodies("json").items():
        feed = json.loads(body)
        objects = [(feed, JSON_FEED_KEYS)] + [(item, JSON_ITEM_KEYS) for item in feed["items"]]
        objects += [(a, JSON_AUTHOR_KEYS) for o, _ in list(objects) for a in o.get("authors", [])]
        unknown = {key for obj, known in objects for key in obj if key not in known and not JSON_EXTENSION.match(key)}
        assert unknown == set(), path


# --- the same feed in every format


def test_every_format_of_a_feed_lists_the_same_entries(case):
    """Atom, RSS and JSON Feed give each feed the same entries, in the same order,
    with the same titles and dates."""
    for path, body in case.bodies("json").items():
        stem = path[: -len("json")]
        from_json = json_items(body)
        from_atom = atom_entries(case.snapshot.documents[stem + "atom"].body)
        from_rss = rss_items(case.snapshot.documents[stem + "rss"].body)
        assert from_atom == from_json, stem
        assert from_rss == [{k: e[k] for k in ("id", "title", "published")} for e in from_json], stem


# --- no active content


def test_every_hostile_seed_publishes(built):
    """Each file of the hostile corpus becomes an entry, so the checks below really read it."""
    snapshot = built["hostile"].snapshot
    assert snapshot.entry_count == len(list(HOSTILE.glob("*.txt")))
    assert [d for d in snapshot.diagnostics if d.severity == "error"] == []


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_no_text_in_any_document_reads_as_active_html(case, fmt):
    """No text or attribute of any document, read as HTML, holds a script, frame, plugin, style,
    form, meta or base element, an on* handler, or an href/src that is not an absolute http(s) URL."""
    found = {}
    for path, body in case.bodies(fmt).items():
        for where, text, is_html in texts(fmt, body):
            problems = active_content(text, plain=not is_html)
            if problems:
                found[f"{path} {where}"] = problems
    assert found == {}


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_every_link_in_a_document_is_an_absolute_http_url(case, fmt):
    """Every id, link, icon, image and author URL of every document is an absolute http(s) URL."""
    for path, body in case.bodies(fmt).items():
        if fmt == "json":
            feed = json.loads(body)
            values = [feed.get(k) for k in ("home_page_url", "feed_url", "next_url", "icon", "favicon")]
            values += [hub.get("url") for hub in feed.get("hubs", [])]
            for item in feed["items"]:
                values += [item.get(k) for k in ("id", "url", "external_url", "image", "banner_image")]
            authors = [a for o in [feed, *feed["items"]] for a in o.get("authors", [])]
            values += [a.get(k) for a in authors for k in ("url", "avatar")]
            urls = [v for v in values if v is not None]
        elif fmt == "atom":
            urls = parse_xml(body).xpath(
                "//atom:id/text() | //atom:uri/text() | //atom:icon/text() | //atom:logo/text() | //atom:link/@href"
                " | //atom:category/@scheme | //atom:generator/@uri | //media:*/@url", namespaces=NS)
        else:
            urls = parse_xml(body).xpath(
                "/rss/channel/link/text() | /rss/channel/docs/text() | //item/link/text() | //item/guid/text()"
                " | //item/comments/text() | //image/url/text() | //image/link/text() | //category/@domain"
                " | //enclosure/@url | //atom:link/@href | //media:*/@url", namespaces=NS)
        assert urls, path
        assert [u for u in urls if not is_web_url(str(u))] == [], path


def test_html_payloads_reference_no_forbidden_characters(case):
    """No HTML payload holds a character reference to a character XML 1.0 forbids, a C1 control
    or a noncharacter (the sanitizer drops those characters, so it must drop their references)."""
    found = {}
    for fmt in ("atom", "rss", "json"):
        for path, body in case.bodies(fmt).items():
            for where, text, is_html in texts(fmt, body):
                refs = [m.group(0) for m in NUMERIC_REFERENCE.finditer(text) if is_html
                        and is_forbidden_character(int(m.group(1), 16) if m.group(1) else int(m.group(2)))]
                if refs:
                    found[f"{path} {where}"] = refs
    assert found == {}


# --- the same seeds, the same bytes


@pytest.fixture(scope="module")
def rebuilt(built) -> dict[str, Snapshot]:
    """Every scenario built cold once more, over a second after the first builds."""
    time.sleep(1.1)
    return {name: build_snapshot(load_config(result.config)) for name, result in built.items()}


def test_cold_builds_a_second_apart_give_identical_bytes(case, rebuilt):
    """Two cold builds of the same seeds give every document the same body, gzip body, ETags and dates."""
    assert dict(rebuilt[case.scenario.name].documents) == dict(case.snapshot.documents)


BUILD_AND_HASH = """
import hashlib, json, sys
from feeds import build_snapshot, load_config
print(json.dumps({config: {path: hashlib.sha256(doc.body).hexdigest()
                           for path, doc in build_snapshot(load_config(config)).documents.items()}
                  for config in sys.argv[1:]}))
"""


def test_a_build_in_another_process_gives_identical_bytes(built):
    """A build in a fresh interpreter with another hash seed gives every document the same bytes."""
    configs = [str(result.config) for result in built.values()]
    run = subprocess.run([sys.executable, "-c", BUILD_AND_HASH, *configs], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONHASHSEED": "4242"}, check=True)
    elsewhere = json.loads(run.stdout)
    for result in built.values():
        here = {path: hashlib.sha256(doc.body).hexdigest() for path, doc in result.snapshot.documents.items()}
        assert elsewhere[str(result.config)] == here, result.scenario.name


def test_moved_and_touched_seed_files_give_identical_bytes(case, tmp_path):
    """Seeds copied to another folder with other modification times give every document the same bytes."""
    config = prepare(case.scenario, tmp_path)
    for file in (tmp_path / "seeds").rglob("*"):
        os.utime(file, (1_000_000_000, 1_000_000_000))
    moved = build_snapshot(load_config(config))
    assert {p: d.body for p, d in moved.documents.items()} == {p: d.body for p, d in case.snapshot.documents.items()}


def feed_entry_ids(snapshot: Snapshot) -> dict[str, list[str]]:
    return {path: entry_ids(path, doc.body) for path, doc in snapshot.documents.items()
            if path.startswith("/feeds/") and path.endswith((".atom", ".rss", ".json"))}


def test_renaming_seed_files_keeps_every_entry_id(case, tmp_path):
    """Seeds renamed into a subfolder keep every feed and every entry id, in the same order,
    whether or not the entry-id ledger saw the old names."""
    config = prepare(case.scenario, tmp_path / "known")
    before = feed_entry_ids(build_snapshot(load_config(config)))
    for i, file in enumerate(sorted(p for p in (tmp_path / "known" / "seeds").rglob("*") if p.is_file())):
        (file.parent / "deeper").mkdir(exist_ok=True)
        file.rename(file.parent / "deeper" / f"{i:03d}-renamed-{file.name}")
    assert feed_entry_ids(build_snapshot(load_config(config))) == before
    assert feed_entry_ids(build(case.scenario, tmp_path / "fresh", rename=True).snapshot) == before
    assert before == feed_entry_ids(case.snapshot)
    assert sum(len(ids) for ids in before.values()) > 0


# --- dates read back


DATED_SEED = """---
title: "Dated"
publishedDateTime: {written}
originalUrl: "https://news.example.com/dated"
---
"""


@pytest.mark.parametrize(("written", "meant"), [
    ("2021-03-04T05:06:07+05:30", "2021-03-03T23:36:07+00:00"),
    ("2021-06-01T12:00:00", "2021-06-01T12:00:00+00:00"),
    ('"Tue, 01 Jun 2021 12:00:00 +0200"', "2021-06-01T10:00:00+00:00"),
    ("1900-01-01T00:00:00Z", "1900-01-01T00:00:00+00:00"),
    ("9998-12-31T23:59:59Z", "9998-12-31T23:59:59+00:00"),
    # RFC 822 writes two-digit years: year 99 would read back as 1999.
    ("0099-01-02T03:04:05Z", None),
    ("1899-12-31T23:59:59Z", None),
    ("9999-12-31T23:59:59Z", None),
])
def test_every_format_dates_an_entry_as_its_seed_does(tmp_path, written, meant):
    """A seed's date reads back as the same instant from Atom, RSS and JSON Feed, or,
    when RSS could not say it, the seed is refused on publishedDateTime."""
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "dated.txt").write_text(DATED_SEED.format(written=written), encoding="utf-8")
    snapshot = build_snapshot(load_config(write_config(tmp_path / "seedfeeds.toml", tmp_path / "seeds")))
    if meant is None:
        assert snapshot.entry_count == 0
        assert [d.field for d in snapshot.diagnostics if d.severity == "error"] == ["publishedDateTime"]
        return
    expected = [datetime.fromisoformat(meant)]
    documents = snapshot.documents
    assert [e["published"] for e in atom_entries(documents["/feeds/all.atom"].body)] == expected
    assert [e["published"] for e in rss_items(documents["/feeds/all.rss"].body)] == expected
    assert [e["published"] for e in json_items(documents["/feeds/all.json"].body)] == expected


# --- summaries read back

AMPERSAND_SEED = """---
title: "Ampersands"
excerpt: "AT&T and P&amp;G: 2 < 3, &amp;amp;amp;amp;copy; stays text"
publishedDateTime: 2021-06-01T12:00:00Z
originalUrl: "https://news.example.com/ampersands"
---
"""


def test_a_summary_reads_back_as_the_same_text_from_every_format(tmp_path):
    """Atom's summary is text and JSON's a string; RSS readers take <description> as
    HTML, so there the same text comes escaped (the W3C validator warns of a bare
    "AT&T"), and read as HTML it is the same text again."""
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "amp.txt").write_text(AMPERSAND_SEED, encoding="utf-8")
    documents = build_snapshot(load_config(write_config(tmp_path / "seedfeeds.toml", tmp_path / "seeds"))).documents
    summary = json.loads(documents["/feeds/all.json"].body)["items"][0]["summary"]
    assert summary.startswith("AT&T and P&G: 2 < 3, &")
    atom = parse_xml(documents["/feeds/all.atom"].body).find("atom:entry/atom:summary", NS)
    assert (atom.get("type", "text"), atom.text) == ("text", summary)
    description = parse_xml(documents["/feeds/all.rss"].body).findtext("channel/item/description")
    assert description == html.escape(summary, quote=False)
    assert lxml.html.fragment_fromstring(description, create_parent="p").text_content() == summary
