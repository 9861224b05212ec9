"""URLs from hostile seeds: IPv6 literals, bytes that are not UTF-8 in a query,
backslashes that browsers read as slashes; and that no string makes the URL
functions raise."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks import is_web_url, parse_xml
from conftest import write_config
from feeds import build_snapshot, load_config
from feeds.sanitize import safe_url
from feeds.urls import canonical_url, http_url

ATOM = "{http://www.w3.org/2005/Atom}"


# --- IPv6 literals ------------------------------------------------------------------

@pytest.mark.parametrize(("url", "published", "canonical"), [
    ("http://[::1]:8080/a", "http://[::1]:8080/a", "https://[::1]:8080/a"),
    ("https://[2001:db8::1]/b", "https://[2001:db8::1]/b", "https://[2001:db8::1]/b"),
    ("https://[2001:DB8:0:0::1]:443/b/", "https://[2001:db8::1]/b/", "https://[2001:db8::1]/b"),
    ("http://[::1]", "http://[::1]/", "https://[::1]/"),
    ("http://user@[::1]:8080/x?q=1", "http://[::1]:8080/x?q=1", "https://[::1]:8080/x?q=1"),
])
def test_an_ipv6_host_keeps_its_brackets(url, published, canonical):
    """An IPv6 address is written `[addr]`, its port after `]:`; without the
    brackets the address would read as host and port, and canonical_url raised."""
    assert http_url(url) == published
    assert safe_url(url) == published
    assert canonical_url(published) == canonical


def test_relative_links_resolve_against_an_ipv6_article():
    """Body images and links resolved against an IPv6 article URL keep its brackets."""
    assert http_url("/lead.png", "http://[2001:db8::1]:8080/a/b") == "http://[2001:db8::1]:8080/lead.png"
    assert http_url("x", "http://[::1]:8080/a/b") == "http://[::1]:8080/a/x"


@pytest.mark.parametrize("url", [
    "http://[::1/x", "http://[zz]/", "http://::1/", "http://::1:8080/x", "http://[::1]x/", "http://a[::1]/",
    "http://[::1]]/", "http://[[::1]]/", "http://[v1.fe]/", "http://[fe80::1%25eth0]/", "http://[1.2.3.4]/",
    "http://[::1]:99999/", "http://[]/",
])
def test_a_malformed_bracketed_host_is_unusable(url):
    """Brackets that are unbalanced, misplaced, or around anything but a plain IPv6
    address (IPvFuture, an interface zone) give None, never an exception."""
    assert http_url(url) is None
    assert safe_url(url) is None
    canonical_url(url)  # not from http_url, yet must not raise


# --- bytes that are not UTF-8 in a query ----------------------------------------------

def test_distinct_query_bytes_are_distinct_articles():
    """`%FF` and `%FE` are different bytes, so different articles; decoded as
    UTF-8 with replacement both were U+FFFD and the second was merged away."""
    ff, fe = canonical_url("https://example.com/q?id=%FF"), canonical_url("https://example.com/q?id=%FE")
    assert ff == "https://example.com/q?id=%FF"
    assert fe == "https://example.com/q?id=%FE"
    assert canonical_url("https://example.com/q?id=%EF%BF%BD") not in (ff, fe)
    assert canonical_url("https://example.com/q?%FF=1") != canonical_url("https://example.com/q?%FE=1")


@pytest.mark.parametrize(("url", "canonical"), [
    ("https://example.com/q?id=%ff", "https://example.com/q?id=%FF"),
    ("http://www.example.com/q/?utm_source=x&b=%C3%A9+x&a=%FF#f", "https://example.com/q?b=%C3%A9%20x&a=%FF"),
    ("https://example.com/q?id=%C3%A9&x=%E2%82", "https://example.com/q?id=%C3%A9&x=%E2%82"),
])
def test_query_bytes_still_normalize(url, canonical):
    """The same bytes written differently are one article; utm_* still goes, UTF-8 still decodes."""
    assert canonical_url(url) == canonical


# --- backslashes ------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "published"), [
    ("https://example.com\\@evil.com/", "https://example.com/@evil.com/"),
    ("https:\\\\example.com\\a\\b", "https://example.com/a/b"),
    ("HTTP://example.com\\x?q=a\\b#c\\d", "http://example.com/x?q=a%5Cb#c%5Cd"),
    ("https://example.com\\x@evil.com/y", "https://example.com/x@evil.com/y"),
    ("https://user\\:pw@example.com/", None),  # the host is "user" to a browser: not a public name
])
def test_backslashes_are_slashes_in_http_urls(url, published):
    """Browsers (WHATWG URL) read `\\` as `/` in an http(s) URL before its query,
    so the host is what precedes it; urlsplit alone would take evil.com."""
    assert http_url(url) == published


def test_a_backslash_host_is_the_browsers_host():
    """The published link and id point where a reader's browser goes: example.com."""
    url = http_url("https://example.com\\@evil.com/")
    assert urlsplit(url).hostname == "example.com"
    assert canonical_url(url) == "https://example.com/@evil.com"
    assert safe_url("https://example.com\\@evil.com/") == url


