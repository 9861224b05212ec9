"""URLs from hostile seeds: IPv6 literals, addresses inside the reader's own
network, bytes that are not UTF-8 in a query, backslashes that browsers read as
slashes; and that no string makes the URL functions raise."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks import is_web_url, parse_xml
from conftest import build_folder, write_seeds
from feeds.sanitize import clean_html, safe_url
from feeds.urls import canonical_url, http_url, provider_domain, why_unusable


# --- IPv6 literals ------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://[::1]:8080/a", "https://[2001:db8::1]/b", "http://user@[::1]:8080/x?q=1",
    "http://[::1/x", "http://[zz]/", "http://::1/", "http://::1:8080/x", "http://[::1]x/", "http://a[::1]/",
    "http://[::1]]/", "http://[[::1]]/", "http://[v1.fe]/", "http://[fe80::1%25eth0]/", "http://[1.2.3.4]/",
    "http://[::1]:99999/", "http://[]/",
])
def test_an_ipv6_or_bracketed_host_is_an_unusable_url(url):
    """IPv6 literals are refused (the W3C Feed Validator calls their brackets invalid
    URI characters), as are brackets anywhere else; never an exception. The id of
    such a URL (canonical_url raised "Port could not be cast") is a string."""
    assert http_url(url) is None
    assert safe_url(url) is None
    assert isinstance(canonical_url(url), str)


def test_relative_links_against_an_ipv6_article_are_unusable():
    assert http_url("/lead.png", "http://[2001:db8::1]:8080/a/b") is None
    assert http_url("https://example.com/x", "http://[::1]:8080/a/b") == "https://example.com/x"


# --- bytes that are not UTF-8 in a query ----------------------------------------------

def test_distinct_query_bytes_are_distinct_articles():
    """`%FF` and `%FE` are different bytes, so different articles; decoded as
    UTF-8 with replacement both were U+FFFD and the second was merged away."""
    ff, fe = canonical_url("https://example.com/q?id=%FF"), canonical_url("https://example.com/q?id=%FE")
    assert ff == "https://example.com/q?id=%FF"
    assert fe == "https://example.com/q?id=%FE"
    assert canonical_url("https://example.com/q?id=%EF%BF%BD") not in (ff, fe)
    assert canonical_url("https://example.com/q?%FF=1") != canonical_url("https://example.com/q?%FE=1")


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


# --- mailto --------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "published"), [
    ("mailto:desk@example.com", "mailto:desk@example.com"),
    ("mailto:a@b.example,c@d.example", "mailto:a@b.example,c@d.example"),
    ("mailto:", None), ("mailto:?subject=hi", None), ("MAILTO:%20", None), ("mailto:desk", None),
])
def test_a_mailto_link_needs_an_address(url, published):
    """A mailto: with no address opens nothing: it is no link (the body keeps the text)."""
    assert http_url(url, None, ("http", "https", "mailto")) == published


def test_a_body_link_to_no_address_keeps_its_text():
    assert clean_html('<p><a href="mailto:?subject=x">write to us</a></p>') == "<p><a>write to us</a></p>"


# --- addresses inside the reader's network ---------------------------------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1/a", "http://localhost.localdomain.127.0.0.1/", "http://10.0.0.1/", "http://172.16.5.4/",
    "http://192.168.1.1/cgi-bin/reboot", "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/",
    "http://0.0.0.0/", "http://192.0.2.1/", "http://224.0.0.1/", "http://255.255.255.255/",
    # What the WHATWG parser (every browser) reads as an IPv4 address, and Python as a name:
    "http://0x7f.1/", "http://127.1/", "http://0177.0.0.1/", "http://0x7f000001.x.0x1/", "http://www.127.0.0.1/",
    "http://1.2.3.4.5/", "http://example.123/", "http://a.0x10/", "http://09.1/", "http://8.8.8.08/",
    # Special-use names that resolve locally:
    "http://printer.local/", "http://app.localhost/", "http://db.internal/", "http://nas.home.arpa/",
    "http://x.invalid/",
])
def test_an_address_inside_the_readers_network_is_an_unusable_url(url):
    """A seed's image or link there would make every subscriber's reader send a
    request from inside their own network (a router's admin page, a cloud
    metadata service): refused, wherever in a seed it stands."""
    assert http_url(url) is None
    assert safe_url(url) is None
    assert provider_domain(urlsplit(url).hostname) is None
    assert why_unusable(url).startswith("its host is an address inside the reader's own network")


@pytest.mark.parametrize("url", ["http://8.8.8.8/x", "https://1.1.1.1:8443/dns", "http://1.2.3.4./",
                                 "https://news.example.com/2021/story", "http://a.b.c.d1/", "https://x.co/a"])
def test_global_addresses_and_names_stay_usable(url):
    assert http_url(url) is not None
    assert why_unusable("http://[::1]/") == why_unusable("javascript:alert(1)") == "not an absolute http(s) URL"


# --- never raise ------------------------------------------------------------------------

URL_PIECES = st.sampled_from([
    "http://", "https://", "http:", "//", "/", "\\", "[", "]", "::1", "2001:db8::1", ":", "8080", "@", "?", "#",
    "%", "%FF", "%zz", "%25", "&", "=", "utm_x", "www.", "example.com", "ä", "\udcff", "\ud800", ".", " ", "\t",
    "mailto:", "javascript:", "v1.x", "%eth0", "\x00", "\u3002", "xn--", "-", "127.0.0.1", "0x7f", "192.168.0.1",
    "8.8.8.8", ".local", "localhost",
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

def _seed(title: str, date: str, url: str, front: str = "", body: str = "") -> str:
    """A seed's text: title, date (YYYY-MM-DD), article URL, more front matter, body."""
    return f'---\ntitle: "{title}"\npublishedDateTime: {date}T00:00:00Z\noriginalUrl: "{url}"\n{front}---\n{body}'


