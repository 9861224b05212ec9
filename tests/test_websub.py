"""WebSub push: every feed names its hubs, and each refresh publishes exactly the feeds
whose bytes changed, in the background, with retries; failures show on /healthz.

The end-to-end test runs a real hub (Flask-WebSub's, `websub_hub.py`) and a
subscriber, both on 127.0.0.1; the other tests use small recording hubs.
"""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from werkzeug.test import Client

from checks import parse_xml
from conftest import BUNDLED_SEEDS, free_port, wait_for, write_config
from feeds import build_snapshot, load_config
from web import create_app
from web.refresh import Service
from web.websub import ANNOUNCED_FILE, Publisher

HUB_SCRIPT = Path(__file__).resolve().parent / "websub_hub.py"
ATOM = "{http://www.w3.org/2005/Atom}"
HUBS = ("https://hub.example.org/", "http://hub.example.net:8080/publish?site=news&x=1")
LINK = re.compile(r'<([^>]*)>\s*;\s*rel="([^"]*)"')

NEW_SEED = """---
title: "WebSub pushes this new entry"
excerpt: "A brand new entry about computer vision."
publishedDateTime: 2023-03-01T09:00:00Z
originalUrl: "https://newsdesk.example/vision/push"
provider:
  name: Newsdesk
  domain: newsdesk.example
topics:
  - Computer Vision
---
Pushed, not polled.
"""


def hubs_toml(*hubs: str) -> str:
    return "[websub]\nhubs = [" + ", ".join(json.dumps(h) for h in hubs) + "]\n"


def links(header: str | None) -> list[tuple[str, str]]:
    """(rel, URL) of each link in a Link header."""
    return [(rel, url) for url, rel in LINK.findall(header or "")]


def add_seed(folder: Path, name: str = "pushed.txt", text: str = NEW_SEED) -> None:
    """Write a seed under a name no glob matches, then rename it: a rescan never reads half a file."""
    (folder / f"{name}.part").write_text(text, encoding="utf-8")
    (folder / f"{name}.part").rename(folder / name)


# --- recording HTTP servers in this process


@dataclass
class Seen:
    """One request a recording server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message  # names compared case-insensitively
    body: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode("ascii"))


class _Handler(BaseHTTPRequestHandler):
    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        parts = urlsplit(self.path)
        seen = Seen(self.command, parts.path, parse_qs(parts.query), self.headers,
                    self.rfile.read(length))
        with self.server.lock:
            self.server.seen.append(seen)
        status, body = self.server.answer(seen)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _record

    def log_message(self, *args) -> None:
        pass


class Recorder(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that records every request and answers with `answer(seen)`."""

    daemon_threads = True

    def __init__(self, answer: Callable[[Seen], tuple[int, bytes]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = answer
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, name="recorder", daemon=True).start()

    def url(self, path: str = "/hub") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def requests(self, method: str = "POST", path: str | None = None) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == method and (path is None or s.path == path)]

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that timed out and left
            super().handle_error(request, client_address)


@pytest.fixture
def recorder():
    """Start recording servers; each is stopped when the test ends."""
    started: list[Recorder] = []
    releases: list[threading.Event] = []

    def start(answer: Callable[[Seen], tuple[int, bytes]] = lambda seen: (204, b""),
              release: threading.Event | None = None) -> Recorder:
        server = Recorder(answer)
        started.append(server)
        if release is not None:
            releases.append(release)
        return server

    yield start
    for release in releases:
        release.set()
    for server in started:
        server.stop()


def statuses(*codes: int) -> Callable[[Seen], tuple[int, bytes]]:
    """Answer the n-th request with the n-th code (the last one from then on)."""
    calls = itertools.count()

    def answer(seen: Seen) -> tuple[int, bytes]:
        return codes[min(next(calls), len(codes) - 1)], b""

    return answer


@pytest.fixture
def publishers():
    """Make publishers; each worker thread is stopped when the test ends."""
    made: list[Publisher] = []

    def make(hubs, **options) -> Publisher:
        made.append(Publisher(hubs, **options))
        return made[-1]

    yield make
    for publisher in made:
        publisher.close()


def settled(publisher: Publisher) -> dict:
    """The publisher's status once nothing is pending."""
    return wait_for(lambda: (s := publisher.status())["pending"] == 0 and s)


