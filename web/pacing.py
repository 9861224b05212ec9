"""Short slices for the builder child while its serving process is busy.

SCHED_IDLE (see `builder_process._yield_to_serving`) gives the builder only
the CPU time nobody else wants, yet on these 2-vCPU machines any CPU-bound
process beside a server under wrk's full load costs that server's p99 2.2-2.8x,
whatever it runs and however politely it is scheduled. What does not cost it is
idle time: the same busy loop stopped for 8 ms out of every 10 costs 1.6x, and
1 ms out of every 10, 1.1-1.2x (measured beside wrk; and a full rebuild of
10,000 seeds paced 2 ms in 10 from outside: p99 1.04-1.43x idle against
1.75-2.56x unpaced, the rebuild taking 121 s under that load instead of 35 s).

So a small pacer process watches the process the builder builds for and,
under `seedfeeds serve --workers N`, every other worker of that `serve` (the
builder of one worker costs the latency of all of them). While the builder is
building (a flag in memory they share) and the workers are busy answering
requests, the pacer stops the builder with SIGSTOP and lets it go on with
SIGCONT: it runs RUN_SECONDS in every RUN_SECONDS + REST_SECONDS. When
the server is quiet, or the builder is sending a result or waiting for work,
nothing is paced: a rebuild on a quiet server runs at full speed, and only a
busy server gets a slower rebuild. Figure 5 of `bench/run.py` with this pacer:
p99 1.37x idle (a bare busy loop at SCHED_IDLE in the same run: 2.43x); the
rebuild took 168 s under wrk's full load.

The builder child starts the pacer before it does anything else, as a Python
of its own with no site packages: 7 MiB PSS, 3 MiB less in all than a fork of
the builder, which kept the builder's pages from before the fork. It leaves the
builder running whenever it stops (SIGTERM, an error), and exits as soon as the
builder is gone. A pacer killed outright (SIGKILL) between a SIGSTOP and its
SIGCONT cannot: the serving process, waiting for the build, checks once a
second for a stopped builder with no pacer, and resumes it.
"""

from __future__ import annotations

import ctypes
import gc
import mmap
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

RELIST_SECONDS = 1.0  # how often the serving workers are listed again (a crashed one is replaced)
RUN_SECONDS = 0.002  # the builder runs this long at a time while the server is busy...
REST_SECONDS = 0.008  # ...then rests this long (idle time is what the server needs)
LOOK_SECONDS = 0.05  # how often the server's CPU time is looked at
BUSY_SHARE = 0.10  # the server is busy above this share of one CPU over a look


def cpu_clock(pid: int) -> Callable[[], float] | None:
    """A function giving the CPU seconds process `pid` has used so far (all its
    threads), or None where the system cannot tell (not Linux or glibc)."""
    try:
        getcpuclockid = ctypes.CDLL(None).clock_getcpuclockid
    except (OSError, AttributeError, TypeError):
        return None
    clock = ctypes.c_int()
    if getcpuclockid(pid, ctypes.byref(clock)) != 0:
        return None
    return lambda: time.clock_gettime(clock.value)


def children_of(pid: int) -> set[int]:
    """The child processes of `pid` (started by any of its threads); none once it is gone."""
    found: set[int] = set()
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children") as listing:
                found.update(int(child) for child in listing.read().split())
        except OSError:  # a thread that has just ended
            continue
    return found


class ServingCPU:
    """CPU seconds used by the serving process and, given `group` (the process
    that started the serving workers, `seedfeeds serve`), by every other worker
    too: a rebuild costs the latency of every worker on the machine, not only
    of the one whose child builds. Each process counts only for the time it
    used while watched, so a worker that starts or ends is no burst of work.
    Raises OSError once the serving process is gone."""

    def __init__(self, serving: int, clock: Callable[[], float], group: int | None = None) -> None:
        self._serving = serving
        self._group = group
        self._clocks = {serving: clock}
        self._last: dict[int, float] = {}  # each clock's reading at the previous call
        self._listed = float("-inf")
        self._total = 0.0

    def __call__(self) -> float:
        if self._group is not None and time.monotonic() - self._listed >= RELIST_SECONDS:
            self._relist()
        for pid, clock in list(self._clocks.items()):
            try:
                now = clock()
            except OSError:
                if pid == self._serving:
                    raise
                self._forget(pid)  # a worker that has just ended
                continue
            self._total += now - self._last.get(pid, now)
            self._last[pid] = now
        return self._total

    def _relist(self) -> None:
        self._listed = time.monotonic()
        workers = children_of(self._group) | {self._serving}
        for pid in set(self._clocks) - workers:
            self._forget(pid)
        for pid in workers - set(self._clocks):
            clock = cpu_clock(pid)
            if clock is not None:
                self._clocks[pid] = clock

    def _forget(self, pid: int) -> None:
        del self._clocks[pid]
        self._last.pop(pid, None)


