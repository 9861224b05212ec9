"""The hot path answers exactly as the Flask app would, for every request it takes."""

from __future__ import annotations

import pytest
from werkzeug.test import Client

from feeds import load_config
from web import create_app


@pytest.fixture(scope="module", params=["no hubs", "hubs"])
def app(tmp_path_factory, request):
    """The app on the bundled seeds; with "hubs", feed responses carry a WebSub Link header."""
    from conftest import BUNDLED_SEEDS, write_config

    folder = tmp_path_factory.mktemp("fast")
    hubs = '[websub]\nhubs = ["https://hub.example.org/"]\n' if request.param == "hubs" else ""
    return create_app(load_config(write_config(folder / "c.toml", BUNDLED_SEEDS,
                                               extra=f'{hubs}[state]\npath = "{folder}/state"')))


def _answer(wsgi, path, method, headers):
    response = Client(wsgi).open(path, method=method, headers=headers)
    return response.status_code, sorted(response.headers.items()), response.get_data()


def _etags(app):
    doc = app.extensions["seedfeeds"].snapshot.documents["/feeds/all.atom"]
    return f'"{doc.etag}"', f'"{doc.gzip_etag}"'


CASES = [
    ({}, "GET"), ({}, "HEAD"),
    ({"Accept-Encoding": "gzip"}, "GET"), ({"Accept-Encoding": "gzip, deflate, br"}, "GET"),
    ({"Accept-Encoding": "GZIP"}, "GET"), ({"Accept-Encoding": "x-gzip"}, "GET"),
    ({"Accept-Encoding": "*"}, "GET"), ({"Accept-Encoding": "br"}, "HEAD"),
    ({"Accept-Encoding": "gzip;q=0"}, "GET"), ({"If-Modified-Since": "Wed, 01 Jan 2031 00:00:00 GMT"}, "GET"),
    ({"If-None-Match": "PLAIN"}, "GET"), ({"If-None-Match": "GZIP", "Accept-Encoding": "gzip"}, "GET"),
    ({"If-None-Match": "GZIP"}, "GET"), ({"If-None-Match": "PLAIN", "Accept-Encoding": "gzip"}, "HEAD"),
    ({"If-None-Match": '"stale"'}, "GET"), ({"If-None-Match": "W/PLAIN"}, "GET"),
    ({"If-None-Match": "*"}, "GET"),
]


@pytest.mark.parametrize(("headers", "method"), CASES)
@pytest.mark.parametrize("path", ["/feeds/all.atom", "/feeds/all.json", "/", "/feeds/nope.rss", "/feeds/providers/forbes.com.rss"])
def test_fast_path_answers_as_flask_does(app, path, headers, method):
    """Status, headers (but Date) and body are the same with and without the fast path."""
    plain, gzipped = _etags(app)
    headers = {k: v.replace("W/PLAIN", f"W/{plain}").replace("PLAIN", plain).replace("GZIP", gzipped)
               for k, v in headers.items()}
    fast = _answer(app.wsgi_app, path, method, headers)
    slow = _answer(app.wsgi_app.app, path, method, headers)
    assert fast == slow


def test_fast_path_takes_plain_polls(app):
    """A plain poll and an exact-ETag revalidation never reach Flask."""
    plain, gzipped = _etags(app)
    reached = []
    inner = app.wsgi_app.app
    app.wsgi_app.app = lambda environ, start: reached.append(environ["PATH_INFO"]) or inner(environ, start)
    try:
        _answer(app.wsgi_app, "/feeds/all.atom", "GET", {"Accept-Encoding": "gzip"})
        _answer(app.wsgi_app, "/feeds/all.atom", "GET", {"If-None-Match": gzipped, "Accept-Encoding": "gzip"})
        _answer(app.wsgi_app, "/feeds/all.atom?limit=1", "GET", {})
    finally:
        app.wsgi_app.app = inner
    assert reached == ["/feeds/all.atom"]  # only the ?limit request
