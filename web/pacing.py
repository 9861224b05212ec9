"""Short slices for the builder child while its serving process is busy.

SCHED_IDLE (see `builder_process._yield_to_serving`) gives the builder only
the CPU time nobody else wants, yet on these 2-vCPU machines any CPU-bound
process beside a server under wrk's full load costs that server's p99 2.2-2.8x,
whatever it runs and however politely it is scheduled. What does not cost it is
idle time: the same busy loop stopped for 8 ms out of every 10 costs 1.6x, and
1 ms out of every 10, 1.1-1.2x (measured beside wrk; and a full rebuild of
10,000 seeds paced 2 ms in 10 from outside: p99 1.04-1.43x idle against
1.75-2.56x unpaced, the rebuild taking 121 s under that load instead of 35 s).

So a small pacer process watches the builder and the process it builds for.
While both are using CPU (the builder is building, the server is answering
requests), the pacer stops the builder with SIGSTOP and lets it go on with
SIGCONT: it runs RUN_SECONDS in every RUN_SECONDS + REST_SECONDS. When the
server is quiet (or the builder is waiting for work) nothing is paced, so a
rebuild on a quiet server runs at full speed and only a busy server gets a
slower rebuild.

The pacer is forked by the builder child before it does anything else, so it
holds next to nothing of its own; it leaves the builder running whenever it
stops (SIGTERM, an error), and exits as soon as the builder is gone.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from typing import Callable

RUN_SECONDS = 0.002  # the builder runs this long at a time while the server is busy...
REST_SECONDS = 0.008  # ...then rests this long (idle time is what the server needs)
LOOK_SECONDS = 0.05  # how often the two processes' CPU time is looked at
BUSY_SHARE = 0.10  # the server is busy above this share of one CPU over a look
WORKING_SHARE = 0.01  # the builder is building above this share (it is paced to 0.2)


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


def start_pacer(builder: int, serving: int) -> int | None:
    """Fork the pacer of `builder` (the calling process) on behalf of `serving`;
    its pid, or None where CPU clocks cannot be read. Call it while the caller
    has no other thread."""
    builder_cpu, serving_cpu = cpu_clock(builder), cpu_clock(serving)
    if builder_cpu is None or serving_cpu is None:
        return None
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        _close_inherited_fds()
        pace(builder, builder_cpu, serving_cpu)
        code = 0
    finally:
        os._exit(code)


def pace(builder: int, builder_cpu: Callable[[], float], serving_cpu: Callable[[], float]) -> None:
    """The pacer's loop, until `builder` (its parent) is gone."""
    stopped = False

    def go_on(*_: object) -> None:
        if stopped:
            _signal(builder, signal.SIGCONT)
        os._exit(0)

    signal.signal(signal.SIGTERM, go_on)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a ^C in the terminal is for the server to handle
    try:
        looked, busy = _look(builder_cpu, serving_cpu), False
        while os.getppid() == builder:
            if not busy:
                time.sleep(LOOK_SECONDS)
            else:
                end = time.monotonic() + LOOK_SECONDS
                while time.monotonic() < end:
                    stopped = True  # first: a SIGTERM between these two lines still lets it go on
                    _signal(builder, signal.SIGSTOP)
                    time.sleep(REST_SECONDS)
                    _signal(builder, signal.SIGCONT)
                    stopped = False
                    time.sleep(RUN_SECONDS)
            now = _look(builder_cpu, serving_cpu)
            busy = _busy(looked, now)
            looked = now
    except OSError:  # the clock of a process that has just ended
        pass
    finally:
        if stopped:
            _signal(builder, signal.SIGCONT)


def _look(builder_cpu: Callable[[], float], serving_cpu: Callable[[], float]) -> tuple[float, float, float]:
    return time.monotonic(), builder_cpu(), serving_cpu()


def _busy(before: tuple[float, float, float], now: tuple[float, float, float]) -> bool:
    """Whether, between two looks, the builder was building and the server busy."""
    wall = now[0] - before[0]
    return now[1] - before[1] > WORKING_SHARE * wall and now[2] - before[2] > BUSY_SHARE * wall


def _signal(pid: int, signum: int) -> bool:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return False
    return True


def _close_inherited_fds() -> None:
    """The pacer holds none of the builder's pipes open: the serving process must
    see the builder's end close when the builder ends."""
    os.closerange(3, _fd_limit())


def _fd_limit() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 1024
