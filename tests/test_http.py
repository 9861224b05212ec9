"""The HTTP contract, against a real `seedfeeds serve` on 127.0.0.1."""

from __future__ import annotations

import gzip
import json

import pytest

from conftest import BUNDLED_SEEDS, write_config

MEDIA_TYPES = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
FEED_PATHS = [
    "/feeds/all.{fmt}",
    "/feeds/topics/computer-vision.{fmt}",
    "/feeds/topics/ai.{fmt}",
    "/feeds/providers/forbes.com.{fmt}",
]


@pytest.mark.parametrize("fmt", MEDIA_TYPES)
@pytest.mark.parametrize("template", FEED_PATHS)
def test_every_feed_is_served_with_its_media_type_and_caching_headers(shared_server, template, fmt):
    """Each feed answers 200 with the right Content-Type, a strong ETag, Last-Modified and caching headers."""
    status, headers, body = shared_server.get(template.format(fmt=fmt))
    assert status == 200
    assert headers["Content-Type"] == MEDIA_TYPES[fmt]
    assert headers["ETag"].startswith('"') and not headers["ETag"].startswith("W/")
    assert headers["Last-Modified"].endswith("GMT")
    assert headers["Cache-Control"] == "public, max-age=1"
    assert headers["Vary"] == "Accept-Encoding"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert int(headers["Content-Length"]) == len(body)


def test_directory_page_lists_every_feed_with_autodiscovery(shared_server):
    """`/` is HTML linking every feed in three formats, with <link rel=alternate> for the main feeds."""
    status, headers, body = shared_server.get("/")
    page = body.decode()
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<link rel="alternate" type="application/atom+xml"' in page
    for template in FEED_PATHS:
        for fmt in MEDIA_TYPES:
            assert f'href="{shared_server.base}{template.format(fmt=fmt)}"' in page
    assert "4 unpublished" in page


def test_matching_if_none_match_gets_304(shared_server):
    """An ETag sent back in If-None-Match gets 304 with the same validators and no body."""
    _, headers, _ = shared_server.get("/feeds/all.atom")
    status, again, body = shared_server.get("/feeds/all.atom", {"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""
    assert again["ETag"] == headers["ETag"]
    assert again["Cache-Control"] == headers["Cache-Control"]


def test_matching_if_modified_since_gets_304(shared_server):
    """Last-Modified sent back in If-Modified-Since gets 304."""
    _, headers, _ = shared_server.get("/feeds/all.rss")
    status, _, _ = shared_server.get("/feeds/all.rss", {"If-Modified-Since": headers["Last-Modified"]})
    assert status == 304


def test_stale_validators_get_the_full_document(shared_server):
    """A different ETag or an older date gets 200 and the body."""
    assert shared_server.get("/feeds/all.json", {"If-None-Match": '"nope"'})[0] == 200
    assert shared_server.get("/feeds/all.json", {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})[0] == 200


def test_if_none_match_wins_over_if_modified_since(shared_server):
    """RFC 9110 13.2.2: with If-None-Match present, If-Modified-Since is ignored."""
    _, headers, _ = shared_server.get("/feeds/all.atom")
    status, _, _ = shared_server.get("/feeds/all.atom", {"If-None-Match": '"other"',
                                                  "If-Modified-Since": headers["Last-Modified"]})
    assert status == 200


def test_gzip_is_sent_when_accepted_and_has_its_own_etag(shared_server):
    """With Accept-Encoding: gzip the body is gzip of the plain body, under a distinct ETag that also revalidates."""
    _, plain_headers, plain = shared_server.get("/feeds/all.atom")
    status, headers, body = shared_server.get("/feeds/all.atom", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == plain
    assert headers["ETag"] != plain_headers["ETag"]
    assert shared_server.get("/feeds/all.atom", {"Accept-Encoding": "gzip", "If-None-Match": headers["ETag"]})[0] == 304


def test_gzip_refused_with_q_zero(shared_server):
    """`gzip;q=0` means no gzip."""
    _, headers, _ = shared_server.get("/feeds/all.atom", {"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in headers


def test_head_gives_headers_without_body(shared_server):
    """HEAD answers like GET with no body."""
    _, get_headers, body = shared_server.get("/feeds/all.rss")
    status, headers, head_body = shared_server.get("/feeds/all.rss", method="HEAD")
    assert status == 200 and head_body == b""
    assert headers["ETag"] == get_headers["ETag"]
    assert int(headers["Content-Length"]) == len(body)


@pytest.mark.parametrize("path", ["/feeds/nope.atom", "/feeds/all.xml", "/feeds/topics/unknown.rss",
                                  "/feeds/providers/example.org.json", "/nothing"])
def test_unknown_feed_or_format_is_404_pointing_home(shared_server, path):
    """Unknown feeds and formats get a short 404 page that links to `/`."""
    status, headers, body = shared_server.get(path)
    assert status == 404
    assert headers["Content-Type"].startswith("text/html")
    assert b'href="/"' in body and len(body) < 1000


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(shared_server, method):
    """Only GET and HEAD are allowed on feeds."""
    status, headers, _ = shared_server.get("/feeds/all.atom", method=method)
    assert status == 405
    assert "GET" in headers["Allow"]


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "51", "1e3", "99999999999999999999", ""])
def test_bad_limit_is_400(shared_server, limit):
    """`?limit=` must be an integer from 1 to entries_per_feed."""
    assert shared_server.get(f"/feeds/all.atom?limit={limit}")[0] == 400


def test_limit_bounds_the_entries(tmp_path, start_server):
    """`?limit=N` returns the newest N entries, and is itself cacheable."""
    config = write_config(tmp_path / "c.toml", BUNDLED_SEEDS, seeds_extra="include_unpublished = true")
    server = start_server(config)
    full = json.loads(server.get("/feeds/all.json")[2])
    status, headers, body = server.get("/feeds/all.json?limit=2")
    assert status == 200
    assert [i["id"] for i in json.loads(body)["items"]] == [i["id"] for i in full["items"][:2]]
    assert server.get("/feeds/all.json?limit=2", {"If-None-Match": headers["ETag"]})[0] == 304


def test_healthz_reports_age_and_entries(shared_server):
    """/healthz gives the snapshot's age and its entry count."""
    status, headers, body = shared_server.get("/healthz")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok"
    assert health["entries"] == 1
    assert 0 <= health["snapshot_age_seconds"] < 30
    assert headers["Cache-Control"] == "no-store"
