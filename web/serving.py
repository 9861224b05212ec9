"""What `seedfeeds serve` runs in each server worker process."""

from __future__ import annotations

import logging
import multiprocessing.util
import os
import signal
import sys
import threading
import time

from . import ACCESS_LOG_ENV, create_app

log = logging.getLogger("seedfeeds")

# How long a thread running Python keeps the GIL when another asks for it (CPython's
# default is 5 ms). While a refresh takes in and swaps a new snapshot, its thread runs
# Python for a few hundred ms and each request waits for it that long at worst: 0.5 ms
# cuts the worst waits of a request thread during a full rebuild of 10k seeds from
# 5.2 ms to 2 ms (a thread sleeping 1 ms in a loop, measuring how late it wakes).
SWITCH_INTERVAL = 0.0005


def wsgi_app():
    """The app factory granian calls in its worker: the config comes from
    $SEEDFEEDS_CONFIG (set by `seedfeeds serve`), and so does `--access-log`;
    builds run in a child process, and the scheduler starts at once."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    sys.setswitchinterval(SWITCH_INTERVAL)
    _exit_with_parent()
    # Granian's SIGTERM handler only tells its server loop to stop, and that loop
    # does not run until this factory returns: a stop asked for during the first
    # build would be lost. Until the app is ready, SIGTERM simply ends the worker
    # (its builder child sees its pipe close and exits too).
    graceful = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        app = create_app(start_scheduler=True, builder_process=True,
                         access_log=os.environ.get(ACCESS_LOG_ENV) == "1")
    finally:
        signal.signal(signal.SIGTERM, graceful)
    _leave_group_on_exit(app.extensions["seedfeeds"])
    return app


def _leave_group_on_exit(service) -> None:
    """With a shared store, a worker that stops the normal way (SIGTERM, as in a
    rolling deploy) hands the builder lease back as it exits, so another process
    takes over at its next tick rather than when the lease runs out (up to 10 s
    without a build). Granian's workers are multiprocessing children, which end
    with os._exit: atexit hooks never run there, multiprocessing's finalizers do."""
    replica = getattr(service, "replica", None)
    if replica is not None:
        multiprocessing.util.Finalize(replica, replica.stop, exitpriority=10)


def _exit_with_parent(interval: float = 0.25) -> None:
    """Stop this worker once granian's main process is gone. Killed with SIGKILL,
    that process cannot stop its workers, and an orphaned worker would keep
    serving its port (and, with a shared store, keep the builder lease)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        log.warning("worker pid %d: server process %d is gone; stopping", os.getpid(), parent)
        os.kill(os.getpid(), signal.SIGTERM)  # granian's own graceful stop
        time.sleep(10)
        os._exit(1)

    threading.Thread(target=watch, name="seedfeeds-parent-watch", daemon=True).start()