# --- what the documents and responses advertise


@pytest.fixture(scope="module")
def hub_config(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hubs")
    return write_config(folder / "seedfeeds.toml", BUNDLED_SEEDS, base_url="https://feeds.example.org/news",
                        extra=hubs_toml(*HUBS) + f'[state]\npath = "{folder}/state"\n')


def test_every_feed_document_names_each_hub(hub_config):
    """Each Atom feed has a link rel=hub per hub, each RSS channel an atom:link rel=hub, each JSON Feed a hubs list."""
    snapshot = build_snapshot(load_config(hub_config))
    feeds = [path for path in snapshot.documents if path.startswith("/feeds/") and not path.endswith(".html")]
    assert len(feeds) >= 9
    for path in feeds:
        body = snapshot.documents[path].body
        if path.endswith(".atom"):
            found = parse_xml(body).xpath("a:link[@rel='hub']/@href", namespaces={"a": ATOM[1:-1]})
        elif path.endswith(".rss"):
            found = parse_xml(body).xpath("channel/a:link[@rel='hub']/@href", namespaces={"a": ATOM[1:-1]})
        else:
            hubs = json.loads(body)["hubs"]
            assert {h["type"] for h in hubs} == {"WebSub"}, path
            found = [h["url"] for h in hubs]
        assert found == list(HUBS), path


def test_without_hubs_nothing_names_a_hub(tmp_path):
    """With no hubs configured, no document or response mentions a hub and no Link header is sent."""
    config = load_config(write_config(tmp_path / "c.toml", BUNDLED_SEEDS, extra=f'[state]\npath = "{tmp_path}/s"'))
    snapshot = build_snapshot(config)
    for path, doc in snapshot.documents.items():
        assert b'"hub"' not in doc.body and b'"hubs"' not in doc.body and doc.links == "", path
    response = Client(create_app(config)).get("/feeds/all.atom")
    assert "Link" not in response.headers


@pytest.mark.parametrize("path", ["/feeds/all.atom", "/feeds/all.rss", "/feeds/topics/ai.json",
                                  "/feeds/all.atom?limit=1"])
def test_feed_responses_link_their_hubs_and_themselves(hub_config, path):
    """A feed response's Link header names each hub (rel="hub") and the feed's public URL (rel="self"),
    on 200 and 304 alike."""
    client = Client(create_app(load_config(hub_config)))
    response = client.get(path)
    own = "https://feeds.example.org/news" + path.split("?")[0]
    assert links(response.headers.get("Link")) == [("hub", HUBS[0]), ("hub", HUBS[1]), ("self", own)]
    again = client.get(path, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers.get("Link") == response.headers["Link"]
    assert "Link" not in client.get("/").headers


# --- the publisher


def test_a_ping_posts_publish_with_the_feed_as_topic_and_url(recorder, publishers):
    """A ping is a form POST with hub.mode=publish and the feed's URL as both hub.topic and hub.url."""
    hub = recorder()
    publisher = publishers([hub.url()])
    publisher.publish(["https://feeds.example.org/feeds/all.atom"])
    assert settled(publisher)["published"] == 1
    [seen] = hub.requests()
    assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert seen.form == {"hub.mode": ["publish"], "hub.topic": ["https://feeds.example.org/feeds/all.atom"],
                         "hub.url": ["https://feeds.example.org/feeds/all.atom"]}


def test_every_hub_gets_every_topic(recorder, publishers):
    """Each topic is published to each configured hub."""
    hubs = [recorder(), recorder()]
    publisher = publishers([hub.url() for hub in hubs])
    publisher.publish(["https://f.example/feeds/a.atom", "https://f.example/feeds/b.rss"])
    assert settled(publisher)["published"] == 4
    for hub in hubs:
        assert sorted(s.form["hub.topic"][0] for s in hub.requests()) == [
            "https://f.example/feeds/a.atom", "https://f.example/feeds/b.rss"]


def test_a_failing_hub_is_retried_after_growing_pauses(recorder, publishers):
    """A 503 is retried after the backoff, then after twice the backoff, until the hub accepts."""
    hub = recorder(statuses(503, 503, 202))
    publisher = publishers([hub.url()], backoff=0.2, attempts=4)
    publisher.publish(["https://f.example/feeds/all.atom"])
    status = settled(publisher)
    assert (status["published"], status["retried"], status["failed"]) == (1, 2, 0)
    first, second, third = (s.at for s in hub.requests())
    assert 0.2 <= second - first < 1.0 and 0.4 <= third - second < 1.5


def test_a_hub_that_keeps_failing_is_given_up_logged_and_reported(recorder, publishers, caplog):
    """After the last attempt the ping is counted as failed, logged with hub, topic and status,
    and kept as the last failure."""
    hub = recorder(statuses(500))
    publisher = publishers([hub.url()], backoff=0.01, attempts=3)
    with caplog.at_level(logging.WARNING, logger="seedfeeds.websub"):
        publisher.publish(["https://f.example/feeds/all.atom"])
        status = settled(publisher)
    assert len(hub.requests()) == 3
    assert (status["published"], status["failed"], status["retried"]) == (0, 1, 2)
    failure = status["last_failure"]
    assert (failure["hub"], failure["topic"], failure["status"], failure["attempts"]) == (
        hub.url(), "https://f.example/feeds/all.atom", "HTTP 500", 3)
    final = caplog.records[-1]
    assert (final.levelname, final.hub, final.topic, final.status) == (
        "ERROR", hub.url(), "https://f.example/feeds/all.atom", "HTTP 500")
    assert hub.url() in final.getMessage() and "HTTP 500" in final.getMessage()


@pytest.mark.parametrize("code", [400, 404, 301])
def test_a_refusal_is_not_retried(recorder, publishers, code):
    """A 4xx (but 408 and 429) or a redirect is final: one request, one failure."""
    hub = recorder(statuses(code))
    publisher = publishers([hub.url()], backoff=0.01)
    publisher.publish(["https://f.example/feeds/all.atom"])
    status = settled(publisher)
    assert len(hub.requests()) == 1
    assert (status["failed"], status["last_failure"]["status"]) == (1, f"HTTP {code}")


def test_an_unreachable_hub_is_reported(publishers):
    """A hub nobody listens on fails with the connection error as its status."""
    publisher = publishers([f"http://127.0.0.1:{free_port()}/hub"], backoff=0.01, attempts=2)
    publisher.publish(["https://f.example/feeds/all.atom"])
    status = settled(publisher)
    assert status["failed"] == 1 and "Connection refused" in status["last_failure"]["status"]


def test_a_silent_hub_times_out_and_publish_never_waits(recorder, publishers):
    """publish() returns at once even when the hub hangs; the ping fails as timed out."""
    release = threading.Event()
    hub = recorder(lambda seen: (release.wait(10), (204, b""))[1], release=release)
    publisher = publishers([hub.url()], timeout=0.3, backoff=0.01, attempts=2)
    began = time.monotonic()
    publisher.publish([f"https://f.example/feeds/{n}.atom" for n in range(5)])
    assert time.monotonic() - began < 0.1
    status = wait_for(lambda: (s := publisher.status())["failed"] == 5 and s)
    assert status["last_failure"]["status"] == "timed out"


def test_a_hanging_hub_holds_up_only_its_own_pings(recorder, publishers):
    """While one hub holds a ping, another hub still gets every topic."""
    release = threading.Event()
    stuck = recorder(lambda seen: (release.wait(10), (204, b""))[1], release=release)
    quick = recorder()
    publisher = publishers([stuck.url(), quick.url()])
    publisher.publish([f"https://f.example/feeds/{n}.atom" for n in range(3)])
    wait_for(lambda: len(quick.requests()) == 3)
    assert len(stuck.requests()) == 1
    release.set()
    assert settled(publisher)["published"] == 6


def test_a_waiting_ping_stands_for_a_repeat(recorder, publishers):
    """A topic published again while its ping still waits is sent once, not twice."""
    release = threading.Event()
    hub = recorder(lambda seen: (release.wait(10), (204, b""))[1], release=release)
    publisher = publishers([hub.url()])
    publisher.publish(["https://f.example/feeds/first.atom"])
    wait_for(lambda: hub.requests())  # the first ping is in flight; the rest wait behind it
    publisher.publish(["https://f.example/feeds/second.atom"])
    publisher.publish(["https://f.example/feeds/second.atom"])
    release.set()
    assert settled(publisher)["published"] == 2
    assert [s.form["hub.topic"][0] for s in hub.requests()] == [
        "https://f.example/feeds/first.atom", "https://f.example/feeds/second.atom"]


# --- refreshes publish what changed


@pytest.fixture
def service_with_hub(tmp_path, seed_dir, recorder):
    """A refresh service on a copy of the bundled seeds, publishing to a recording hub."""
    hub = recorder()
    config = load_config(write_config(tmp_path / "c.toml", seed_dir, base_url="https://feeds.example.org",
                                      extra=hubs_toml(hub.url())))
    service = Service(config)
    yield service, hub, seed_dir
    service.publisher.close()


def test_a_refresh_publishes_exactly_the_feeds_whose_bytes_changed(service_with_hub):
    """After a seed is added, every feed document whose bytes changed is published, and no other;
    the first build and a refresh that changed nothing publish nothing."""
    service, hub, seeds = service_with_hub
    assert service.refresh()
    before = {path: doc.body for path, doc in service.snapshot.documents.items()}
    assert service.refresh()  # nothing changed
    add_seed(seeds)
    assert service.refresh()
    after = {path: doc.body for path, doc in service.snapshot.documents.items()}
    changed = {"https://feeds.example.org" + path for path, body in after.items()
               if path.startswith("/feeds/") and before.get(path) != body}
    assert "https://feeds.example.org/feeds/topics/computer-vision.atom" in changed
    assert "https://feeds.example.org/feeds/topics/ai.atom" not in changed
    assert settled(service.publisher)["published"] == len(changed)
    assert sorted(s.form["hub.topic"][0] for s in hub.requests()) == sorted(changed)


def test_a_restart_publishes_what_changed_while_the_service_was_down(tmp_path, seed_dir, recorder, caplog):
    """The ETags last announced are kept in the state folder: the first build after a
    restart publishes exactly the feeds that changed meanwhile; the very first run,
    and a restart with nothing changed, publish nothing."""
    hub = recorder()
    config = load_config(write_config(tmp_path / "c.toml", seed_dir, base_url="https://feeds.example.org",
                                      extra=hubs_toml(hub.url())))

    def run_once() -> tuple[dict[str, bytes], int]:
        """Start a service, build once, stop it: its feed bodies, and the pings it sent."""
        service = Service(config)
        try:
            assert service.refresh()
            return ({path: doc.body for path, doc in service.snapshot.documents.items()},
                    settled(service.publisher)["published"])
        finally:
            service.publisher.close()

    first, pinged = run_once()
    assert pinged == 0 and (config.state_path / ANNOUNCED_FILE).is_file()
    assert run_once()[1] == 0  # restarted, nothing changed
    add_seed(seed_dir)  # while no service runs
    after, pinged = run_once()
    changed = sorted("https://feeds.example.org" + path for path, body in after.items()
                     if path.startswith("/feeds/") and first.get(path) != body)
    assert "https://feeds.example.org/feeds/topics/computer-vision.atom" in changed
    assert pinged == len(changed)
    assert sorted(s.form["hub.topic"][0] for s in hub.requests()) == changed
    assert run_once()[1] == 0  # what that restart announced is remembered too
    (config.state_path / ANNOUNCED_FILE).write_text("[not, an object", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="seedfeeds.websub"):
        assert run_once()[1] == 0  # unreadable: nothing to compare with, said so, and written anew
    assert "cannot read" in caplog.text
    assert json.loads((config.state_path / ANNOUNCED_FILE).read_text(encoding="utf-8")) == {
        path: doc.etag for path, doc in build_snapshot(config).documents.items() if path.startswith("/feeds/")}


def test_a_hanging_hub_delays_no_refresh(tmp_path, seed_dir, recorder):
    """Refreshes return at their usual pace while the hub holds every ping."""
    release = threading.Event()
    hub = recorder(lambda seen: (release.wait(10), (204, b""))[1], release=release)
    service = Service(load_config(write_config(tmp_path / "c.toml", seed_dir, extra=hubs_toml(hub.url()))))
    try:
        service.refresh()
        for n in range(3):
            add_seed(seed_dir, f"pushed-{n}.txt", NEW_SEED.replace("/push", f"/push-{n}"))
            began = time.monotonic()
            assert service.refresh()
            assert time.monotonic() - began < 2.0
        assert service.publisher.status()["pending"] > 0
    finally:
        release.set()
        service.publisher.close()


# --- end to end: a real hub, a subscriber, and `seedfeeds serve`


@dataclass
class HubProcess:
    """Flask-WebSub's hub (`websub_hub.py`) as a subprocess on 127.0.0.1."""

    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hub"

    def post(self, form: dict[str, str]) -> int:
        request = urllib.request.Request(self.url, data=urlencode(form).encode(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            exc.close()
            return exc.code


@pytest.fixture
def websub_hub(tmp_path):
    """A real WebSub hub process, awaited with a deadline and stopped by PID."""
    port = free_port()
    log = tmp_path / "hub.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, str(HUB_SCRIPT), str(port), str(tmp_path / "hub.sqlite3")],
                                   stdout=out, stderr=subprocess.STDOUT,
                                   env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"})
    hub = HubProcess(port, process, log)

    def listening() -> bool:
        if process.poll() is not None:
            pytest.fail(f"the hub exited with {process.returncode}:\n{log.read_text()}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_for(listening, timeout=30)
        yield hub
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(timeout=10)


def _subscriber_answer(seen: Seen) -> tuple[int, bytes]:
    """Confirm every verification of intent by echoing its challenge; accept every delivery."""
    if seen.method == "GET" and seen.query.get("hub.mode") == ["subscribe"]:
        return 200, seen.query["hub.challenge"][0].encode()
    return (204 if seen.method == "POST" else 404), b""


def _delivered(seen: Seen) -> bytes:
    # Flask-WebSub fetches the topic with gzip accepted, decodes it, and forwards
    # the topic's headers (Content-Encoding included) with the decoded body.
    body = seen.body
    return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body


def test_a_subscriber_gets_the_new_entry_through_a_real_hub(tmp_path, seed_dir, start_server, websub_hub,
                                                            recorder):
    """A subscriber of a changed feed receives its new document with the new entry through Flask-WebSub's hub;
    a subscriber of an unchanged feed receives nothing, and a hub refusing pings shows on /healthz."""
    subscriber = recorder(_subscriber_answer)
    refusing = recorder(statuses(400))  # a second hub that records what it is sent and refuses it
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path / "seedfeeds.toml", seed_dir, base_url=base, refresh_seconds=1,
                          extra=hubs_toml(websub_hub.url, refusing.url()))
    server = start_server(config, port)
    changing, unchanged = base + "/feeds/topics/computer-vision.atom", base + "/feeds/topics/ai.json"
    for topic, callback in ((changing, "/changing"), (unchanged, "/unchanged")):
        assert websub_hub.post({"hub.mode": "subscribe", "hub.topic": topic,
                                "hub.callback": subscriber.url(callback), "hub.lease_seconds": "3600"}) == 202
    verified = {s.query["hub.topic"][0] for s in subscriber.requests("GET")}
    assert verified == {changing, unchanged}, websub_hub.log.read_text()

    add_seed(seed_dir)
    [delivery] = wait_for(lambda: subscriber.requests("POST", "/changing"), timeout=30)
    feed = parse_xml(_delivered(delivery))
    assert feed.findtext(f"{ATOM}entry/{ATOM}title") == "WebSub pushes this new entry"
    assert ("self", changing) in links(delivery.headers.get("Link"))
    assert ("hub", websub_hub.url) in links(delivery.headers.get("Link"))

    health = wait_for(lambda: (h := json.loads(server.get("/healthz")[2])["websub"])["pending"] == 0
                      and h["failed"] and h, timeout=30)
    pinged = {s.form["hub.topic"][0] for s in refusing.requests()}
    assert changing in pinged and unchanged not in pinged
    assert health["published"] == len(pinged)  # the real hub took every ping the refusing one was sent
    assert health["failed"] == len(pinged)
    assert (health["last_failure"]["hub"], health["last_failure"]["status"]) == (refusing.url(), "HTTP 400")
    assert health["last_failure"]["topic"] in pinged
    assert subscriber.requests("POST", "/unchanged") == []
    assert f"hub {refusing.url()} for topic" in server.logs() and "HTTP 400" in server.logs()
