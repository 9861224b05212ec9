"""Processes the benchmark starts: their trees, their memory, and stopping them by PID.

Linux only (reads /proc). Every process is started with `start`, which makes
the kernel send it SIGTERM should the benchmark die without cleaning up, and
is stopped with `stop`, which signals the process and then any descendant
that outlived it, each by its own PID.
"""

from __future__ import annotations

import ctypes
import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the benchmark process dies, even by SIGKILL."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def start(argv: list[str], log: Path, **kwargs) -> subprocess.Popen:
    """Start `argv` with stdout and stderr to `log`, in its own session (Ctrl-C reaches only us)."""
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent, **kwargs)


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 20.0) -> None:
    """Signal `process`, wait up to `grace` seconds, then SIGKILL it and every descendant
    it leaves behind (listed before signalling: orphans are re-parented and lost from view)."""
    family = descendants(process.pid)
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    deadline = time.monotonic() + 5
    for pid in family:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _alive(pid: int) -> bool:
    """Running, not a zombie (our own children are reaped by Popen; others by their parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    """Direct children of `pid`, from every thread's /proc children list."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every process under `pid`, parents before their children."""
    found, todo = [], [pid]
    while todo:
        kids = children(todo.pop(0))
        found += kids
        todo += kids
    return found


def status(pid: int) -> dict[str, str]:
    """/proc/<pid>/status as a dict; empty when the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def rss_mib(pid: int, field: str = "VmRSS") -> float | None:
    """Resident set size (VmRSS, or VmHWM for the peak) in MiB; None once the process is gone."""
    value = status(pid).get(field)
    return int(value.split()[0]) / 1024 if value else None


def anon_pss_kib(pid: int) -> int:
    """Anonymous memory (heap, stacks) in KiB, pages shared after a fork divided among
    the sharers: summed over a process tree, it counts each page once, and (unlike PSS)
    does not depend on which unrelated processes map the same libraries."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss_Anon:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


class TreeMemory:
    """Samples the summed anonymous memory of every process under this one, in a thread,
    for as long as the `with` block runs; `peak_mib` is the largest sum seen."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)

    def __enter__(self) -> "TreeMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.interval):
            self.peak_kib = max(self.peak_kib, sum(anon_pss_kib(pid) for pid in descendants(me)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def request(port: int, path: str, headers: dict[str, str] | None = None,
            timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """One GET to 127.0.0.1:port: status, headers (lowercased names), body."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def wait_for(port: int, path: str, process: subprocess.Popen, deadline: float) -> float:
    """Poll until `path` answers 200; the seconds it took. Raises if `process` exits or time runs out."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} before answering")
        try:
            if request(port, path, timeout=5)[0] == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"nothing answered 200 on 127.0.0.1:{port}{path} within {deadline:.0f}s")
