"""Real readers against a real server: feedparser and newsboat read what seedfeeds serves.

Every request goes to 127.0.0.1 only: the module's `shared_server` (a `seedfeeds
serve` subprocess; these tests only read), or a recording reverse proxy in this
process that relays to it.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import sqlite3
import subprocess
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import feedparser
import pytest

# The one published seed, 000_3416384145912650.txt, as readers should see it.
TITLE = "Human Rights Groups Call On The University Of Miami To Ban Facial Recognition"
LINK = ("https://www.forbes.com/sites/rachelsandler/2020/10/27/"
        "human-rights-groups-call-on-the-university-of-miami-to-ban-facial-recognition/")
ID = ("https://forbes.com/sites/rachelsandler/2020/10/27/"
      "human-rights-groups-call-on-the-university-of-miami-to-ban-facial-recognition")
PUBLISHED = datetime(2020, 10, 27, 10, 37, tzinfo=timezone.utc)
AUTHOR = "Forbes"
TOPICS = ["Computer Vision", "AI"]
SUMMARY = ("More than 20 human rights organizations have called on the University of Miami to ban "
           "facial recognition, after students accused the school of using the technology to "
           "identify student protesters, which the university has denied.")
# The four bundled seeds with `published: false`.
UNPUBLISHED_TITLES = (
    "Ban dangerous facial recognition technology that reinforces racist police work",
    "Human Rights Organizations Call for Corporate Ban on Facial Recognition Tech",
    "Privacy rights groups call for \u2018day of action\u2019 to ban facial recognition at all schools",
    "Human and civil rights groups call for ban on police facial recognition technology",
)

FEEDS = ("all", "topics/computer-vision", "providers/forbes.com")
FORMATS = ("atom", "rss", "json")
# feedparser 6.0 (6.0.14 installed) has no JSON Feed parser: it reports a JSON
# document as malformed XML (bozo). JSON Feed is checked with `json` against
# the JSON Feed 1.1 spec instead (test_json_feed_holds_the_published_entry).
XML_FORMATS = ("atom", "rss")
FEEDPARSER_VERSIONS = {"atom": "atom10", "rss": "rss20"}
# newsboat reads no JSON Feed in any release (newsboat/newsboat#426, still
# open); 2.21 logs "XML root node is NULL" for one and exits 0. So Atom and RSS.
NEWSBOAT_FORMATS = XML_FORMATS
NEWSBOAT_RUNS = 4
NEWSBOAT_TIMEOUT = 30


def utc(parsed) -> datetime:
    """feedparser's UTC struct_time as an aware datetime."""
    return datetime(*parsed[:6], tzinfo=timezone.utc)


# --- feedparser


@pytest.mark.parametrize("fmt", XML_FORMATS)
@pytest.mark.parametrize("feed", FEEDS)
def test_feedparser_reads_the_published_entry(shared_server, feed: str, fmt: str) -> None:
    """feedparser parses each Atom and RSS feed cleanly and finds the one published entry, every field intact."""
    parsed = feedparser.parse(shared_server.url(f"/feeds/{feed}.{fmt}"))
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.status == 200
    assert parsed.version == FEEDPARSER_VERSIONS[fmt]
    [entry] = parsed.entries
    assert entry.title == TITLE
    assert entry.link == LINK
    assert entry.id == ID
    assert utc(entry.published_parsed) == PUBLISHED
    assert entry.author == AUTHOR
    assert [tag.term for tag in entry.tags] == TOPICS
    assert entry.summary == SUMMARY


