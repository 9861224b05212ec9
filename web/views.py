"""Routes: the directory page, the feeds, /healthz, /metrics, and small error pages."""

from __future__ import annotations

import time
from html import escape

from flask import Flask, Response, abort, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.exceptions import HTTPException

from .http import send_document
from .metrics import route_class
from .refresh import Service

ERROR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{code} {name}</title></head>
<body><h1>{code} {name}</h1><p>{detail}</p><p><a href="/">See every feed</a>.</p></body></html>
"""


def service() -> Service:
    return current_app.extensions["seedfeeds"]


def directory() -> Response:
    svc = service()
    return send_document(svc.snapshot.documents["/"], svc.config.refresh_seconds)


def feed(name: str) -> Response:
    svc = service()
    snapshot = svc.snapshot  # read once: this request sees one snapshot only
    doc = snapshot.documents.get(f"/feeds/{name}")
    if doc is None:
        abort(404, description="There is no such feed.")
    raw_limit = request.args.get("limit")
    if raw_limit is not None:
        key, _, fmt = name.rpartition(".")
        limit = _limit(raw_limit, svc.config.entries_per_feed)
        doc = svc.limited(snapshot, key, fmt, min(limit, max(len(snapshot.feeds[key].entries), 1)))
    return send_document(doc, svc.config.refresh_seconds)


def _limit(raw: str, most: int) -> int:
    """`?limit=N`: an integer from 1 to entries_per_feed, else 400."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6 and 1 <= int(raw) <= most):
        abort(400, description=f"limit must be an integer from 1 to {most}.")
    return int(raw)


def healthz() -> Response:
    svc = service()
    snapshot = svc.snapshot
    age = time.time() - svc.built_at if svc.built_at else None
    healthy = svc.last_error is None
    body = {
        "status": "ok" if healthy else "degraded",
        "reason": None if healthy else f"last refresh failed: {svc.last_error}",
        "snapshot_age_seconds": round(age, 3) if age is not None else None,
        "entries": snapshot.entry_count,
        "feeds": len(snapshot.feeds),
        "files": snapshot.file_count,
        "unusable_files": snapshot.errors,
        "left_out": dict(snapshot.left_out),
    }
    response = jsonify(body)
    response.status_code = 200 if healthy else 503
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
    app.add_url_rule("/", view_func=directory, methods=["GET"])
    app.add_url_rule("/healthz", view_func=healthz, methods=["GET"])
    app.add_url_rule("/feeds/<path:name>", view_func=feed, methods=["GET"])
    app.add_url_rule("/metrics", view_func=metrics, methods=["GET"])
    app.register_error_handler(HTTPException, error_page)
    app.after_request(count_response)

