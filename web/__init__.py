"""seedfeeds' web layer: the Flask app serving prebuilt snapshots.

`create_app()` hands the app to each part's setup: routes (`views`), the
refresh service and its scheduler (`refresh`). `flask --app web run` works.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from feeds.config import DEFAULT_CONFIG

if TYPE_CHECKING:
    from flask import Flask

    from feeds import Config

CONFIG_ENV = "SEEDFEEDS_CONFIG"
ACCESS_LOG_ENV = "SEEDFEEDS_ACCESS_LOG"  # "1": `seedfeeds serve --access-log`, passed to the server's worker
SERVE_PID_ENV = "SEEDFEEDS_SERVE_PID"  # the pid of `seedfeeds serve`, whose children are the serving workers


def config_path(given: str | os.PathLike | None = None) -> Path | None:
    """Which config file to read: `--config`, else $SEEDFEEDS_CONFIG, else
    ./config/seedfeeds.toml if present, else none (built-in defaults)."""
    if given:
        return Path(given)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def create_app(config: "Config | None" = None, *, start_scheduler: bool | None = None,
               builder_process: bool = False, access_log: bool = False) -> "Flask":
    """Build the app and its first snapshot (see `web.app.build_app`).

    Flask is imported here, not at the top, so `seedfeeds build` and `check`
    never load the web stack.
    """
    from .app import build_app

    return build_app(config, start_scheduler=start_scheduler, builder_process=builder_process,
                     access_log=access_log)
