"""RFC 3229 delta feeds: a poll naming an earlier version with `A-IM: feed` gets
226 IM Used and only the new or changed entries — much fewer bytes."""

from __future__ import annotations

import feedparser
import pytest

from conftest import wait_for

NEW = ('---\ntitle: "Brand new {n}"\nexcerpt: "{text}"\npublishedDateTime: 2022-01-0{n}T00:00:00Z\n'
       'originalUrl: "https://example.com/new-{n}"\n---\n')


def _add(server, n: int) -> None:
    (server.config.parent / "seeds" / f"new-{n}.md").write_text(NEW.format(n=n, text="x " * 400), encoding="utf-8")
    wait_for(lambda: f"Brand new {n}".encode() in server.get("/feeds/all.atom")[2])


@pytest.fixture
def bigger(server):
    """The bundled server with all five records published, so a full document is a real size."""
    config = server.config.read_text()
    server.config.write_text(config.replace("[seeds]\n", "[seeds]\ninclude_unpublished = true\n"))
    return server


@pytest.mark.parametrize("fmt", ["atom", "rss", "json"])
def test_delta_holds_only_the_new_entry(server, fmt):
    """If-None-Match with the old ETag and A-IM: feed gets 226, IM: feed, the new entry only,
    and the current document's ETag."""
    path = f"/feeds/all.{fmt}"
    _, old, full_before = server.get(path)
    _add(server, 1)
    status, headers, body = server.get(path, {"If-None-Match": old["ETag"], "A-IM": "feed"})
    assert status == 226 and headers["IM"] == "feed"
    assert headers["ETag"] == server.get(path)[1]["ETag"]
    assert b"Brand new 1" in body and b"Human Rights Groups Call" not in body
    full = server.get(path)[2]
    assert len(body) < len(full)


def test_feedparser_polls_with_a_im_and_gets_the_delta(server):
    """feedparser sends A-IM: feed by itself: its poll with the old ETag gets 226 and one entry."""
    first = feedparser.parse(server.url("/feeds/all.atom"))
    _add(server, 2)
    second = feedparser.parse(server.url("/feeds/all.atom"), etag=first.etag)
    assert second.status == 226
    assert [e.title for e in second.entries] == ["Brand new 2"]
    third = feedparser.parse(server.url("/feeds/all.atom"), etag=second.etag)
    assert third.status == 304


def test_unknown_base_gets_the_full_document(server):
    """An ETag we never sent (or no longer keep) with A-IM: feed gets the whole feed, 200."""
    status, headers, body = server.get("/feeds/all.atom", {"If-None-Match": '"forgotten"', "A-IM": "feed"})
    assert status == 200 and "IM" not in headers and b"Human Rights Groups Call" in body


def test_current_etag_with_a_im_is_still_304(server):
    """A client that is up to date gets 304, A-IM or not."""
    etag = server.get("/feeds/all.rss")[1]["ETag"]
    assert server.get("/feeds/all.rss", {"If-None-Match": etag, "A-IM": "feed"})[0] == 304


def test_delta_saves_bandwidth(bigger, capsys):
    """With five entries published, a delta carrying one new entry is a fraction of the full poll."""
    wait_for(lambda: b"Washington Examiner" in bigger.get("/feeds/all.atom")[2])
    _, old, _ = bigger.get("/feeds/all.atom", {"Accept-Encoding": "gzip"})
    _add(bigger, 3)
    _, _, full = bigger.get("/feeds/all.atom", {"Accept-Encoding": "gzip"})
    status, _, delta = bigger.get("/feeds/all.atom", {"If-None-Match": old["ETag"], "A-IM": "feed",
                                                      "Accept-Encoding": "gzip"})
    assert status == 226
    with capsys.disabled():
        print(f"\n[delta] bytes per poll (gzip): full {len(full)}, delta {len(delta)} ({len(delta) / len(full):.0%})")
    assert len(delta) < 0.6 * len(full)
