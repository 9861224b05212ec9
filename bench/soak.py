"""A bounded soak test: a real server under concurrent load while the seeds churn.

    python bench/soak.py [--seconds 120] [--connections 64] [--seeds 2000]

Generates a corpus with bench/generate.py in a temp folder, starts `seedfeeds
serve` on a free 127.0.0.1 port with `refresh_seconds = 1`, and for SECONDS runs:

- CONNECTIONS keep-alive HTTP/1.1 connections (threads spread over a few
  processes) requesting every URL the directory page links to (each feed in each
  format, and whatever else it offers), `/`, `/healthz` and `?limit=N`, with
  and without gzip, some conditional on an ETag from an earlier response. Every
  response is checked: status 200 or 304 (304 only when asked), and every 200
  body parses, gunzipped: Atom and RSS with lxml (right media type and root
  element), JSON with json.loads, HTML to its `</html>`;
- a churn process adding, retitling (atomic rename), truncating mid-front-matter
  (the writer is caught mid-write and finishes 0.5-3 s later) and deleting
  seed files, a few times a second;
- a monitor sampling, every second, the RSS of the server and every process
  under it (/proc), and /healthz.

It prints a table and exits 0 when every target holds: no failed request, no
5xx, no unparseable document, no ERROR or traceback in the server log, and no
server process whose mean RSS over the last 10 s exceeds its mean over the 10 s
ending the first minute (the first half of shorter runs) by 10 % and 5 MiB.
It stops by itself: every process has a deadline (and the whole run an alarm),
and the server, the helper processes and the temp folder are cleaned up on any
exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import ctypes
import gzip
import http.client
import json
import multiprocessing as mp
import os
import queue
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

from lxml import etree, html

from generate import PROVIDER_COUNT, generate, make_providers, make_title, seed_text  # bench/ is sys.path[0]

SEEDFEEDS = Path(sys.executable).with_name("seedfeeds")
HOST = "127.0.0.1"
REQUEST_TIMEOUT = 15.0  # seconds; a slower answer is a failed request
STARTUP_DEADLINE = 120.0  # seconds for `seedfeeds serve` to build the corpus and answer /healthz
RSS_WINDOW = 10.0  # seconds of RSS samples averaged at the end of the first minute, and at the end
RSS_GROWTH_LIMIT = 0.10  # last window's mean RSS may exceed the first's by less than this...
RSS_NOISE_KIB = 5 * 1024  # ...or by less than this, for small processes
LIMITS = (1, 5, 10, 20)
# Live counters, one row per connection: the monitor prints their sums as the run goes.
REQUESTS, FAILED, SERVER_ERRORS, UNPARSEABLE = range(4)
ROW = 4
ATOM_FEED = "{http://www.w3.org/2005/Atom}feed"
FEED_TYPES = {"atom": "application/atom+xml", "rss": "application/rss+xml", "json": "application/feed+json"}
TITLE_LINE = re.compile(rb"^title: .*$", re.MULTILINE)
SKIPPED_REFRESH = "skipped: maximum number of running instances"  # APScheduler: a refresh was still running


class Stop(Exception):
    """SIGTERM or the hard deadline: unwind through the cleanup."""


# --- checking one response


def check_document(path: str, headers: http.client.HTTPMessage, body: bytes) -> str | None:
    """Why a 200 body for `path` is not a usable document, or None when it is. Feeds must
    come with their media type; anything else is judged by the type it was served as."""
    media = headers.get("Content-Type", "").split(";")[0].strip()
    expected = FEED_TYPES.get(path.split("?")[0].rpartition(".")[2]) if path.startswith("/feeds/") else None
    if expected and media != expected:
        return f"served as {media!r}, expected {expected}"
    try:
        if headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if "xml" in media or "opml" in media:
            tag = etree.fromstring(body).tag
            root = {"application/atom+xml": ATOM_FEED, "application/rss+xml": "rss"}.get(media, tag)
            return None if tag == root else f"root element {tag}, expected {root}"
        if "json" in media:
            doc = json.loads(body)
            if path == "/healthz":
                return None if doc.get("status") == "ok" else f"healthz status {doc.get('status')}"
            return None if "feed+json" not in media or isinstance(doc.get("items"), list) else "no items list"
        if media == "text/html":
            return None if body.rstrip().endswith(b"</html>") else "HTML page cut short"
        return None if body else "empty body"
    except (OSError, EOFError, ValueError, etree.XMLSyntaxError) as exc:  # gzip, JSON, XML errors
        return f"{type(exc).__name__}: {exc}"


class Client:
    """One keep-alive connection, requesting random URLs until the end time."""

    def __init__(self, port: int, paths: list[str], row: int, live, rng: random.Random) -> None:
        self.port, self.row, self.live, self.rng = port, row, live, rng
        self.feeds = [p for p in paths if p.startswith("/feeds/") and p.rpartition(".")[2] in FEED_TYPES]
        self.everything = [p for p in self.feeds if p.startswith("/feeds/all.")]
        self.pages = [p for p in paths if p not in self.feeds and p != "/healthz"]  # /, and whatever / links to
        self.etags: dict[tuple[str, bool], str] = {}
        self.latencies = array("d")
        self.statuses: Counter[str] = Counter()
        self.samples: list[str] = []  # what went wrong, the first few times

    def pick(self) -> str:
        r = self.rng.random()
        if r < 0.05:
            return self.rng.choice(self.pages)
        if r < 0.08:
            return "/healthz"
        if r < 0.25:
            return self.rng.choice(self.everything)
        if r < 0.35:
            return f"{self.rng.choice(self.feeds)}?limit={self.rng.choice(LIMITS)}"
        return self.rng.choice(self.feeds)

    def run(self, end: float, stop) -> None:
        conn: http.client.HTTPConnection | None = None
        while time.monotonic() < end and not stop.is_set():
            conn = conn or http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT)
            if not self.request(conn):
                conn.close()
                conn = None
        if conn:
            conn.close()

    def request(self, conn: http.client.HTTPConnection) -> bool:
        """One request and its checks; False when the connection is unusable after it."""
        path, zipped = self.pick(), self.rng.random() < 0.5
        headers = {"Accept-Encoding": "gzip"} if zipped else {}
        etag = self.etags.get((path, zipped)) if path != "/healthz" and self.rng.random() < 0.3 else None
        if etag:
            headers["If-None-Match"] = etag
        started = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.count(FAILED, f"{path}: {type(exc).__name__}: {exc}")
            self.statuses[type(exc).__name__] += 1
            return False
        self.latencies.append(time.perf_counter() - started)
        self.live[self.row + REQUESTS] += 1
        self.statuses[str(response.status)] += 1
        self.judge(path, response, body, bool(etag))
        return not response.will_close

    def judge(self, path: str, response: http.client.HTTPResponse, body: bytes, conditional: bool) -> None:
        status = response.status
        if status >= 500:
            self.live[self.row + SERVER_ERRORS] += 1
        if status == 200:
            problem = check_document(path, response.headers, body)
            if problem:
                self.count(UNPARSEABLE, f"{path}: unparseable: {problem}; starts {body[:120]!r}")
            elif response.getheader("ETag"):
                self.etags[(path, "gzip" in response.getheader("Content-Encoding", ""))] = response.getheader("ETag")
        elif status != 304 or not conditional or body:
            self.count(FAILED, f"{path}: HTTP {status} {response.reason}; body starts {body[:200]!r}")

    def count(self, field: int, sample: str) -> None:
        self.live[self.row + field] += 1
        if len(self.samples) < 5:
            self.samples.append(sample)


def load_process(port: int, paths: list[str], rows: range, end: float, stop, live, results) -> None:
    """A load process: one thread per connection row; its results go on the queue."""
    _child_signals()
    clients = [Client(port, paths, row * ROW, live, random.Random(row)) for row in rows]
    threads = [threading.Thread(target=c.run, args=(end, stop), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies, statuses, samples = array("d"), Counter(), []
    for client in clients:
        latencies.extend(client.latencies)
        statuses.update(client.statuses)
        samples.extend(client.samples)
    results.put(("load", {"latencies": latencies, "statuses": statuses, "samples": samples}))


def _child_signals() -> None:
    """Ctrl-C reaches the whole process group: the parent handles it and sets `stop`;
    SIGTERM (from `terminate()`, or the kernel when the parent dies) ends a child at once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent()


