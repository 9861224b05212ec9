"""A real WebSub hub for the tests: Flask-WebSub's hub, run as its own process.

    python websub_hub.py PORT DATABASE

Flask-WebSub does its work (verifying intent, fetching a topic, delivering it)
in Celery tasks. Here Celery runs them eagerly, in the request that asked for
them, so the hub needs no broker and no worker process: a subscribe request
returns once the hub has verified the subscriber's intent, and a publish request
once every subscriber has been sent the new content. The hub listens on
127.0.0.1 only and serves with Werkzeug's threaded server until it is killed.
"""

from __future__ import annotations

import logging
import sys

from celery import Celery
from flask import Flask
from flask_websub.hub import Hub, SQLite3HubStorage
from werkzeug.serving import make_server


def hub_app(database: str) -> Flask:
    """The hub at /hub, accepting publish requests (off by default in Flask-WebSub)."""
    app = Flask("websub_hub")
    app.config["PUBLISH_SUPPORTED"] = True
    celery = Celery("websub_hub", broker="memory://localhost/")
    celery.conf.task_always_eager = True
    hub = Hub(SQLite3HubStorage(database), celery, REQUEST_TIMEOUT=5, MAX_ATTEMPTS=2, BACKOFF_BASE=0.1)
    app.register_blueprint(hub.build_blueprint(url_prefix="/hub"))
    return app


def main() -> None:
    port, database = int(sys.argv[1]), sys.argv[2]
    logging.basicConfig(level=logging.INFO, format="hub %(levelname)s %(name)s: %(message)s")
    server = make_server("127.0.0.1", port, hub_app(database), threaded=True)
    print(f"hub listening on http://127.0.0.1:{port}/hub", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