def _linking(title: str, date: str, url: str, provider: str, lead: str, icon: str, link: str, image: str,
             related: str | None = None) -> str:
    """A seed of provider example.com whose lead image, provider icon, body link and
    body image (and related item, if given) point where the test says."""
    front = (f'images:\n  - url: "{lead}"\nprovider:\n  name: "{provider}"\n  domain: example.com\n'
             f'  images:\n    - url: "{icon}"\n')
    if related:
        front += (f'related:\n  - title: "Related"\n    webUrl: "{related}"\n'
                  '    publishedDateTime: 2021-01-31T00:00:00Z\n')
    return _seed(title, date, url, front,
                 f'A [link]({link}) and <img src="{image}" alt="b">.\n')


IPV6_ARTICLE = _seed("On a bare IPv6 server", "2021-02-01", "http://[2001:db8::1]:8080/a/story")
IPV6_LINKS = _linking("Links to a bare IPv6 server", "2021-02-02", "https://example.com/links", "Bare",
                      lead="http://[2001:db8::1]:8080/lead.png",
                      icon="http://[::1]:8080/icon.png", link="http://[::1]:8080/x", image="http://[::1]/body.png",
                      related="https://[2001:db8::2]/r")
NORMAL_SEED = _seed("Normal", "2021-01-01", "https://example.com/normal", body="Text.\n")


def _build(tmp_path, seeds: dict[str, str]):
    """A snapshot of a seed folder holding `seeds` (name -> text), and its errors as (file, field)."""
    snapshot = build_folder(tmp_path, write_seeds(tmp_path / "seeds", seeds))
    return snapshot, [(d.file, d.field) for d in snapshot.diagnostics if d.severity == "error"]


def test_ipv6_urls_in_seeds_are_diagnosed_not_fatal(tmp_path):
    """An article at an IPv6 literal is unusable (an error on originalUrl), an image,
    icon or link there is dropped, and every other seed publishes: the build went
    down on the first of these before."""
    snapshot, errors = _build(tmp_path, {"article.txt": IPV6_ARTICLE, "links.txt": IPV6_LINKS,
                                         "normal.txt": NORMAL_SEED})
    assert errors == [("article.txt", "originalUrl")]
    entries = {e.title: e for e in snapshot.feeds["all"].entries}
    assert set(entries) == {"Links to a bare IPv6 server", "Normal"}
    entry = entries["Links to a bare IPv6 server"]
    assert entry.image is None and entry.provider_icon is None
    assert "[" not in entry.content_html and "::1" not in entry.content_html and "Related" in entry.content_html
    for fmt in ("atom", "rss"):
        body = snapshot.documents[f"/feeds/all.{fmt}"].body
        parse_xml(body)
        assert b"[" not in body and b"::1" not in body
    items = json.loads(snapshot.documents["/feeds/all.json"].body)["items"]
    assert all(is_web_url(item["url"]) for item in items)


INSIDE_ARTICLE = _seed("On a private address", "2021-02-01", "http://10.0.0.5/story")
INSIDE_LINKS = _linking("Pointing inside", "2021-02-02", "https://example.com/inside", "Inside",
                        lead="http://169.254.169.254/latest/meta-data/lead.png", icon="http://0x7f.1/icon.png",
                        link="http://printer.local/config", image="http://192.168.1.1/reboot")


def test_addresses_inside_the_readers_network_never_reach_a_feed(tmp_path):
    """An article at one is unusable (an error on originalUrl); an image, icon or
    link there is dropped; every other seed publishes."""
    snapshot, errors = _build(tmp_path, {
        "article.txt": INSIDE_ARTICLE, "links.txt": INSIDE_LINKS,
        "normal.txt": NORMAL_SEED.replace("---\nText", "provider:\n  domain: nas.home.arpa\n---\nText")})
    assert errors == [("article.txt", "originalUrl")]
    assert [key for key in snapshot.feeds if key.startswith("providers/")] == ["providers/example.com"]
    said = {(d.file, d.field): d.message for d in snapshot.diagnostics}
    for where in (("article.txt", "originalUrl"), ("links.txt", "images[0].url"), ("links.txt", "provider.images[0].url"),
                  ("normal.txt", "provider.domain")):
        assert "inside the reader's own network" in said[where], said
    entries = {e.title: e for e in snapshot.feeds["all"].entries}
    assert set(entries) == {"Pointing inside", "Normal"}
    assert entries["Pointing inside"].image is None and entries["Pointing inside"].provider_icon is None
    for path, doc in snapshot.documents.items():  # the directory page quotes them, as text, in its diagnostics
        if not path.startswith("/feeds/"):
            continue
        for address in (b"169.254", b"0x7f", b"printer.local", b"192.168", b"10.0.0.5"):
            assert address not in doc.body, (path, address)
    assert "<p>A <a>link</a> and .</p>" in entries["Pointing inside"].content_html  # the text stays
