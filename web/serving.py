"""What `seedfeeds serve` runs in each server worker process."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from . import ACCESS_LOG_ENV, create_app

log = logging.getLogger("seedfeeds")


def wsgi_app():
    """The app factory granian calls in its worker: the config comes from
    $SEEDFEEDS_CONFIG (set by `seedfeeds serve`), and so does `--access-log`;
    builds run in a child process, and the scheduler starts at once."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    _exit_with_parent()
    # Granian's SIGTERM handler only tells its server loop to stop, and that loop
    # does not run until this factory returns: a stop asked for during the first
    # build would be lost. Until the app is ready, SIGTERM simply ends the worker
    # (its builder child sees its pipe close and exits too).
    graceful = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        return create_app(start_scheduler=True, builder_process=True,
                          access_log=os.environ.get(ACCESS_LOG_ENV) == "1")
    finally:
        signal.signal(signal.SIGTERM, graceful)


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