class Pacer:
    """The pacer of the calling process (the builder), on behalf of `serving`
    and, given `group`, of the other workers `group` started (see `ServingCPU`):
    a small Python process of its own (no site packages, nothing of the
    builder's heap). Where that cannot be had (no memfd, no CPU clocks: not
    Linux), there is no pacer process and nothing is paced."""

    def __init__(self, serving: int, group: int | None = None) -> None:
        self._process: subprocess.Popen | None = None  # held: a Popen dropped while its process runs warns
        try:
            fd = os.memfd_create("seedfeeds-pacer")
        except (AttributeError, OSError):
            self._building = bytearray(1)  # nobody reads it
            return
        try:
            os.ftruncate(fd, 1)
            self._building = mmap.mmap(fd, 1)  # shared with the pacer: 1 while a build runs
            if cpu_clock(serving) is not None:
                argv = [sys.executable, "-I", "-S", __file__, str(os.getpid()), str(serving), str(fd), str(group or 0)]
                self._process = subprocess.Popen(argv, pass_fds=(fd,), stdin=subprocess.DEVNULL)
        finally:
            os.close(fd)

    @contextmanager
    def building(self) -> Iterator[None]:
        """Paced in here while the server is busy. Sending the result is not: the
        server is busy then taking it in, and would slow its own start-up."""
        self._building[0] = 1
        try:
            yield
        finally:
            self._building[0] = 0


def resume_if_orphaned(builder: int) -> None:
    """Resume `builder` if it is stopped and no pacer of it is alive to resume it
    (one killed by SIGKILL between a SIGSTOP and its SIGCONT). The serving
    process calls this while it waits for a build."""
    if _state(builder) != "T":
        return
    if not any(_state(child) not in ("", "Z") for child in children_of(builder)):
        _signal(builder, signal.SIGCONT)


def stat_fields(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state, parent pid, ...);
    empty once the process is gone. The name is skipped by its last ")": it may
    hold spaces and parentheses."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _state(pid: int) -> str:
    """A process's state letter (T stopped, Z ended...), "" once it is gone."""
    fields = stat_fields(pid)
    return fields[0] if fields else ""


def _pace(builder: int, building: mmap.mmap, serving_cpu: Callable[[], float]) -> None:
    """The pacer's loop, until `builder` (its parent) is gone."""
    stopped = False

    def go_on(*_: object) -> None:
        if stopped:
            _signal(builder, signal.SIGCONT)
        os._exit(0)

    signal.signal(signal.SIGTERM, go_on)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C in the terminal is for the server to handle
    try:
        looked, busy = (time.monotonic(), serving_cpu()), False
        while os.getppid() == builder:
            if not busy:
                time.sleep(LOOK_SECONDS)
            else:
                end = time.monotonic() + LOOK_SECONDS
                while building[0] and time.monotonic() < end:
                    stopped = True  # first: a SIGTERM between these two lines still lets it go on
                    _signal(builder, signal.SIGSTOP)
                    time.sleep(REST_SECONDS)
                    _signal(builder, signal.SIGCONT)
                    stopped = False
                    time.sleep(RUN_SECONDS)
            now = (time.monotonic(), serving_cpu())
            busy = building[0] == 1 and now[1] - looked[1] > BUSY_SHARE * (now[0] - looked[0])
            looked = now
    except OSError:  # the clock of a process that has just ended
        pass
    finally:
        if stopped:
            _signal(builder, signal.SIGCONT)


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:  # the builder has just ended
        pass


if __name__ == "__main__":  # the pacer: builder pid, serving pid, the flag's file descriptor, group pid or 0
    gc.disable()  # its loop makes no reference cycles
    _builder, _serving, _fd, _group = map(int, sys.argv[1:5])
    _clock = cpu_clock(_serving)
    if _clock is not None:
        _pace(_builder, mmap.mmap(_fd, 1), ServingCPU(_serving, _clock, _group or None))
