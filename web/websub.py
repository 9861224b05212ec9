"""WebSub publishing: tell each hub which feeds changed, in the background.

After a refresh, `Service` hands the URLs of the feed documents whose bytes
changed to `Publisher.publish`, which only queues them and returns. One worker
thread POSTs `hub.mode=publish` to each hub for each URL (the WebSub
Recommendation leaves the publish request to the hub; this form, with the URL as
both `hub.topic` and `hub.url`, is the one hubs accept). A ping that fails on
the network, times out or gets a 5xx, 408 or 429 is tried again after an
exponentially growing pause, a bounded number of times; any other answer
outside 2xx is final. Failures are logged with the hub, the topic and the
status, and counted for /healthz.
"""

from __future__ import annotations

import heapq
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from http.client import HTTPException
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlencode

from feeds.atom_rss import VERSION
from feeds.snapshot import Snapshot

log = logging.getLogger("seedfeeds.websub")

TIMEOUT = 10.0  # seconds for one publish request
ATTEMPTS = 4  # tries per (hub, topic), the first included
BACKOFF = 2.0  # seconds before the first retry; doubled before each next one
USER_AGENT = f"seedfeeds/{VERSION} (WebSub publisher)"
ANNOUNCED_FILE = "websub-announced.json"  # in the state folder: see `Announced`
RETRYABLE = frozenset({408, 429})  # besides 5xx: the hub may take the same request later

# How a ping is sent: (hub, topic, timeout) -> HTTP status; raises OSError when no answer came.
Send = Callable[[str, str, float], int]


def feed_etags(snapshot: Snapshot) -> dict[str, str]:
    """URL path -> ETag of each feed document of `snapshot` (what hubs are told about)."""
    return {path: doc.etag for path, doc in snapshot.documents.items() if path.startswith("/feeds/")}


