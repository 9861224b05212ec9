"""Routes: every document of the snapshot, /healthz, /metrics, and small error pages."""

from __future__ import annotations

import os
import time
from html import escape

from flask import Flask, Response, abort, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.exceptions import HTTPException

from feeds.opml import opml_path
from feeds.urls import FORMATS

from .http import is_unchanged, send_delta, send_document, wants_feed_delta
from .metrics import route_class
from .refresh import Service

ERROR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{code} {name}</title></head>
<body><h1>{code} {name}</h1><p>{detail}</p><p><a href="/">See every feed</a>.</p></body></html>
"""


def service() -> Service:
    return current_app.extensions["seedfeeds"]


def document(name: str = "") -> Response:
    """Any document of the snapshot by its path: the directory, a feed, an archive
    page, a preview, the OPML files, the icon."""
    svc = service()
    snapshot = svc.snapshot  # read once: this request sees one snapshot only
    path = "/" + name
    doc = snapshot.documents.get(path)
    if doc is None:
        if _feed_key(name) in svc.gone:
            abort(410, description="This feed was removed from the configuration.")
        abort(404, description="There is no such feed or page.")
    if path == opml_path("atom") and "format" in request.args:
        fmt = request.args["format"]
        if fmt not in FORMATS:
            abort(400, description="format must be one of " + ", ".join(FORMATS) + ".")
        doc = snapshot.documents[opml_path(fmt)]
    elif "limit" in request.args:
        key, _, fmt = name.removeprefix("feeds/").rpartition(".")
        if not path.startswith("/feeds/") or key not in snapshot.feeds:
            abort(400, description="limit applies to feeds only.")
        limit = _limit(request.args["limit"], svc.config.entries_per_feed)
        doc = svc.limited(snapshot, key, fmt, min(limit, max(len(snapshot.feeds[key].entries), 1)))
    elif wants_feed_delta(request) and not is_unchanged(request, doc):
        key, _, fmt = name.removeprefix("feeds/").rpartition(".")
        if key in snapshot.feeds and fmt in FORMATS:
            delta = svc.history.delta(snapshot, key, fmt, list(request.if_none_match.as_set(include_weak=True)))
            if delta is not None:
                return send_delta(delta)
    return send_document(doc, svc.config.refresh_seconds)


def _feed_key(name: str) -> str:
    """The config-defined feed a path belongs to: "feeds/x.atom", "feeds/x/archive/2.rss" -> "x"."""
    if not name.startswith("feeds/"):
        return ""
    return name.removeprefix("feeds/").split("/archive/")[0].rsplit(".", 1)[0]


def _limit(raw: str, most: int) -> int:
    """`?limit=N`: an integer from 1 to entries_per_feed, else 400."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= most):
        abort(400, description=f"limit must be an integer from 1 to {most}.")
    return int(raw)


def healthz() -> Response:
    svc = service()
    snapshot = svc.snapshot
    age = time.time() - svc.built_at if svc.built_at else None
    replica = svc.replica
    problems = [f"last refresh failed: {svc.last_error}"] if svc.last_error else []
    if svc.watch.error:
        problems.append(f"config not reloaded: {svc.watch.error}")
    if replica is not None and replica.error is not None:
        problems.append(f"snapshot store: {replica.error}")
    healthy = not problems
    body = {
        "status": "ok" if healthy else "degraded",
        "reason": "; ".join(problems) or None,
        "snapshot_age_seconds": round(age, 3) if age is not None else None,
        "entries": snapshot.entry_count,
        "feeds": len(snapshot.feeds),
        "files": snapshot.file_count,
        "unusable_files": snapshot.errors,
        "left_out": dict(snapshot.left_out),
        "websub": svc.publisher.status() if svc.publisher else None,
        # Several processes: which one answered, and whether it is the one that builds.
        "store": "memory" if replica is None else "redis",
        "pid": os.getpid(),
        "builder": replica is None or replica.is_builder,
        "version": replica.version if replica is not None else None,
    }
    response = jsonify(body)
    response.status_code = 503 if problems else 200
    response.headers["Cache-Control"] = "no-store"
    return response


def metrics() -> Response:
    """Every metric of this process, in the Prometheus text format."""
    return Response(service().metrics.exposition(), content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})


def count_response(response: Response) -> Response:
    """Count an answer Flask gave (the fast path counts its own) for /metrics."""
    sent = 0 if request.method == "HEAD" else response.content_length or 0
    service().metrics.requests.count(route_class(request.path), response.status, sent)
    return response


def error_page(exc: HTTPException) -> Response:
    """A short HTML page pointing to the directory, for every HTTP error."""
    page = ERROR_PAGE.format(code=exc.code, name=escape(exc.name), detail=escape(exc.description or ""))
    response = exc.get_response()
    response.set_data(page)
    response.content_type = "text/html; charset=utf-8"
    return response


def register(app: Flask) -> None:
    """Attach the routes and error pages to `app`."""
    app.add_url_rule("/", view_func=document, methods=["GET"])
    app.add_url_rule("/healthz", view_func=healthz, methods=["GET"])
    app.add_url_rule("/<path:name>", view_func=document, methods=["GET"])
    app.add_url_rule("/metrics", view_func=metrics, methods=["GET"])
    app.register_error_handler(HTTPException, error_page)
    app.after_request(count_response)