# --- churning the seed folder


class Churn:
    """Adds, retitles, truncates and deletes seed files, as news writers do."""

    OPERATIONS = ("add", "change", "truncate", "delete")
    WEIGHTS = (25, 30, 20, 25)
    POOL = 50  # files of its own it keeps: it adds below this and deletes at it, so the corpus keeps its size

    def __init__(self, seeds: Path, corpus_seed: int) -> None:
        self.rng = random.Random(corpus_seed + 1)
        self.providers = make_providers(random.Random(corpus_seed), PROVIDER_COUNT)  # the corpus's own
        self.base = sorted(seeds.rglob("*.txt"))  # retitled, never truncated or deleted: every feed stays
        self.folder = seeds / "churn"
        self.folder.mkdir()
        self.owned: list[Path] = []  # files this process added; free to truncate and delete
        self.pending: dict[Path, tuple] = {}  # truncated files: (open file, the rest, when to finish)
        self.index = 10**7
        self.counts: Counter[str] = Counter()

    def step(self) -> None:
        self.finish(time.monotonic())
        op = self.rng.choices(self.OPERATIONS, self.WEIGHTS)[0]
        free = [p for p in self.owned if p not in self.pending]
        if op in ("add", "delete"):
            op = "add" if len(self.owned) < self.POOL or not free else "delete"
        elif op == "truncate" and not free:
            op = "add"
        getattr(self, op)(free)
        self.counts[op] += 1

    def add(self, free: list[Path]) -> None:
        """A new story, published in the last three hours, written in place."""
        self.index += 1
        published = datetime.now(timezone.utc) - timedelta(minutes=self.rng.randrange(180))
        provider = self.rng.choice(self.providers)
        text = seed_text(self.rng, self.index, published, provider, self.providers)
        path = self.folder / f"{self.index}_{self.rng.getrandbits(64):016x}.txt"
        path.write_bytes(text.encode("utf-8"))
        self.owned.append(path)

    def change(self, free: list[Path]) -> None:
        """A new title, saved the way editors do: a temp file renamed over the old one."""
        path = self.rng.choice(self.base + free)
        title = json.dumps(make_title(self.rng) + f" (update {self.counts['change']})", ensure_ascii=False)
        text = TITLE_LINE.sub(b"title: " + title.encode("utf-8"), path.read_bytes(), count=1)
        temp = path.with_name(path.name + ".tmp")  # matches no seed glob
        temp.write_bytes(text)
        os.replace(temp, path)

    def truncate(self, free: list[Path]) -> None:
        """Rewrite a file in place, stopping mid-front-matter; `finish` writes the rest later."""
        path = self.rng.choice(free)
        text = path.read_bytes()
        cut = self.rng.randrange(4, text.index(b"\n---\n", 4))
        handle = path.open("wb")
        handle.write(text[:cut])
        handle.flush()
        self.pending[path] = (handle, text[cut:], time.monotonic() + self.rng.uniform(0.5, 3.0))

    def delete(self, free: list[Path]) -> None:
        path = self.rng.choice(free)
        path.unlink()
        self.owned.remove(path)

    def finish(self, now: float) -> None:
        """Complete the truncated files whose writer is due (all of them with now=inf)."""
        for path, (handle, rest, due) in list(self.pending.items()):
            if due <= now:
                handle.write(rest)
                handle.close()
                del self.pending[path]