@pytest.mark.parametrize("feed", FEEDS)
def test_json_feed_holds_the_published_entry(shared_server, feed: str) -> None:
    """Each JSON feed is a JSON Feed 1.1 document holding the one published entry, every field intact."""
    status, headers, body = shared_server.get(f"/feeds/{feed}.json")
    assert status == 200
    assert headers.get_content_type() == "application/feed+json"
    document = json.loads(body)
    # https://www.jsonfeed.org/version/1.1/: version, title and items are required.
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(document["title"], str) and document["title"]
    assert document["feed_url"] == shared_server.url(f"/feeds/{feed}.json")
    [item] = document["items"]
    assert item["id"] == ID
    assert item["url"] == LINK
    assert item["title"] == TITLE
    assert datetime.fromisoformat(item["date_published"]) == PUBLISHED
    assert [author["name"] for author in item["authors"]] == [AUTHOR]
    assert item["tags"] == TOPICS
    assert item["summary"] == SUMMARY
    # An item must have content_html or content_text.
    assert isinstance(item["content_html"], str) and SUMMARY in item["content_html"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("feed", FEEDS)
def test_unpublished_entries_appear_in_no_feed(shared_server, feed: str, fmt: str) -> None:
    """No feed holds an unpublished seed, as an entry or anywhere in its bytes."""
    status, _, body = shared_server.get(f"/feeds/{feed}.{fmt}")
    assert status == 200
    if fmt == "json":
        titles = [item["title"] for item in json.loads(body)["items"]]
    else:
        titles = [entry.title for entry in feedparser.parse(body).entries]
    assert titles == [TITLE]
    text = body.decode("utf-8")
    assert [title for title in UNPUBLISHED_TITLES if title in text] == []


# --- a recording reverse proxy, so tests can see the requests readers send

# RFC 9110 section 7.6.1: connection-specific headers are not forwarded.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                        "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"})
# http.client writes the upstream's own Host.
NOT_FORWARDED = HOP_BY_HOP | {"host"}


@dataclass(frozen=True)
class Exchange:
    """One relayed request: its path and headers, and the upstream's answer (header names lowercase)."""

    path: str
    request_headers: dict[str, str]
    status: int
    response_headers: dict[str, str]

    @property
    def conditional(self) -> bool:
        return "if-none-match" in self.request_headers or "if-modified-since" in self.request_headers


class _Relay(BaseHTTPRequestHandler):
    server: "RecordingProxy"

    def do_GET(self) -> None:
        forwarded = {k: v for k, v in self.headers.items() if k.lower() not in NOT_FORWARDED}
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=10)
        try:
            upstream.request("GET", self.path, headers=forwarded)
            response = upstream.getresponse()
            body = response.read()
        finally:
            upstream.close()
        relayed = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        # Recorded before answering: once the client has its response, the exchange is in the list.
        self.server.record(Exchange(self.path, {k.lower(): v for k, v in self.headers.items()},
                                    response.status, {k.lower(): v for k, v in relayed}))
        # send_response_only: the upstream's own Date and Server go back, not this proxy's.
        self.send_response_only(response.status, response.reason)
        for name, value in relayed:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Silent: the test asserts on `exchanges`, not on stderr."""


class RecordingProxy(ThreadingHTTPServer):
    """A reverse proxy on 127.0.0.1 relaying GETs to `upstream`, recording each exchange."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Relay)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        # A short poll so that shutdown() returns at once, not after the default 0.5 s.
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="recording-proxy", daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def exchanges_for(self, path: str) -> list[Exchange]:
        with self._lock:
            return [x for x in self.exchanges if x.path == path]

    def start(self) -> "RecordingProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def proxy(shared_server):
    """A recording proxy in front of `shared_server`, shut down when the test ends."""
    recording = RecordingProxy(shared_server.base).start()
    yield recording
    recording.stop()


