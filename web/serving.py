"""What `seedfeeds serve` runs in each server worker process."""

from __future__ import annotations

import logging
import os

from . import ACCESS_LOG_ENV, create_app


def wsgi_app():
    """The app factory granian calls in its worker: the config comes from
    $SEEDFEEDS_CONFIG (set by `seedfeeds serve`), and so does `--access-log`;
    builds run in a child process, and the scheduler starts at once."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return create_app(start_scheduler=True, builder_process=True,
                      access_log=os.environ.get(ACCESS_LOG_ENV) == "1")
