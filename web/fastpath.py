"""The hot path: the common feed request answered without Flask.

A poll for a feed is a GET (or HEAD) with no query string, and either no
validators or an If-None-Match that is exactly the ETag we sent. Those are
answered here from headers prepared once per snapshot: a dict lookup and a
couple of string comparisons per request, and two integer additions to count
it for /metrics. Anything else (a query string, an ETag list, a weak tag, If-Modified-Since alone, q-values in Accept-Encoding,
other paths and methods) goes to the Flask app, whose answers these mirror
header for header (a test compares them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from werkzeug.http import quote_etag

from feeds.snapshot import Document, Snapshot

from .heap import release_in_slices
from .http import response_headers
from .metrics import RequestTally, route_class

StartResponse = Callable[[str, list[tuple[str, str]]], object]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A document's ready-made answers: (status, headers, body) per case."""

    document: Document
    route: str  # its class for /metrics: "feed" or "directory"
    etag: str
    gzip_etag: str
    plain: tuple[str, list[tuple[str, str]], bytes] | None  # None for a gzip-only document: Flask inflates it
    gzipped: tuple[str, list[tuple[str, str]], bytes]
    plain_304: tuple[str, list[tuple[str, str]], bytes]
    gzipped_304: tuple[str, list[tuple[str, str]], bytes]


def prepare(doc: Document, max_age: int, route: str) -> Prepared:
    def answer(gzipped: bool) -> tuple[str, list[tuple[str, str]], bytes]:
        body = doc.gzip_body if gzipped else doc.body
        headers = response_headers(doc, gzipped, max_age)
        if gzipped:
            headers.append(("Content-Encoding", "gzip"))
        headers += [("Content-Type", doc.media_type), ("Content-Length", str(len(body)))]
        return "200 OK", headers, body

    return Prepared(
        document=doc, route=route, etag=quote_etag(doc.etag), gzip_etag=quote_etag(doc.gzip_etag),
        plain=answer(False) if doc.body is not None else None, gzipped=answer(True),
        plain_304=("304 Not Modified", _not_modified(doc, False, max_age), b""),
        gzipped_304=("304 Not Modified", _not_modified(doc, True, max_age), b""),
    )


def _not_modified(doc: Document, gzipped: bool, max_age: int) -> list[tuple[str, str]]:
    # RFC 9110 section 15.4.5: a 304 carries ETag, Cache-Control and Vary, not
    # representation metadata such as Last-Modified (Werkzeug drops it too).
    return [h for h in response_headers(doc, gzipped, max_age) if h[0] != "Last-Modified"]


class Prepares:
    """Prepared answers for every document of the current snapshot; a document
    unchanged since the last snapshot keeps its prepared answers."""

    def __init__(self, max_age: int) -> None:
        self.max_age = max_age
        self.by_path: dict[str, Prepared] = {}

    def update(self, snapshot: Snapshot) -> None:
        old = self.by_path
        self.by_path = {
            path: old[path] if path in old and old[path].document is doc else prepare(doc, self.max_age, route_class(path))
            for path, doc in snapshot.documents.items()
        }
        doomed = list(old.values())
        del old
        release_in_slices(doomed)  # the replaced answers: tens of objects each


class FastPath:
    """WSGI middleware: answer plain feed polls from `prepares` and count them
    in `tally`; pass the rest on."""

    def __init__(self, app: WSGIApp, prepares: Prepares, tally: RequestTally) -> None:
        self.app = app
        self.prepares = prepares
        self.count = tally.count

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        prepared = self.prepares.by_path.get(environ.get("PATH_INFO", ""))
        if prepared is None or method not in ("GET", "HEAD") or environ.get("QUERY_STRING"):
            return self.app(environ, start_response)
        encoding = environ.get("HTTP_ACCEPT_ENCODING", "")
        if ";" in encoding:  # q-values: let Werkzeug weigh them
            return self.app(environ, start_response)
        gzipped = bool(encoding) and not {"gzip", "*"}.isdisjoint(
            token.strip().lower() for token in encoding.split(","))
        tag = environ.get("HTTP_IF_NONE_MATCH")
        if tag is not None:
            if tag != prepared.etag and tag != prepared.gzip_etag:
                return self.app(environ, start_response)
            status, headers, body = prepared.gzipped_304 if gzipped else prepared.plain_304
        elif "HTTP_IF_MODIFIED_SINCE" in environ:
            return self.app(environ, start_response)
        else:
            answer = prepared.gzipped if gzipped else prepared.plain
            if answer is None:  # a full archive page kept gzipped only, asked for without gzip
                return self.app(environ, start_response)
            status, headers, body = answer
        start_response(status, headers)
        if method == "HEAD":
            self.count(prepared.route, status, 0)
            return []
        self.count(prepared.route, status, len(body))
        return [body]
