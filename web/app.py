"""The Flask application: `build_app()` hands the app to each part's setup."""

from __future__ import annotations

import logging

from flask import Flask

from feeds import Config, load_config

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
    With `access_log`, every request is logged to standard output.
    """
    from . import config_path

    config = config or load_config(config_path())
    _ensure_logging()
    app = Flask(__name__)
    app.json.sort_keys = False
    svc = Service(config, BuilderProcess(config) if builder_process else None)
    if not svc.refresh():
        raise RuntimeError(f"the first build failed: {svc.last_error}")
    app.extensions["seedfeeds"] = svc
    views.register(app)
    app.wsgi_app = FastPath(app.wsgi_app, svc.prepares, svc.metrics.requests)
    if access_log:
        app.wsgi_app = AccessLog(app.wsgi_app, log_to_stdout())
    if start_scheduler:
        svc.start_scheduler()
    elif start_scheduler is None:
        app.before_request(svc.start_scheduler)
    return app


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
