"""The servers under load and the load itself: `seedfeeds serve`, nginx on a
static build, and wrk.

    server = SeedfeedsServer.start(work, seeds, refresh_seconds=5)
    result = run_wrk(server.url("/feeds/all.atom"), seconds=20, headers={"Accept-Encoding": "gzip"})
    server.stop()
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from nginx_site import nginx_conf
from procs import HOST, cmdline, children, free_port, request, start, stop, wait_for

NGINX = "/usr/sbin/nginx"
WRK = "wrk"
STARTUP_DEADLINE = 600.0  # seconds: `seedfeeds serve` builds the whole corpus before it answers
# A refresh's log line: (time, seconds, files scanned, files changed).
REFRESH_LINE = re.compile(r"^(?P<time>\S+ \S+) INFO seedfeeds: refresh outcome=\S+ duration_seconds=(?P<seconds>[\d.]+) "
                          r"files_scanned=(?P<files>\d+) files_changed=(?P<changed>\d+)")
@dataclass(frozen=True)
class Refresh:
    """One refresh line of the server log: when it ended (epoch seconds) and how long it took."""

    ended: float
    seconds: float
    files: int
    changed: int  # files read again

    @property
    def began(self) -> float:
        return self.ended - self.seconds


class SeedfeedsServer:
    """`seedfeeds serve` on a free port: granian's main process, its one worker,
    and the worker's builder child."""

    def __init__(self, process: subprocess.Popen, port: int, log: Path, startup: float) -> None:
        self.process, self.port, self.log, self.startup = process, port, log, startup

    @classmethod
    def start(cls, seedfeeds: Path, work: Path, seeds: Path, refresh_seconds: int) -> "SeedfeedsServer":
        port = free_port()
        config = work / "serve.toml"
        config.write_text(f'[site]\nbase_url = "http://{HOST}:{port}"\n[seeds]\npath = {json.dumps(str(seeds))}\n'
                          f'[feeds]\nrefresh_seconds = {refresh_seconds}\n'
                          f'[state]\npath = {json.dumps(str(work / "serve-state"))}\n', encoding="utf-8")
        log = work / "serve.log"
        process = start([str(seedfeeds), "serve", "--config", str(config), "--port", str(port)], log, cwd=work)
        try:
            startup = wait_for(port, "/healthz", process, STARTUP_DEADLINE)
        except BaseException:
            stop(process)
            raise
        return cls(process, port, log, startup)

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def pids(self) -> dict[str, int]:
        """{"main", "worker", "builder", ...}: the worker is the main process's child running
        seedfeeds; the builder is the worker's multiprocessing child (not the resource tracker)."""
        found = {"main": self.process.pid}
        for pid in children(self.process.pid):
            if "seedfeeds" in cmdline(pid):
                found["worker"] = pid
        for pid in children(found.get("worker", -1)):
            line = cmdline(pid)
            if "resource_tracker" in line:
                found["resource tracker"] = pid
            elif "spawn_main" in line:
                found["builder"] = pid
        return found

    def refreshes(self) -> list[Refresh]:
        """Every refresh the log reports so far."""
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            match = REFRESH_LINE.match(line)
            if match:
                ended = datetime.strptime(match["time"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                found.append(Refresh(ended, float(match["seconds"]), int(match["files"]), int(match["changed"])))
        return found

    def log_problems(self) -> list[str]:
        """Lines of the server log that report an error or a traceback."""
        return [line for line in self.log.read_text(errors="replace").splitlines()
                if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")]

    def stop(self) -> None:
        stop(self.process)


class Nginx:
    """nginx (master and `worker_processes auto` workers) serving a static build, in the foreground."""

    def __init__(self, process: subprocess.Popen, port: int) -> None:
        self.process, self.port = process, port

    @classmethod
    def start(cls, prefix: Path, root: Path) -> "Nginx":
        port = free_port()
        prefix.mkdir(parents=True, exist_ok=True)
        conf = prefix / "nginx.conf"
        conf.write_text(nginx_conf(root, port, prefix), encoding="utf-8")
        process = start([NGINX, "-p", str(prefix), "-c", str(conf)], prefix / "stdout.log")
        try:
            wait_for(port, "/index.html", process, 30)
        except BaseException:
            stop(process, signal.SIGQUIT)
            raise
        return cls(process, port)

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def stop(self) -> None:
        stop(self.process, signal.SIGQUIT)  # graceful shutdown


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    socket_errors: int  # connect + read + write + timeout
    bad_status: int  # responses other than 2xx and 3xx

    @property
    def errors(self) -> int:
        return self.socket_errors + self.bad_status


def run_wrk(url: str, seconds: float, headers: dict[str, str] | None = None, *, connections: int = 64,
            threads: int = 2, log: Path | None = None, until: Callable[[float], bool] | None = None,
            most: float = 600.0) -> WrkResult:
    """wrk against `url` for `seconds`; or, with `until`, for as long as `until(elapsed)` is
    false (checked each second, at most `most` seconds), then stopped with SIGINT (wrk prints
    its summary then)."""
    argv = [WRK, f"-t{threads}", f"-c{connections}", f"-d{int(most if until else seconds)}s", "--latency",
            "--timeout", "2s"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        if until is not None:
            started = time.monotonic()
            while process.poll() is None and not until(time.monotonic() - started):
                time.sleep(1.0)
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        text, _ = process.communicate(timeout=(most if until else seconds) + 60)
    finally:
        if process.poll() is None:
            stop(process, signal.SIGKILL, grace=5)
    if log is not None:
        log.write_text(text)
    return parse_wrk(text)


def parse_wrk(text: str) -> WrkResult:
    """The figures of wrk's `--latency` summary."""
    def number(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, text, re.MULTILINE)
        if match is None:
            if default is None:
                raise ValueError(f"wrk output has no {pattern!r}:\n{text}")
            return default
        return match[1]

    total = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text, re.MULTILINE)
    if total is None:
        raise ValueError(f"wrk output has no request count:\n{text}")
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return WrkResult(
        requests=int(total[1]),
        seconds=_seconds(total[2] + total[3]),
        requests_per_s=float(number(r"^Requests/sec:\s+([\d.]+)")),
        p50_ms=_seconds(number(r"^\s+50%\s+(\S+)")) * 1000,
        p99_ms=_seconds(number(r"^\s+99%\s+(\S+)")) * 1000,
        socket_errors=sum(map(int, socket.groups())) if socket else 0,
        bad_status=int(number(r"Non-2xx or 3xx responses: (\d+)", "0")),
    )


def _seconds(text: str) -> float:
    """wrk's durations: 630.00us, 1.05ms, 2.00s, 1.50m, 1.00h."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}[match[2]]


def probe(port: int, path: str, headers: dict[str, str]) -> tuple[int, str, str]:
    """One request as wrk will send it: (status, Content-Encoding or "", ETag or "")."""
    status, answer, _ = request(port, path, headers)
    return status, answer.get("content-encoding", ""), answer.get("etag", "")
