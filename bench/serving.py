"""Figures 4, 5 and the serving half of 6: `seedfeeds serve` with 10,000 seeds beside
nginx serving the static build of the same seeds, both under wrk.

One server (refresh_seconds = 5) serves all of it: the three request cases side
by side with nginx, then an idle run and a run during which every seed
changes at once (folders swapped in one step) and the next scheduled refresh
rebuilds everything; the worker's and the builder child's RSS in between.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
import time
from pathlib import Path

from build_time import SEEDFEEDS
from inprocess import retitled
from procs import request, rss_mib, start, stop
from report import Table, verdict
from servers import Nginx, Refresh, SeedfeedsServer, WrkResult, probe, run_wrk

FEED = "/feeds/all.atom"
REVISED = "Bench revised"  # put in front of every title for figure 5
AT_FDCWD, RENAME_EXCHANGE = -100, 2


def stage_serving(table: Table, seeds: Path, site: Path, work: Path, seconds: float) -> None:
    """Figures 4, 5 and the serving half of 6: one `seedfeeds serve` (refresh_seconds = 5)
    and one nginx, side by side."""
    server = SeedfeedsServer.start(SEEDFEEDS, work, seeds, refresh_seconds=5)
    try:
        deadline = time.monotonic() + 10  # the first build's line follows its swap by a moment
        while not server.refreshes() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not server.refreshes():  # figure 5 waits on these lines: fail now, not after minutes of load
            raise RuntimeError(f"no refresh line in the server log that bench/servers.py can read "
                               f"(has the log format changed?): {server.log}")
        nginx = Nginx.start(work / "nginx", site)
        try:
            table.add("4", "serve: start-up with 10k seeds (cold build in the builder child) s",
                      f"{server.startup:.1f}", "", "", "", "info")
            server_memory(table, server, "10k seeds loaded")
            serve_and_compare(table, server, nginx, work, seconds)
            server_memory(table, server, "after the wrk runs of figure 4")
        finally:
            nginx.stop()
        serve_while_building(table, server, seeds, work, seconds)
        server_memory(table, server, "after the full rebuild of figure 5")
        problems = server.log_problems()
        table.add("4", "serve log: ERROR lines and tracebacks", str(len(problems)), "", "", "0",
                  verdict(not problems))
        if problems:
            table.notes.append("serve log: " + " | ".join(problems[:3]))
    finally:
        server.stop()


def cases(seedfeeds_etag: str, nginx_etag: str) -> list[tuple[str, dict, dict, int]]:
    """(name, seedfeeds headers, nginx headers, expected status) of the three wrk cases."""
    gzip = {"Accept-Encoding": "gzip"}
    return [("plain 200", {}, {}, 200),
            ("gzip 200", gzip, gzip, 200),
            ("conditional 304", {**gzip, "If-None-Match": seedfeeds_etag}, {**gzip, "If-None-Match": nginx_etag}, 304)]


def check_case(port: int, headers: dict, expected: int) -> str | None:
    """What is wrong with the answer wrk will get for this case, or None."""
    status, encoding, _ = probe(port, FEED, headers)
    gzipped = "gzip" in headers.get("Accept-Encoding", "")
    if status != expected:
        return f"status {status}, expected {expected}"
    if expected == 200 and (encoding == "gzip") != gzipped:
        return f"Content-Encoding {encoding or 'none'}"
    return None


def add_wrk_rows(table: Table, case: str, ours: WrkResult, theirs: WrkResult, ratio_target: bool) -> None:
    ratio = ours.requests_per_s / theirs.requests_per_s if theirs.requests_per_s else float("inf")
    table.add("4", f"{case}: requests/s", f"{ours.requests_per_s:,.0f}", f"{theirs.requests_per_s:,.0f}",
              f"{ratio:.2f}x nginx", ">= 0.15x nginx" if ratio_target else "",
              verdict(ratio >= 0.15) if ratio_target else "info")
    table.add("4", f"{case}: latency p50 / p99 ms", f"{ours.p50_ms:.2f} / {ours.p99_ms:.2f}",
              f"{theirs.p50_ms:.2f} / {theirs.p99_ms:.2f}", "", "p99 < 20 ms", verdict(ours.p99_ms < 20))
    table.add("4", f"{case}: errors (socket errors + non-2xx/3xx), of requests",
              f"{ours.errors} of {ours.requests:,}", f"{theirs.errors} of {theirs.requests:,}", "", "0",
              verdict(ours.errors == 0))


def server_memory(table: Table, server: SeedfeedsServer, when: str) -> None:
    pids = server.pids()
    worker, builder = rss_mib(pids.get("worker", -1)), rss_mib(pids.get("builder", -1))
    table.add("6", f"serve RSS MiB, worker / builder child: {when}",
              f"{worker or 0:.0f} / {builder or 0:.0f}", "", "", "", "info")


def serve_and_compare(table: Table, server: SeedfeedsServer, nginx: Nginx, work: Path, seconds: float) -> None:
    """Figure 4: the three cases, seedfeeds and nginx alternating which goes first."""
    etags = [probe(s.port, FEED, {"Accept-Encoding": "gzip"})[2] for s in (server, nginx)]
    for target in (server, nginx):  # warm up: connections, caches
        run_wrk(target.url(FEED), 2, {"Accept-Encoding": "gzip"})
    for k, (case, ours_headers, theirs_headers, expected) in enumerate(cases(*etags)):
        for name, target, headers in (("seedfeeds", server, ours_headers), ("nginx", nginx, theirs_headers)):
            problem = check_case(target.port, headers, expected)
            if problem:
                table.notes.append(f"figure 4 {case} on {name}: {problem}")
        order = [("seedfeeds", server, ours_headers), ("nginx", nginx, theirs_headers)]
        results = {}
        for name, target, headers in (order if k % 2 == 0 else order[::-1]):
            results[name] = run_wrk(target.url(FEED), seconds, headers, log=work / f"wrk-{k}-{name}.log")
            r = results[name]
            print(f"  {case:16} {name:9} {r.requests_per_s:9,.0f} req/s  p50 {r.p50_ms:6.2f} ms"
                  f"  p99 {r.p99_ms:7.2f} ms  errors {r.errors}", flush=True)
        add_wrk_rows(table, case, results["seedfeeds"], results["nginx"], ratio_target=case != "plain 200")


def serve_while_building(table: Table, server: SeedfeedsServer, seeds: Path, work: Path, seconds: float) -> None:
    """Figure 5: gzip polls while every seed changes and the next scheduled refresh
    re-reads and re-renders all of them; p99 against an idle run just before."""
    gzip = {"Accept-Encoding": "gzip"}
    idle = run_wrk(server.url(FEED), seconds, gzip, log=work / "wrk-idle.log")
    control = with_busy_loop(lambda: run_wrk(server.url(FEED), seconds, gzip, log=work / "wrk-control.log"), work)
    swaps = stage_revision(seeds)  # ready before the load
    state: dict[str, float] = {}

    def swap_all() -> None:
        state["swap_began"] = time.time()
        for folder, revised in swaps:
            exchange(folder, revised)
        state["swap_ended"] = time.time()

    def rebuild() -> Refresh | None:
        """The first refresh that began after the swap: it re-read and re-rendered everything."""
        after = [r for r in server.refreshes() if r.began >= state["swap_began"] - 0.01]
        return after[0] if after else None

    def until(elapsed: float) -> bool:
        if "swap_began" not in state:
            # Swap just after a scheduled refresh ends, well before the next one starts.
            if elapsed >= 2 and any(r.ended > state["load_began"] + 1 for r in server.refreshes()):
                swap_all()
            return False
        if "served" not in state:
            status, _, body = request(server.port, FEED, timeout=10)
            if status == 200 and REVISED.encode() in body:
                state["served"] = time.time()
        return "served" in state and rebuild() is not None and elapsed >= seconds

    state["load_began"] = time.time()
    try:
        # Paced, a full rebuild under wrk's saturating load takes 170-300 s on these machines:
        # the load lasts until it is served (at most 600 s, wrk's own limit).
        during = run_wrk(server.url(FEED), seconds, gzip, log=work / "wrk-during.log", until=until)
    finally:
        for _, revised in swaps:  # after the swap these hold the originals
            shutil.rmtree(revised, ignore_errors=True)
    began, ended = state["load_began"], time.time()
    done = rebuild() if "swap_began" in state else None
    inside = (done is not None and "served" in state and began <= done.began and done.ended <= ended
              and done.changed == done.files)  # every file re-read
    span = (f"+{done.began - began:.1f} s to +{done.ended - began:.1f} s ({done.files} files, "
            f"{done.changed} changed); "
            f"served at +{state['served'] - began:.1f} s" if done and "served" in state else "none seen")
    table.add("5", "full rebuild (every seed retitled) inside the load window (server log)",
              f"swap at +{state.get('swap_began', began) - began:.1f} s; rebuild {span}; load {ended - began:.0f} s",
              "", "", "rebuild inside the window", verdict(inside))
    ratio = during.p99_ms / idle.p99_ms if idle.p99_ms else float("inf")
    table.add("5", "gzip 200 p99 ms during the rebuild vs idle (same server, just before)",
              f"{during.p99_ms:.2f}", f"idle {idle.p99_ms:.2f}", f"{ratio:.2f}x idle", "<= 2x idle",
              verdict(ratio <= 2))
    table.add("5", "control: gzip 200 p99 ms beside a bare busy loop at SCHED_IDLE on one CPU (the builder's policy)",
              f"{control.p99_ms:.2f}", f"idle {idle.p99_ms:.2f}", f"{control.p99_ms / idle.p99_ms:.2f}x idle"
              if idle.p99_ms else "", "", "info")
    table.add("5", "requests/s during vs idle; errors during", f"{during.requests_per_s:,.0f}; {during.errors} errors",
              f"idle {idle.requests_per_s:,.0f}", "", "errors 0", verdict(during.errors == 0))
    print(f"  rebuild under load: {span}; p99 {during.p99_ms:.2f} ms vs idle {idle.p99_ms:.2f} ms",
          flush=True)


def with_busy_loop(run, work: Path):
    """`run()` while another process spins at SCHED_IDLE on one CPU, as the builder child
    runs: what any concurrent CPU work costs the server on this machine, however politely
    scheduled (the floor for figure 5)."""
    spin = "from web.builder_process import _yield_to_serving\n_yield_to_serving()\nwhile True: pass"
    process = start([sys.executable, "-c", spin], work / "busy-loop.log")
    try:
        return run()
    finally:
        stop(process)


def stage_revision(seeds: Path) -> list[tuple[Path, Path]]:
    """A copy of each top folder of `seeds` with every title revised, hidden beside it
    (the scan skips dot names): (folder, revised copy) pairs for `exchange`."""
    swaps = []
    for folder in sorted(p for p in seeds.iterdir() if p.is_dir() and not p.name.startswith(".")):
        revised = seeds / f".{folder.name}.revised"
        shutil.rmtree(revised, ignore_errors=True)
        for path in folder.rglob("*"):
            target = revised / path.relative_to(folder)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif path.suffix == ".txt":
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(retitled(path.read_bytes(), REVISED))
        swaps.append((folder, revised))
    if any(p.is_file() for p in seeds.iterdir()):
        raise RuntimeError(f"{seeds} has seed files outside its subfolders; figure 5 swaps subfolders")
    return swaps


def exchange(a: Path, b: Path) -> None:
    """Swap two folders in one step (renameat2 RENAME_EXCHANGE): a scan sees one or the other, never neither."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) != 0:
        raise OSError(ctypes.get_errno(), f"renameat2 RENAME_EXCHANGE {a} {b}: {os.strerror(ctypes.get_errno())}")
