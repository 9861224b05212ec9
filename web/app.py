"""The Flask application: `build_app()` hands the app to each part's setup."""

from __future__ import annotations

import logging
import signal
import threading
from functools import partial

from flask import Flask

from feeds import Builder, Config, load_config

from . import views
from .accesslog import AccessLog, log_to_stdout
from .builder_process import BuilderProcess
from .fastpath import FastPath
from .refresh import Service


def build_app(config: Config | None = None, *, start_scheduler: bool | None = None,
              builder_process: bool = False, access_log: bool = False) -> Flask:
    """Build the app and its first snapshot.

    The scheduler starts on the first request (so Flask's reloader parent,
    which never serves, starts none), or at once with `start_scheduler=True`.
    With `builder_process`, builds run in a child process (`seedfeeds serve`).
    With a Redis `snapshot_store`, the first snapshot is built or fetched when
    the scheduler starts (see `web.replica`).
    With `access_log`, every request is logged to standard output.
    """
    from . import config_path

    config = config or load_config(config_path())
    _ensure_logging()
    app = Flask(__name__)
    app.json.sort_keys = False
    if config.snapshot_store == "memory":
        # Nothing is served until the first build, just below, is done.
        svc = Service(config, BuilderProcess(config, first_build_alone=True) if builder_process else None)
        if not svc.refresh():
            raise RuntimeError(f"the first build failed: {svc.last_error}")
        start = svc.start_scheduler
    else:
        # Shared through Redis: this process builds only while it holds the builder lease.
        from .replica import shared_service  # redis-py is loaded only by processes that use it

        svc = shared_service(config, partial(BuilderProcess if builder_process else Builder, config))
        start = svc.replica.start  # fetches or builds the first snapshot, then follows
    app.extensions["seedfeeds"] = svc
    views.register(app)
    app.wsgi_app = FastPath(app.wsgi_app, svc.prepares, svc.metrics.requests)
    if access_log:
        app.wsgi_app = AccessLog(app.wsgi_app, log_to_stdout())
    _on_sighup(svc.reload_now)
    if start_scheduler:
        start()
    elif start_scheduler is None:
        app.before_request(start)
    return app


def _on_sighup(handler) -> None:
    """SIGHUP reloads the config, where this process may take signals (its main thread)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, lambda signum, frame: handler())


def _ensure_logging() -> None:
    """Refresh and scheduler lines reach stderr even when nothing configured
    logging (as under `flask run`), like Flask's own default handler."""
    logger = logging.getLogger("seedfeeds")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