def changed_feeds(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """URL paths in `after` whose ETag is not the one in `before` (each path -> ETag,
    see `feed_etags`): changed feed documents, new ones included."""
    return [path for path, etag in after.items() if before.get(path) != etag]


class Announced:
    """The ETag of each feed document as the hubs were last told about it, kept in a
    small JSON file in the state folder: the first build after a restart then
    publishes what changed while the service was down. A missing or unreadable
    file means nothing to compare with (and a warning when it is unreadable)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, str] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("websub: cannot read %s (%s); the first build publishes nothing", self.path, exc)
            return None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            log.warning("websub: %s is not a JSON object of ETags; the first build publishes nothing", self.path)
            return None
        return data

    def save(self, etags: Mapping[str, str]) -> None:
        """Replace the file in one step (a crash leaves the old one or the new one)."""
        staging = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            staging.write_text(json.dumps(etags, sort_keys=True, separators=(",", ":")), encoding="utf-8")
            os.replace(staging, self.path)
        except OSError as exc:
            log.warning("websub: cannot write %s (%s); a restart may miss changes made meanwhile", self.path, exc)
            staging.unlink(missing_ok=True)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirected publish is reported, not followed: urllib would resend a POST as a GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def send_publish(hub: str, topic: str, timeout: float) -> int:
    """POST one publish notification to `hub`; the HTTP status it answered."""
    form = urlencode([("hub.mode", "publish"), ("hub.topic", topic), ("hub.url", topic)]).encode("ascii")
    request = urllib.request.Request(hub, data=form, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


@dataclass(frozen=True, slots=True)
class Failure:
    """A ping given up on: where it went, what it was about, and the last answer."""

    hub: str
    topic: str
    status: str  # "HTTP 503", "timed out", "URLError: ..."
    attempts: int
    at: str  # ISO 8601, UTC


@dataclass(frozen=True, slots=True)
class _Ping:
    hub: str
    topic: str
    attempt: int = 1


class Publisher:
    """Queues publish pings and sends them in the background: one thread per hub,
    so a slow hub holds up only its own pings."""

    def __init__(self, hubs: Iterable[str], *, timeout: float = TIMEOUT, attempts: int = ATTEMPTS,
                 backoff: float = BACKOFF, send: Send = send_publish,
                 report: Callable[[str], None] = lambda outcome: None) -> None:
        self.hubs = tuple(hubs)
        self.report = report  # told each attempt's outcome: "ok", "retried" or "failed" (for /metrics)
        self.timeout, self.attempts, self.backoff, self._send = timeout, attempts, backoff, send
        self._lanes = {hub: _Lane(hub, self._attempt) for hub in self.hubs}
        self._lock = threading.Lock()  # guards the counts below
        self.published = 0
        self.failed = 0
        self.retried = 0
        self.last_failure: Failure | None = None

    def publish(self, topics: Iterable[str]) -> None:
        """Queue a ping to every hub for each topic URL; returns at once. A ping
        already waiting for the same hub and topic stands for the new one (the
        hub fetches the topic when the ping arrives)."""
        topics = list(topics)
        now = time.monotonic()
        for lane in self._lanes.values():
            lane.queue([_Ping(lane.hub, topic) for topic in topics], now)

    def status(self) -> dict[str, Any]:
        """Counts for /healthz: pings published, failed (given up), retried and still pending."""
        pending = sum(lane.pending() for lane in self._lanes.values())
        with self._lock:
            return {"hubs": list(self.hubs), "published": self.published, "failed": self.failed,
                    "retried": self.retried, "pending": pending,
                    "last_failure": asdict(self.last_failure) if self.last_failure else None}

    def close(self, timeout: float = 5.0) -> None:
        """Stop the workers; pings still queued are dropped."""
        for lane in self._lanes.values():
            lane.close(timeout)

    def _attempt(self, ping: _Ping) -> tuple[_Ping, float] | None:
        """Send one ping; count it, or give up and say why, or return its retry and the pause before it."""
        try:
            code = self._send(ping.hub, ping.topic, self.timeout)
        except (OSError, HTTPException) as exc:  # no answer: refused, reset, timed out, garbled
            reason = getattr(exc, "reason", exc)  # urllib wraps connection errors in URLError
            status = "timed out" if isinstance(reason, TimeoutError) else f"{type(reason).__name__}: {reason}"
            retry = True
        except Exception as exc:  # noqa: BLE001 - the worker thread must outlive any one ping
            status, retry = f"{type(exc).__name__}: {exc}", False
        else:
            if 200 <= code < 300:
                with self._lock:
                    self.published += 1
                self.report("ok")
                log.debug("published topic %s to hub %s", ping.topic, ping.hub)
                return None
            status, retry = f"HTTP {code}", code >= 500 or code in RETRYABLE
        fields = {"hub": ping.hub, "topic": ping.topic, "status": status, "attempt": ping.attempt}
        if retry and ping.attempt < self.attempts:
            pause = self.backoff * 2 ** (ping.attempt - 1)  # doubled after each failed attempt
            log.warning("publish to hub %s for topic %s failed (%s) at attempt %d of %d; next in %.1fs",
                        ping.hub, ping.topic, status, ping.attempt, self.attempts, pause, extra=fields)
            with self._lock:
                self.retried += 1
            self.report("retried")
            return _Ping(ping.hub, ping.topic, ping.attempt + 1), pause
        log.error("publish to hub %s for topic %s failed (%s) at attempt %d of %d; giving up",
                  ping.hub, ping.topic, status, ping.attempt, self.attempts, extra=fields)
        with self._lock:
            self.failed += 1
            self.last_failure = Failure(ping.hub, ping.topic, status, ping.attempt,
                                        datetime.now(timezone.utc).isoformat(timespec="seconds"))
        self.report("failed")
        return None


class _Lane:
    """One hub's pings, by due time, and the thread that sends them (started with the first)."""

    def __init__(self, hub: str, attempt: Callable[[_Ping], tuple[_Ping, float] | None]) -> None:
        self.hub = hub
        self._attempt = attempt
        self._due: list[tuple[float, int, _Ping]] = []  # a heap by due time, then queue order
        self._waiting: set[str] = set()  # topics in `_due`
        self._sequence = 0
        self._sending = 0
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def queue(self, pings: list[_Ping], due: float) -> None:
        with self._condition:
            if self._closed:
                return
            for ping in pings:
                self._push(ping, due)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="seedfeeds-websub", daemon=True)
                self._thread.start()
            self._condition.notify()

    def pending(self) -> int:
        with self._condition:
            return len(self._due) + self._sending

    def close(self, timeout: float) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _push(self, ping: _Ping, due: float) -> None:
        if ping.topic in self._waiting:
            return
        self._waiting.add(ping.topic)
        self._sequence += 1
        heapq.heappush(self._due, (due, self._sequence, ping))

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._closed and (not self._due or self._due[0][0] > time.monotonic()):
                    self._condition.wait(self._due[0][0] - time.monotonic() if self._due else None)
                if self._closed:
                    return
                ping = heapq.heappop(self._due)[2]
                self._waiting.discard(ping.topic)
                self._sending += 1
            retry = None
            try:
                retry = self._attempt(ping)
            finally:
                with self._condition:
                    self._sending -= 1
                    if retry is not None and not self._closed:
                        self._push(retry[0], time.monotonic() + retry[1])
