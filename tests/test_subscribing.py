"""Subscribing in one step (OPML), icons readers show, previews for browsers,
and the polling contract — against a real server on 127.0.0.1."""

from __future__ import annotations

import json
import struct

import feedparser
import pytest
from lxml import etree, html

from conftest import ROOT, write_config

FORMATS = ("atom", "rss", "json")


def _outlines(body: bytes) -> dict[str, list[etree._Element]]:
    root = etree.fromstring(body)
    assert root.get("version") == "2.0" and root.find("head/title") is not None
    return {group.get("text"): list(group) for group in root.find("body")}


@pytest.mark.parametrize("fmt", FORMATS)
def test_opml_lists_every_feed_grouped_and_each_url_parses(shared_server, fmt):
    """/feeds.opml (and ?format=rss|json) lists every feed, grouped; feedparser reads every listed URL."""
    query = "" if fmt == "atom" else f"?format={fmt}"
    status, headers, body = shared_server.get(f"/feeds.opml{query}")
    assert status == 200 and headers["Content-Type"] == "text/x-opml; charset=utf-8"
    groups = _outlines(body)
    assert list(groups) == ["Everything", "Topics", "Providers"]
    urls = [o.get("xmlUrl") for members in groups.values() for o in members]
    assert urls == [shared_server.url(f"/feeds/{key}.{fmt}") for key in
                    ("all", "topics/ai", "topics/computer-vision", "providers/forbes.com")]
    for url in urls:
        if fmt == "json":  # feedparser has no JSON Feed support
            assert json.loads(shared_server.get(url.removeprefix(shared_server.base))[2])["items"]
        else:
            parsed = feedparser.parse(url)
            assert parsed.bozo == 0 and len(parsed.entries) == 1


def test_opml_is_linked_and_autodiscoverable_from_the_directory(shared_server):
    """The directory page links the OPML file and advertises it with <link rel="outline">."""
    page = html.fromstring(shared_server.get("/")[2])
    assert page.xpath('//link[@rel="outline"]/@href') == [shared_server.url("/feeds.opml")]
    assert shared_server.url("/feeds.opml") in page.xpath("//a/@href")


def test_opml_unknown_format_is_400(shared_server):
    """?format= only takes atom, rss or json."""
    assert shared_server.get("/feeds.opml?format=xml")[0] == 400


def _png_size(body: bytes) -> tuple[int, int]:
    assert body[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", body[16:24])


def test_site_icon_is_served_square_and_at_least_192px(shared_server):
    """/icon.png is the shipped square icon, at least 192 px."""
    status, headers, body = shared_server.get("/icon.png")
    assert status == 200 and headers["Content-Type"] == "image/png"
    width, height = _png_size(body)
    assert width == height >= 192
    assert body == (ROOT / "feeds" / "static" / "icon.png").read_bytes()


def test_every_format_and_page_names_the_icon(shared_server):
    """Atom icon/logo, RSS image, JSON Feed icon/favicon and <link rel=icon> all point at an icon."""
    icon = shared_server.url("/icon.png")
    atom = feedparser.parse(shared_server.url("/feeds/all.atom")).feed
    assert atom.icon == icon and atom.logo == icon
    assert feedparser.parse(shared_server.url("/feeds/all.rss")).feed.image.href == icon
    document = json.loads(shared_server.get("/feeds/all.json")[2])
    assert document["icon"] == icon and document["favicon"] == icon
    provider = json.loads(shared_server.get("/feeds/providers/forbes.com.json")[2])
    assert provider["icon"] == icon and provider["favicon"].endswith("forbes.com-50x50.jpg")
    for path in ("/", "/feeds/all.html"):
        page = html.fromstring(shared_server.get(path)[2])
        assert page.xpath('//link[@rel="icon"]/@href') == [icon]
        assert page.xpath('//link[@rel="apple-touch-icon"]/@href') == [icon]


def test_configured_icon_replaces_the_bundled_one(tmp_path, seed_dir, start_server):
    """[site] icon points at another image, served under its own extension."""
    (tmp_path / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"/>')
    config = write_config(tmp_path / "c.toml", seed_dir)
    text = config.read_text().replace('base_url = "http://127.0.0.1:8000"',
                                      'base_url = "http://127.0.0.1:8000"\nicon = "logo.svg"')
    config.write_text(text)
    server = start_server(config)
    assert server.get("/icon.svg")[1]["Content-Type"] == "image/svg+xml"
    assert json.loads(server.get("/feeds/all.json")[2])["icon"] == "http://127.0.0.1:8000/icon.svg"


def test_rss_ttl_and_max_age_equal_the_refresh_interval(shared_server):
    """RSS <ttl> (minutes) and Cache-Control max-age (seconds) both say the real refresh interval."""
    status, headers, body = shared_server.get("/feeds/all.rss")
    assert headers["Cache-Control"] == "public, max-age=1"  # the shared server refreshes every second
    assert etree.fromstring(body).findtext("channel/ttl") == "1"  # RSS can only say whole minutes


def test_preview_page_shows_entries_and_how_to_subscribe(shared_server):
    """/feeds/<name>.html shows the feed's entries (sanitized) and its three subscribe links."""
    status, headers, body = shared_server.get("/feeds/topics/ai.html")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    page = html.fromstring(body)
    assert page.xpath("//article/h2/a/text()") == [
        "Human Rights Groups Call On The University Of Miami To Ban Facial Recognition"]
    links = page.xpath('//div[@class="subscribe"]//a/@href')
    assert links == [shared_server.url(f"/feeds/topics/ai.{fmt}") for fmt in FORMATS]
    assert page.xpath("//input/@value") == [shared_server.url("/feeds/topics/ai.atom")]
    assert not page.xpath("//script")


def test_directory_links_each_preview(shared_server):
    """Each feed's title on `/` links its preview page."""
    page = html.fromstring(shared_server.get("/")[2])
    previews = [href for href in page.xpath("//td/a/@href") if href.endswith(".html")]
    assert previews == [shared_server.url(f"/feeds/{key}.html") for key in
                        ("all", "topics/ai", "topics/computer-vision", "providers/forbes.com")]
