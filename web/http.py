"""Conditional and gzip responses for prebuilt documents.

Werkzeug parses the request headers (ETags, HTTP dates, Accept-Encoding);
this module only decides which prebuilt body to send, or 304.
"""

from __future__ import annotations

from flask import Request, Response, request
from werkzeug.http import http_date, parse_list_header, quote_etag

from feeds.snapshot import Document, plain_body


# A full archive page (RFC 5005) does not change: a year, and no revalidation.
IMMUTABLE = "public, max-age=31536000, immutable"


def accepts_gzip(req: Request) -> bool:
    """True when the client accepts gzip (RFC 9110 section 12.5.3; `q=0` refuses)."""
    return req.accept_encodings["gzip"] > 0


def is_unchanged(req: Request, doc: Document) -> bool:
    """RFC 9110 section 13.2.2: If-None-Match decides when present (weak
    comparison, either coding's tag); otherwise If-Modified-Since."""
    if "If-None-Match" in req.headers:
        tags = req.if_none_match
        return tags.contains_weak(doc.etag) or tags.contains_weak(doc.gzip_etag)
    since = req.if_modified_since
    return since is not None and doc.last_modified <= since


def response_headers(doc: Document, gzipped: bool, max_age: int) -> list[tuple[str, str]]:
    """The validators, caching headers and links of an answer for `doc` (200 and 304 alike)."""
    headers = [
        ("ETag", quote_etag(doc.gzip_etag if gzipped else doc.etag)),
        ("Last-Modified", http_date(doc.last_modified)),
        ("Cache-Control", IMMUTABLE if doc.immutable else f"public, max-age={max_age}"),
        ("Vary", "Accept-Encoding"),
        ("Access-Control-Allow-Origin", "*"),
    ]
    if doc.links:  # a feed's WebSub hubs and self URL
        headers.append(("Link", doc.links))
    return headers


def send_document(doc: Document, max_age: int) -> Response:
    """A 200 (gzip when accepted) or 304 for `doc`, with validators and caching headers."""
    gzipped = accepts_gzip(request)
    headers = dict(response_headers(doc, gzipped, max_age))
    if is_unchanged(request, doc):
        return Response(status=304, headers=headers)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    body = doc.gzip_body if gzipped else plain_body(doc)
    return Response(body, headers=headers, content_type=doc.media_type)


def wants_feed_delta(req: Request) -> bool:
    """RFC 3229 with "A-IM: feed": the client takes only the entries it lacks."""
    return "If-None-Match" in req.headers and any(
        token.split(";")[0].strip().lower() == "feed" for token in parse_list_header(req.headers.get("A-IM", "")))


def send_delta(doc: Document) -> Response:
    """226 IM Used: `doc` holds the new entries; its ETag is the current instance's."""
    gzipped = accepts_gzip(request)
    headers = {
        "ETag": quote_etag(doc.gzip_etag if gzipped else doc.etag),
        "IM": "feed",
        # Only caches that understand instance manipulations may keep a 226 (RFC 3229 10.5.3).
        "Cache-Control": "no-store",
        "Vary": "Accept-Encoding, A-IM, If-None-Match",
        "Access-Control-Allow-Origin": "*",
    }
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return Response(doc.gzip_body if gzipped else plain_body(doc), status=226, headers=headers,
                    content_type=doc.media_type)