def test_relative_backslashes_resolve_as_a_browser_would():
    """Against an http(s) base, `\\\\host\\x` is scheme-relative and `a\\b` a path."""
    base = "https://example.com/a/b"
    assert http_url("\\\\evil.com\\x", base) == "https://evil.com/x"
    assert http_url("img\\x.png", base) == "https://example.com/a/img/x.png"
    assert http_url("mailto:a\\b@example.com", base, ("http", "https", "mailto")) == "mailto:a%5Cb@example.com"


# --- never raise ------------------------------------------------------------------------

URL_PIECES = st.sampled_from([
    "http://", "https://", "http:", "//", "/", "\\", "[", "]", "::1", "2001:db8::1", ":", "8080", "@", "?", "#",
    "%", "%FF", "%zz", "%25", "&", "=", "utm_x", "www.", "example.com", "ä", "\udcff", "\ud800", ".", " ", "\t",
    "mailto:", "javascript:", "v1.x", "%eth0", "\x00", "\u3002", "xn--", "-",
])
URLISH = st.lists(st.one_of(URL_PIECES, st.text(max_size=5)), max_size=12).map("".join)
ANY = st.one_of(st.text(), URLISH)


@settings(max_examples=600, deadline=None)
@given(ANY, st.one_of(st.none(), st.sampled_from(["https://example.com/a/b", "http://[::1]:8080/a/"]), ANY))
def test_url_functions_never_raise(value, base):
    """Whatever a seed holds, these give a URL or None, and an id, without raising;
    every URL they give is one a browser parses to the same host."""
    for schemes in (("http", "https"), ("http", "https", "mailto")):
        url = http_url(value, base, schemes)
        if url is not None and not url.startswith("mailto:"):
            assert is_web_url(url)
            assert isinstance(canonical_url(url), str)
            assert http_url(url) == url  # published URLs are stable under a second pass
    assert safe_url(value, base) is None or is_web_url(safe_url(value, base))
    assert isinstance(canonical_url(value), str)


# --- through a build ----------------------------------------------------------------------

IPV6_SEED = """---
title: "On a bare IPv6 server"
publishedDateTime: 2021-02-01T00:00:00Z
originalUrl: "http://[2001:db8::1]:8080/a/story"
images:
  - url: "http://[2001:db8::1]:8080/lead.png"
provider:
  name: "Bare"
  images:
    - url: "http://[::1]:8080/icon.png"
related:
  - title: "Related"
    webUrl: "https://[2001:db8::2]/r"
    publishedDateTime: 2021-01-31T00:00:00Z
---
A [relative link](../other) and <img src="/body.png" alt="b">.
"""
NORMAL_SEED = ('---\ntitle: "Normal"\npublishedDateTime: 2021-01-01T00:00:00Z\n'
               'originalUrl: "https://example.com/normal"\n---\nText.\n')


def test_an_ipv6_seed_publishes_beside_a_normal_one(tmp_path):
    """A seed whose URLs are IPv6 literals publishes with bracketed links, id,
    image, icon and body links (its canonical id aborted the build before), and
    the seed beside it publishes too."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "ipv6.txt").write_text(IPV6_SEED, encoding="utf-8")
    (seeds / "normal.txt").write_text(NORMAL_SEED, encoding="utf-8")
    snapshot = build_snapshot(load_config(write_config(tmp_path / "c.toml", seeds)))
    assert snapshot.errors == 0, snapshot.diagnostics
    entries = {e.title: e for e in snapshot.feeds["all"].entries}
    assert set(entries) == {"On a bare IPv6 server", "Normal"}
    entry = entries["On a bare IPv6 server"]
    assert entry.link == "http://[2001:db8::1]:8080/a/story"
    assert entry.id == "https://[2001:db8::1]:8080/a/story"
    assert entry.provider_icon == "http://[::1]:8080/icon.png"
    html = entry.content_html
    for url in ("http://[2001:db8::1]:8080/lead.png", "https://[2001:db8::2]/r",
                "http://[2001:db8::1]:8080/other", "http://[2001:db8::1]:8080/body.png"):
        assert f'"{url}"' in html
    assert "http://2001:db8" not in html and "http://::1" not in html

    atom = parse_xml(snapshot.documents["/feeds/all.atom"].body)
    atom_ids = [e.findtext(f"{ATOM}id") for e in atom.iter(f"{ATOM}entry")]
    assert "https://[2001:db8::1]:8080/a/story" in atom_ids and "https://example.com/normal" in atom_ids
    items = json.loads(snapshot.documents["/feeds/all.json"].body)["items"]
    urls = {item["url"] for item in items}
    assert urls == {"http://[2001:db8::1]:8080/a/story", "https://example.com/normal"}
    assert all(is_web_url(u) and urlsplit(u).port in (None, 8080) for u in urls)
