"""RFC 5005 archives: a reader walks from the current document back to the
first entry, every entry once; full pages never change."""

from __future__ import annotations

import json
import subprocess

import feedparser
import pytest
from lxml import etree

from conftest import free_port, wait_for, write_config, write_stories
from feeds import build_snapshot, load_config
from test_validity import ATOM_SCHEMA

HISTORY = "{http://purl.org/syndication/history/1.0}archive"


@pytest.fixture
def server(tmp_path, start_server):
    seeds = tmp_path / "seeds"
    write_stories(seeds, range(1, 8))
    port = free_port()
    config = write_config(tmp_path / "c.toml", seeds, base_url=f"http://127.0.0.1:{port}", refresh_seconds=1,
                          feeds_extra="entries_per_feed = 2")
    return start_server(config, port)


def _walk(server, path: str) -> list[list[str]]:
    """Titles of each document from `path` following prev-archive links to the oldest page."""
    pages, url = [], server.url(path)
    while url:
        parsed = feedparser.parse(url)
        assert parsed.bozo == 0 and parsed.status == 200, url
        pages.append([e.title for e in parsed.entries])
        url = next((link.href for link in parsed.feed.get("links", []) if link.rel == "prev-archive"), None)
    return pages


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_walking_prev_archive_reaches_every_entry_once(server, fmt):
    """From the current document, prev-archive links lead through pages that together hold every entry once."""
    pages = _walk(server, f"/feeds/all.{fmt}")
    assert pages == [["Story 7", "Story 6"], ["Story 5"], ["Story 4", "Story 3"], ["Story 2", "Story 1"]]
    assert _walk(server, f"/feeds/topics/robots.{fmt}") == pages


def test_json_feed_pages_through_next_url(server):
    """JSON Feed's next_url leads from the current document through the same pages."""
    titles, path = [], "/feeds/all.json"
    while path:
        document = json.loads(server.get(path)[2])
        titles.extend(item["title"] for item in document["items"])
        path = document.get("next_url", "").removeprefix(server.base) or None
    assert titles == [f"Story {n}" for n in range(7, 0, -1)]


def test_archive_pages_say_so_and_point_home(server):
    """Each archive page carries <fh:archive/> and a `current` link; the current document carries neither."""
    current = etree.fromstring(server.get("/feeds/all.atom")[2])
    assert current.find(HISTORY) is None
    for page in (1, 2, 3):
        root = etree.fromstring(server.get(f"/feeds/all/archive/{page}.atom")[2])
        assert root.find(HISTORY) is not None
        rels = {link.get("rel"): link.get("href") for link in root.iter("{http://www.w3.org/2005/Atom}link")}
        assert rels["current"] == server.url("/feeds/all.atom")
    rss = etree.fromstring(server.get("/feeds/all/archive/2.rss")[2])
    assert rss.find(f"channel/{HISTORY}") is not None


def test_full_pages_are_immutable_and_stay_put(server):
    """Full pages are served as immutable and keep their bytes when new entries arrive; the newest page fills up."""
    full, partial = server.get("/feeds/all/archive/1.atom"), server.get("/feeds/all/archive/3.atom")
    assert full[1]["Cache-Control"] == "public, max-age=31536000, immutable"
    assert partial[1]["Cache-Control"] == "public, max-age=1"
    write_stories(server.config.parent / "seeds", [8])
    wait_for(lambda: b"Story 8" in server.get("/feeds/all.atom")[2])
    assert server.get("/feeds/all/archive/1.atom")[2] == full[2]
    assert server.get("/feeds/all/archive/1.atom")[1]["ETag"] == full[1]["ETag"]
    assert _walk(server, "/feeds/all.atom")[1] == ["Story 6", "Story 5"]  # page 3 is now full


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_a_full_page_kept_gzipped_only_is_served_byte_for_byte_without_gzip(server, fmt):
    """The server keeps full archive pages gzipped only; a reader asking without gzip
    (GET or HEAD, fresh or revalidating) gets exactly a build's bytes and headers."""
    path = f"/feeds/all/archive/1.{fmt}"
    built = build_snapshot(load_config(server.config)).documents[path]
    status, headers, body = server.get(path, {"Accept-Encoding": "identity"})
    assert (status, body, headers["Content-Length"]) == (200, built.body, str(len(built.body)))
    assert headers.get("Content-Encoding") is None and headers["ETag"] == f'"{built.etag}"'
    status, headers, body = server.get(path, {"Accept-Encoding": "gzip"})
    assert (status, body, headers["Content-Encoding"]) == (200, built.gzip_body, "gzip")
    status, headers, body = server.get(path, {"Accept-Encoding": "identity"}, method="HEAD")
    assert (status, body, headers["Content-Length"]) == (200, b"", str(len(built.body)))
    assert server.get(path, {"If-None-Match": f'"{built.etag}"'})[0] == 304


def test_archive_pages_are_valid_atom(tmp_path, server):
    """Archive pages validate against RFC 4287's schema (the fh:archive marker is a foreign element)."""
    files = []
    for page in (1, 2, 3):
        path = tmp_path / f"page{page}.atom"
        path.write_bytes(server.get(f"/feeds/all/archive/{page}.atom")[2])
        files.append(str(path))
    result = subprocess.run(["jing", "-c", str(ATOM_SCHEMA), *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_static_build_holds_the_archive_pages(server, tmp_path):
    """`build --out` writes the same archive pages."""
    from conftest import SEEDFEEDS

    out = tmp_path / "site"
    subprocess.run([SEEDFEEDS, "build", "--out", str(out), "--config", str(server.config)], check=True,
                   capture_output=True)
    assert (out / "feeds/all/archive/1.atom").read_bytes() == server.get("/feeds/all/archive/1.atom")[2]
    assert (out / "feeds/topics/robots/archive/3.json.gz").exists()