def churn_process(seeds: Path, corpus_seed: int, rate: float, end: float, stop, live, results) -> None:
    """The churn process: `rate` operations a second (Poisson) until the end time."""
    _child_signals()
    churn = Churn(seeds, corpus_seed)
    while time.monotonic() < end and not stop.is_set():
        churn.step()
        live[len(live) - 1] += 1
        stop.wait(min(churn.rng.expovariate(rate), max(end - time.monotonic(), 0)))
    churn.finish(float("inf"))
    results.put(("churn", dict(churn.counts)))


# --- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def die_with_parent() -> None:
    """In a child: get SIGTERM when the soak process dies, even by SIGKILL (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def fetch(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def start_server(work: Path, seeds: Path, port: int) -> subprocess.Popen:
    """`seedfeeds serve` in its own session (Ctrl-C reaches only us), awaited on /healthz."""
    config = work / "seedfeeds.toml"
    config.write_text(f'[site]\nbase_url = "http://{HOST}:{port}"\n[seeds]\npath = {json.dumps(str(seeds))}\n'
                      f'[feeds]\nrefresh_seconds = 1\n[state]\npath = {json.dumps(str(work / "state"))}\n',
                      encoding="utf-8")
    with (work / "server.log").open("wb") as log:
        server = subprocess.Popen([str(SEEDFEEDS), "serve", "--config", str(config), "--port", str(port)],
                                  stdout=log, stderr=subprocess.STDOUT, cwd=work,
                                  start_new_session=True, preexec_fn=die_with_parent)
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if fetch(port, "/healthz")[0] == 200:
                return server
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer /healthz within {STARTUP_DEADLINE:.0f}s "
                       f"(exit status {server.poll()})")


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM the server, SIGKILL it after 10 s, then SIGKILL any of its processes that
    outlived it (listed first: orphans are re-parented and lost from view)."""
    family = {pid: _stat(pid) for pid, _ in _children(server.pid)}
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    time.sleep(0.5)  # its children exit on their own when it goes
    for pid, (_, started) in family.items():
        state, now_started = _stat(pid)
        if now_started == started and state not in ("Z", "X", "?"):  # the same process, still running
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _stat(pid: int) -> tuple[str, str]:
    """A process's state letter and start time (which tells it from a later one given its PID)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], fields[19]
    except (OSError, IndexError):
        return "?", ""


def site_paths(port: int) -> list[str]:
    """`/`, `/healthz`, and every path on this server the directory page links to:
    each feed in each format, and whatever else it offers (icons, outlines)."""
    status, body = fetch(port, "/", timeout=30)
    if status != 200:
        raise RuntimeError(f"/ answered {status} before the load started")
    links = (urlsplit(link) for link in html.fromstring(body).xpath("//a/@href | //link/@href"))
    ours = {link.path for link in links if link.scheme in ("", "http") and link.netloc in ("", f"{HOST}:{port}")}
    return sorted({"/", "/healthz"} | {path for path in ours if path.startswith("/")})


def _children(root: int) -> list[tuple[int, int]]:
    """(pid, depth) of every process under `root`, from each /proc/<pid>/stat's parent field."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # exited while we looked
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [(root, 0)]
    while todo:
        pid, depth = todo.pop()
        for child in sorted(parents.get(pid, ()), reverse=True):
            found.append((child, depth + 1))
            todo.append((child, depth + 1))
    return found