@pytest.mark.parametrize("validators", [("etag",), ("modified",), ("etag", "modified")],
                         ids=["etag", "modified", "both"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_feedparser_revalidation_gets_304(proxy, fmt: str, validators: tuple[str, ...]) -> None:
    """feedparser given the ETag and/or Last-Modified of its last fetch sends them back and gets 304."""
    path = f"/feeds/all.{fmt}"
    # For JSON feedparser only does the HTTP here (it has no JSON Feed parser): its first
    # parse is bozo, but the status and validators it reports come from the response.
    first = feedparser.parse(proxy.url(path))
    assert first.status == 200
    second = feedparser.parse(proxy.url(path), **{name: first[name] for name in validators})
    assert second.status == 304
    assert second.entries == []
    fetch, refetch = proxy.exchanges_for(path)
    assert (fetch.status, fetch.conditional) == (200, False)
    assert refetch.status == 304
    assert refetch.request_headers.get("if-none-match") == (first.etag if "etag" in validators else None)
    sent_since = refetch.request_headers.get("if-modified-since")
    if "modified" in validators:
        assert parsedate_to_datetime(sent_since) == parsedate_to_datetime(first.modified)
    else:
        assert sent_since is None
    assert refetch.response_headers["etag"] == fetch.response_headers["etag"]


# --- newsboat, headless


@dataclass
class Newsboat:
    """newsboat with its own config, URL list, cache and $HOME, all under `root`."""

    root: Path
    urls: list[str]

    def __post_init__(self) -> None:
        if shutil.which("newsboat") is None:
            pytest.fail("newsboat is not installed (apt-get install newsboat)")
        (self.root / "home").mkdir(parents=True, exist_ok=True)
        (self.root / "urls").write_text("".join(f"{url}\n" for url in self.urls), encoding="utf-8")
        # One attempt per feed, no proxy: a failed fetch shows as a missing row, at once.
        (self.root / "config").write_text("download-retries 1\ndownload-timeout 10\n"
                                          "reload-threads 1\nuse-proxy no\n", encoding="utf-8")

    @property
    def cache(self) -> Path:
        return self.root / "cache.db"

    @property
    def log(self) -> str:
        path = self.root / "newsboat.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def reload(self) -> None:
        """`newsboat -x reload` once: fetch every URL into the cache and exit."""
        home = self.root / "home"
        # A minimal environment: no $HOME but ours, no *_proxy variables for libcurl to follow.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
               "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local/share"),
               "XDG_CACHE_HOME": str(home / ".cache"), "LANG": "C.UTF-8", "TERM": "dumb"}
        # subprocess.run kills this very child (by its PID) if the timeout passes.
        done = subprocess.run(
            ["newsboat", "-x", "reload", "-u", str(self.root / "urls"), "-c", str(self.cache),
             "-C", str(self.root / "config"), "-l", "4", "-d", str(self.root / "newsboat.log")],
            env=env, cwd=self.root, stdin=subprocess.DEVNULL, capture_output=True,
            timeout=NEWSBOAT_TIMEOUT, check=False)
        assert done.returncode == 0, (done.stdout, done.stderr, self.log)

    def query(self, sql: str) -> list[tuple]:
        with sqlite3.connect(f"file:{self.cache}?mode=ro", uri=True) as db:
            return db.execute(sql).fetchall()


@pytest.mark.parametrize("fmt", NEWSBOAT_FORMATS)
def test_newsboat_reads_atom_and_rss(shared_server, tmp_path: Path, fmt: str) -> None:
    """newsboat fetches the feed into its cache with the published entry's fields and no unpublished one."""
    url = shared_server.url(f"/feeds/all.{fmt}")
    newsboat = Newsboat(tmp_path / "newsboat", [url])
    newsboat.reload()
    assert newsboat.query("SELECT rssurl, title FROM rss_feed") == [(url, "Test feeds")], newsboat.log
    items = newsboat.query("SELECT feedurl, title, url, guid, author, pubDate FROM rss_item")
    assert items == [(url, TITLE, LINK, ID, AUTHOR, int(PUBLISHED.timestamp()))], newsboat.log
    [(content,)] = newsboat.query("SELECT content FROM rss_item")
    assert SUMMARY in content
    assert [title for title in UNPUBLISHED_TITLES if title in content] == []


@pytest.mark.parametrize("fmt", NEWSBOAT_FORMATS)
def test_newsboat_third_fetch_gets_304(proxy, tmp_path: Path, fmt: str) -> None:
    """newsboat revalidates with the validators seedfeeds gave it and gets 304 Not Modified from its third fetch on."""
    path = f"/feeds/all.{fmt}"
    newsboat = Newsboat(tmp_path / "newsboat", [proxy.url(path)])
    for _ in range(NEWSBOAT_RUNS):
        newsboat.reload()
    exchanges = proxy.exchanges_for(path)
    assert len(exchanges) == NEWSBOAT_RUNS, newsboat.log
    first = exchanges[0]
    assert (first.status, first.conditional) == (200, False)
    # newsboat 2.21 stores the validators of a fetch in its rss_feed row, which a
    # fresh cache creates only after the first fetch: the second fetch is still
    # unconditional, and the third is the first to send If-None-Match/If-Modified-Since.
    assert [x.conditional for x in exchanges[2:]] == [True] * (NEWSBOAT_RUNS - 2)
    assert [x.status for x in exchanges] == [304 if x.conditional else 200 for x in exchanges]
    for later in exchanges[2:]:
        assert later.request_headers["if-none-match"] == first.response_headers["etag"]
        assert (parsedate_to_datetime(later.request_headers["if-modified-since"])
                == parsedate_to_datetime(first.response_headers["last-modified"]))
        assert later.response_headers["etag"] == first.response_headers["etag"]
    # A 304 leaves what newsboat already has in place.
    assert newsboat.query("SELECT title, url FROM rss_item") == [(TITLE, LINK)]
