"""Property-based: for arbitrary front-matter values the pipeline yields a valid
entry or a diagnostic, and every document it emits parses and carries no
active content."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import lxml.html
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checks import active_content, is_web_url, parse_xml, texts
from conftest import write_config
from feeds import Builder, load_config

# Text that looks like what attackers and broken feeds send: markup, entities,
# script URLs, control characters, odd Unicode.
HOSTILE_PIECES = st.sampled_from([
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "javascript:alert(1)", "&lt;b&gt;",
    "<![CDATA[x]]>", "]]>", "<svg onload=alert(1)>", "&#0;", "&#x6A;avascript:", "\u202e", "\x00", "\x1b",
    "<a href='//evil'>", "<!--", "-->", "%6Aavascript:", "data:text/html,x", "\ud7ff", "\ufffe", "NO", "1:20",
    "https://example.com/x", "  ", "\r\n", "---",
])
TEXT = st.lists(st.one_of(st.text(max_size=20), HOSTILE_PIECES), max_size=6).map("".join)
SCALAR = st.one_of(TEXT, st.integers(-10**20, 10**20), st.floats(allow_nan=True), st.booleans(), st.none())
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)
URL = st.one_of(st.sampled_from(["https://example.com/a", "http://www.Example.com/a/", "ftp://x/y",
                                 "javascript:alert(1)", "//example.com/p", "/relative"]), TEXT)
DATE = st.one_of(st.sampled_from(["2021-01-01T00:00:00Z", "2021-01-01 10:00", "2021-01-01", "Tue, 27 Oct 2020 10:37:00 GMT",
                                  "0099-01-01T00:00:00Z", "9999-12-31T23:59:59-05:00", "yesterday"]), TEXT, VALUE)
SEED = st.fixed_dictionaries(
    {"title": st.one_of(TEXT, VALUE), "originalUrl": URL, "publishedDateTime": DATE},
    optional={
        "webUrl": URL, "excerpt": st.one_of(TEXT, VALUE), "updatedDateTime": DATE, "category": VALUE,
        "published": st.one_of(st.booleans(), VALUE), "quality": VALUE, "topics": st.one_of(st.lists(TEXT), VALUE),
        "provider": st.one_of(st.fixed_dictionaries({"name": TEXT, "domain": st.one_of(TEXT, URL)},
                                                    optional={"images": VALUE}), VALUE),
        "images": st.one_of(st.lists(st.fixed_dictionaries({"url": URL}, optional={"width": VALUE})), VALUE),
        "related": st.one_of(st.lists(st.fixed_dictionaries({"title": TEXT, "webUrl": URL},
                                                            optional={"publishedDateTime": DATE})), VALUE),
        "secured": TEXT,
    },
)


def page_problems(body: bytes) -> list[str]:
    """Active content in one of our HTML pages (which legitimately have <style>, <meta>, <link>)."""
    problems = []
    for element in lxml.html.document_fromstring(body).iter():
        if not isinstance(element.tag, str):
            continue
        if element.tag in ("script", "iframe", "object", "embed", "form", "base", "svg", "math"):
            problems.append(element.tag)
        for name, value in element.attrib.items():
            if name.startswith("on") or (name in ("href", "src") and not is_web_url(value) and value != "/"):
                problems.append(f"{element.tag} {name}={value!r}")
    return problems


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEED, body=TEXT)
def test_any_front_matter_gives_an_entry_or_a_diagnostic_and_safe_documents(seed, body):
    """Whatever the values, the build succeeds; the file publishes or is reported;
    every document parses and no text in it reads as active HTML."""
    folder = Path(tempfile.mkdtemp(prefix="seedfeeds-prop-"))
    try:
        (folder / "seeds").mkdir()
        text = "---\n" + yaml.safe_dump(seed, allow_unicode=True) + "---\n" + body
        (folder / "seeds" / "seed.md").write_text(text, encoding="utf-8", errors="surrogatepass")
        config = load_config(write_config(folder / "c.toml", folder / "seeds", seeds_extra="include_unpublished = true"))
        snapshot = Builder(config).build()
        errors = [d for d in snapshot.diagnostics if d.severity == "error"]
        assert (snapshot.entry_count == 1) != bool(errors), snapshot.diagnostics
        for path, doc in snapshot.documents.items():
            fmt = path.rsplit(".", 1)[-1] if path != "/" else "html"
            if fmt in ("atom", "rss", "json"):
                for where, value, is_html in texts(fmt, doc.body):  # parses it, too
                    assert not active_content(value, plain=not is_html), (path, where, value)
            elif fmt == "html":
                assert not page_problems(doc.body)
            elif fmt == "opml":
                outlines = parse_xml(doc.body).iter("outline")
                assert all(is_web_url(o.get("xmlUrl")) for o in outlines if o.get("xmlUrl") is not None)
            else:
                assert doc.media_type.startswith("image/"), path
    finally:
        shutil.rmtree(folder)


GLOB_PIECES = st.sampled_from(["*", ".", "txt", "md", "?", "[", "]", "x", "-", "a", "!"])
ANY_GLOB = st.lists(GLOB_PIECES, min_size=1, max_size=5).map("".join)
SUFFIX_GLOB = st.sampled_from(["*.txt", "*.md", "*.markdown", "*.x", "*.a.txt", "*.-"])
NAME = st.lists(st.sampled_from(["a", ".", "txt", "md", "markdown", "x", "*", "[", "-", "\n", "é"]),
                max_size=6).map("".join)


@given(st.one_of(st.lists(SUFFIX_GLOB, min_size=1, max_size=3),
                 st.lists(st.one_of(SUFFIX_GLOB, ANY_GLOB), min_size=1, max_size=3)), NAME)
@settings(max_examples=1000, deadline=None)
def test_seed_file_names_match_the_globs_as_fnmatch_says(globs, name):
    """The scan's fast suffix test for "*.txt"-style globs answers as fnmatch does, and so
    does its fallback for any other glob."""
    import fnmatch

    from feeds.records import name_matcher

    assert bool(name_matcher(globs)(name)) == any(fnmatch.fnmatchcase(name, g) for g in globs)


FILES = st.sampled_from(["a.txt", "b.txt", "c.txt", "d.txt"])
URLS = st.sampled_from(["https://x.test/1", "https://x.test/2", "https://x.test/3", "https://x.test/4"])
ROUNDS = st.lists(st.dictionaries(FILES, URLS, max_size=4), min_size=1, max_size=6)


@given(rounds=ROUNDS)
@settings(max_examples=500, deadline=None)
def test_an_entry_the_ledger_cannot_renumber_keeps_its_url_as_id(rounds):
    """A cold build keeps a whole entry (to serialize it again) only when
    `Ledger.may_renumber` says so: after any history of builds (files whose
    URLs were corrected, swapped, removed, added again), an entry it says no to
    publishes under its canonical URL."""
    from feeds.ledger import Ledger

    ledger = Ledger()
    for urls in rounds:
        unsure = {file: ledger.may_renumber(file, url) for file, url in urls.items()}
        ids = ledger.assign(urls)
        for file, url in urls.items():
            assert unsure[file] or ids[file] == url, (file, url, ids)