class Memory:
    """Resident memory of the server and every process under it, sampled once a second."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.samples: list[tuple[float, dict[int, int]]] = []  # (seconds into the load, {pid: VmRSS KiB})
        self.peaks: dict[int, int] = {}  # pid -> VmHWM KiB, the kernel's own peak
        self.names: dict[int, str] = {}

    def sample(self, elapsed: float) -> int:
        """Record the RSS of each process; their total in KiB. OSError once the server is gone."""
        rss: dict[int, int] = {}
        for pid, depth in [(self.root, 0)] + _children(self.root):
            try:
                fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
                rss[pid], self.peaks[pid] = (int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM"))
            except (OSError, KeyError, ValueError):  # exited, or a zombie without memory
                if pid == self.root:
                    raise OSError(f"server process {pid} is gone") from None
                continue
            self.names[pid] = "  " * depth + f"{fields['Name'].strip()} (pid {pid})"
        self.samples.append((elapsed, rss))
        return sum(rss.values())

    def windows(self, seconds: float) -> dict[int | str, tuple[float, float]]:
        """Mean RSS in KiB over the window ending the first minute (the first half of a
        shorter run: warm-up comes before it) and over the last window, for each
        process seen in both and for all of them ("total")."""
        begin, end = first_window(seconds)
        first = [rss for t, rss in self.samples if begin <= t < end]
        last = [rss for t, rss in self.samples if t >= seconds - RSS_WINDOW]
        if not first or not last:
            return {}
        means = {"total": (statistics.fmean(map(_total, first)), statistics.fmean(map(_total, last)))}
        for pid in set(first[-1]) & set(last[-1]):
            means[pid] = (statistics.fmean(r[pid] for r in first if pid in r),
                          statistics.fmean(r[pid] for r in last if pid in r))
        return means

    def trajectory(self, pid: int | None = None, points: int = 8) -> str:
        """RSS in MiB of one process (or all, with None) at `points` moments spread over the run."""
        picked = [self.samples[round(i * (len(self.samples) - 1) / (points - 1))] for i in range(points)]
        values = [_total(rss) if pid is None else rss.get(pid) for _, rss in picked]
        return " ".join(f"{t:.0f}s:{'-' if v is None else f'{v / 1024:.0f}'}" for (t, _), v in zip(picked, values))

    def peak_total(self) -> int:
        """The largest total RSS sampled, KiB."""
        return max(map(_total, (rss for _, rss in self.samples)), default=0)


def first_window(seconds: float) -> tuple[float, float]:
    """The RSS_WINDOW seconds ending the first minute, or the first half of a shorter run."""
    end = min(60.0, seconds / 2)
    return end - RSS_WINDOW, end


def _total(rss: dict[int, int]) -> int:
    return sum(rss.values())


def grew(first: float, last: float) -> bool:
    """Memory growth beyond noise: more than RSS_GROWTH_LIMIT and more than RSS_NOISE_KIB."""
    return last - first > max(first * RSS_GROWTH_LIMIT, RSS_NOISE_KIB)


# --- the run


class Soak:
    """One soak run: its temp folder, its processes, what the monitor saw."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.ctx = mp.get_context("fork")  # forked before this process starts any thread
        self.stop = self.ctx.Event()
        self.results = self.ctx.Queue()
        self.live = self.ctx.RawArray("q", args.connections * ROW + 1)  # the last slot: churn operations
        self.children: list[mp.Process] = []
        self.server: subprocess.Popen | None = None
        self.port = 0
        self.memory: Memory | None = None
        self.health: list[dict] = []
        self.monitor_samples: list[str] = []
        self.monitor_failed = self.monitor_5xx = 0

    def run(self) -> int:
        args = self.args
        seeds = self.work / "seeds"
        started = time.perf_counter()
        generate(seeds, args.seeds, args.corpus_seed)
        self.port = port = free_port()
        self.server = start_server(self.work, seeds, port)
        self.memory = Memory(self.server.pid)
        paths = site_paths(port)
        print(f"soak: {args.seeds} seeds ready and served on port {port} in {time.perf_counter() - started:.1f}s; "
              f"{len(paths)} URLs; {args.connections} connections for {args.seconds:.0f}s", flush=True)
        refreshes_before = self.server_log().count("refresh outcome=")
        begin = time.monotonic()
        end = begin + args.seconds
        self.spawn(port, paths, seeds, end)
        self.monitor(begin, end)
        load, churn = self.collect(end)
        refreshes = self.server_log().count("refresh outcome=") - refreshes_before
        return self.report(load, churn, refreshes, time.monotonic() - begin)

    def spawn(self, port: int, paths: list[str], seeds: Path, end: float) -> None:
        rows = range(self.args.connections)
        count = min(self.args.processes, self.args.connections)
        for i in range(count):
            self.children.append(self.ctx.Process(
                target=load_process, args=(port, paths, rows[i::count], end, self.stop, self.live, self.results),
                daemon=True))
        self.children.append(self.ctx.Process(
            target=churn_process, args=(seeds, self.args.corpus_seed, self.args.churn_rate, end, self.stop,
                                        self.live, self.results), daemon=True))
        for child in self.children:
            child.start()

    def monitor(self, begin: float, end: float) -> None:
        """Every second until the end: server RSS and /healthz; every 10 s a progress line."""
        tick = begin
        while (now := time.monotonic()) < end:
            try:
                rss = self.memory.sample(now - begin)
            except OSError:  # the server exited
                self.monitor_failed += 1
                self.monitor_samples.append(f"the server exited with status {self.server.wait()}")
                self.stop.set()
                return
            self.sample_health()
            if len(self.memory.samples) % 10 == 0:
                self.progress(now - begin, rss)
            tick += 1.0
            time.sleep(max(0.0, min(tick, end) - time.monotonic()))

    def sample_health(self) -> None:
        try:
            status, body = fetch(self.port, "/healthz", timeout=REQUEST_TIMEOUT)
        except (OSError, http.client.HTTPException) as exc:
            status, body = 0, repr(exc).encode()
        try:
            if status == 200:
                self.health.append(json.loads(body))
                return
        except ValueError as exc:
            body = repr(exc).encode()
        self.monitor_failed += 1
        self.monitor_5xx += status >= 500
        self.monitor_samples.append(f"/healthz (monitor): {status} {body[:200]!r}")

    def progress(self, elapsed: float, rss_kib: int) -> None:
        """One line of running totals, so a long run shows it is alive."""
        live = self.live
        sums = [sum(live[i:len(live) - 1:ROW]) for i in range(ROW)]
        health = self.health[-1] if self.health else {}
        print(f"  {elapsed:5.0f}s  {sums[REQUESTS]:8d} requests ({sums[REQUESTS] / elapsed:6.0f}/s)  "
              f"failed {sums[FAILED]}  5xx {sums[SERVER_ERRORS]}  unparseable {sums[UNPARSEABLE]}  "
              f"server RSS {rss_kib / 1024:6.1f} MiB  entries {health.get('entries')}  "
              f"unusable files {health.get('unusable_files')}  churn ops {live[len(live) - 1]}", flush=True)

    def collect(self, end: float) -> tuple[dict, dict]:
        """Gather every child's results (before joining: a full queue would block its exit)."""
        load = {"latencies": array("d"), "statuses": Counter(), "samples": []}
        churn: dict = {}
        deadline = end + REQUEST_TIMEOUT + 15
        for received in range(len(self.children)):
            try:
                kind, result = self.results.get(timeout=max(1.0, deadline - time.monotonic()))
            except queue.Empty:
                self.monitor_failed += 1
                self.monitor_samples.append(f"{len(self.children) - received} helper processes sent no results "
                                            f"(exit codes {[c.exitcode for c in self.children]})")
                break
            if kind == "churn":
                churn = result
            else:
                load["latencies"].extend(result["latencies"])
                load["statuses"].update(result["statuses"])
                load["samples"].extend(result["samples"])
        for child in self.children:
            child.join(timeout=max(1.0, deadline - time.monotonic()))
        return load, churn

    def server_log(self) -> str:
        return (self.work / "server.log").read_text(errors="replace")

    def report(self, load: dict, churn: dict, refreshes: int, elapsed: float) -> int:
        """Print the table, what went wrong, and the verdict; the exit status."""
        log = self.server_log()
        log_errors = [line for line in log.splitlines() if re.search(r"\b(ERROR|CRITICAL)\b|Traceback", line)]
        rows, checks = self.summarize(load, churn, refreshes, elapsed, log, len(log_errors))
        print(f"\n{'':32}{'result':46}target")
        for name, value, target in rows:
            print(f"{name:32}{value:46}{target}".rstrip())
        if self.memory.samples:
            print(f"\nserver RSS over the run, MiB: all processes {self.memory.trajectory()}")
            for pid, name in self.memory.names.items():
                print(f"  {name.strip()}: {self.memory.trajectory(pid)}")
        for sample in (self.monitor_samples + load["samples"])[:10]:
            print(f"  e.g. {sample}")
        for line in log_errors[:10]:
            print(f"  log: {line}")
        missed = [name for name, ok in checks.items() if not ok]
        print("\nsoak: every target met" if not missed else f"\nsoak: FAILED: {', '.join(missed)}")
        if set(missed) - {"RSS growth"}:  # the refresh-skipped warnings are counted in the table
            tail = [line for line in log.splitlines() if SKIPPED_REFRESH not in line][-40:]
            print("--- server log, last 40 lines ---\n" + "\n".join(tail))
        return 1 if missed else 0

    def summarize(self, load: dict, churn: dict, refreshes: int, elapsed: float, log: str,
                  log_errors: int) -> tuple[list[tuple[str, str, str]], dict[str, bool]]:
        """The table's rows (name, result, target) and each target's verdict."""
        live, n = self.live, len(self.live) - 1
        requests = sum(live[REQUESTS:n:ROW])
        failed = sum(live[FAILED:n:ROW]) + self.monitor_failed
        server_errors = sum(live[SERVER_ERRORS:n:ROW]) + self.monitor_5xx
        unparseable = sum(live[UNPARSEABLE:n:ROW])
        ms = sorted(load["latencies"])
        windows = self.memory.windows(self.args.seconds)
        durations = [float(s) for s in re.findall(r"refresh outcome=\S+ duration_seconds=([\d.]+)", log)]
        skipped = log.count(SKIPPED_REFRESH)
        entries = [h["entries"] for h in self.health] or [0]
        unusable = max((h["unusable_files"] for h in self.health), default=0)
        ages = [h["snapshot_age_seconds"] for h in self.health if h.get("snapshot_age_seconds") is not None]
        rows = [
            ("duration", f"{elapsed:.1f} s", ""),
            ("connections", f"{self.args.connections} ({min(self.args.processes, self.args.connections)} "
                            "client processes)", ""),
            ("requests served", f"{requests} ({requests / elapsed:.0f}/s)", ""),
            ("failed requests", f"{failed}", "0"),
            ("5xx responses", f"{server_errors}", "0"),
            ("unparseable documents", f"{unparseable}", "0"),
            ("statuses", ", ".join(f"{k}: {v}" for k, v in sorted(load["statuses"].items())), ""),
            ("latency p50 / p99 / max", f"{_ms(ms, 0.5):.1f} / {_ms(ms, 0.99):.1f} / {_ms(ms, 1.0):.1f} ms", ""),
            *self.memory_rows(windows),
            ("churn operations", f"{sum(churn.values())} ("
                                 + ", ".join(f"{op} {churn.get(op, 0)}" for op in Churn.OPERATIONS) + ")", ""),
            ("refreshes logged", f"{refreshes} (longest {max(durations, default=0):.2f} s; "
                                 f"{skipped} runs skipped while one was busy)", ""),
            ("entries (healthz min / max)", f"{min(entries)} / {max(entries)}; unusable files up to {unusable}", ""),
            ("snapshot age (healthz max)", f"{max(ages, default=0):.1f} s", ""),
            ("server log errors", f"{log_errors}", "0"),
        ]
        checks = {
            "failed requests": failed == 0,
            "5xx responses": server_errors == 0,
            "unparseable documents": unparseable == 0,
            "server log errors": log_errors == 0,
            "RSS growth": bool(windows) and not any(grew(*means) for means in windows.values()),
        }
        return rows, checks

    def memory_rows(self, windows: dict[int | str, tuple[float, float]]) -> list[tuple[str, str, str]]:
        """Peak and first/last-window RSS of the server's processes, together and one by one."""
        memory, mib = self.memory, 1024
        target = f"< +{RSS_GROWTH_LIMIT:.0%} or +{RSS_NOISE_KIB // mib} MiB"
        first, last = windows.get("total", (0.0, 0.0))
        rows = [("server peak RSS, all processes", f"{memory.peak_total() / mib:.1f} MiB sampled "
                                                   f"(sum of VmHWM {sum(memory.peaks.values()) / mib:.1f} MiB)", ""),
                ("RSS at {:.0f}-{:.0f} s / last {:.0f} s".format(*first_window(self.args.seconds), RSS_WINDOW),
                 f"{first / mib:.1f} / {last / mib:.1f} MiB ({_change(first, last)})", target)]
        for pid, name in memory.names.items():
            if pid in windows:
                first, last = windows[pid]
                value = f"{first / mib:.1f} / {last / mib:.1f} MiB ({_change(first, last)}), peak"
            else:
                value = "not in both windows; peak"
            rows.append((f"  {name}", f"{value} {memory.peaks[pid] / mib:.1f} MiB", target if pid in windows else ""))
        return rows

    def cleanup(self) -> None:
        """Stop every helper process and the server, by their own PIDs."""
        self.stop.set()
        for child in self.children:
            deadline = time.monotonic() + 5
            while child.is_alive() and time.monotonic() < deadline:
                try:  # an interrupted run left results unread: a child exits only once they are taken
                    self.results.get(timeout=0.1)
                except queue.Empty:
                    pass
            if child.is_alive():
                child.terminate()
                child.join(timeout=5)
            if child.is_alive():
                child.kill()
                child.join(timeout=5)
        if self.server is not None:
            stop_server(self.server)


def _change(first: float, last: float) -> str:
    return f"{(last / first - 1) * 100:+.1f} %" if first else "n/a"


def _ms(sorted_values, q: float) -> float:
    """The q-quantile in milliseconds (nearest rank)."""
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))] * 1000


def _raise_stop(signum: int, frame) -> None:
    raise Stop(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120, help="length of the load (default: 120)")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections (default: 64)")
    parser.add_argument("--seeds", type=int, default=2000, help="seed files in the corpus (default: 2000)")
    parser.add_argument("--processes", type=int, default=4, help="client processes sharing the connections "
                        "(default: 4)")
    parser.add_argument("--churn-rate", type=float, default=5.0, help="seed-file operations a second (default: 5)")
    parser.add_argument("--corpus-seed", type=int, default=1, help="random seed of the corpus (default: 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (seeds, config, server log)")
    args = parser.parse_args(argv)
    if args.seconds < 2 * RSS_WINDOW:
        parser.error(f"--seconds must be at least {2 * RSS_WINDOW:.0f}")
    if min(args.connections, args.seeds, args.processes) < 1 or args.churn_rate <= 0:
        parser.error("--connections, --seeds, --processes and --churn-rate must be positive")
    if not SEEDFEEDS.exists():
        parser.error(f"no seedfeeds command at {SEEDFEEDS}; run this with the project's venv Python")
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGALRM, _raise_stop)
    # The hard deadline: corpus, start-up, the load, the stragglers, the cleanup.
    signal.alarm(int(args.seeds / 100 + STARTUP_DEADLINE + args.seconds + REQUEST_TIMEOUT + 90))
    work = Path(tempfile.mkdtemp(prefix="seedfeeds-soak-"))
    soak = Soak(args, work)
    try:
        return soak.run()
    except RuntimeError as exc:  # the server did not start, or / did not answer
        log = work / "server.log"
        print(f"soak: {exc}\n" + (log.read_text(errors="replace")[-4000:] if log.exists() else ""), file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Stop) as exc:
        print(f"\nsoak: stopped ({type(exc).__name__} {exc})", file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        soak.cleanup()
        if args.keep:
            print(f"soak: kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
