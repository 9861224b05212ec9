"""Hostile and odd requests get a correct, small answer (RFC 9110 for the
conditional ones), against a real server on 127.0.0.1."""

from __future__ import annotations

import http.client
import socket

import pytest

SMALL = 4096  # bytes: an error answer is a short page, never a dump


def raw(server, method: str, path: str, headers: dict[str, str] | None = None):
    """Send the request exactly as written (no client-side path normalizing)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("path", [
    "/feeds/../../etc/passwd",
    "/feeds/..%2f..%2fetc%2fpasswd",
    "/feeds/%2e%2e/%2e%2e/etc/passwd",
    "/feeds/topics/../../../../etc/passwd.atom",
    "/feeds//etc/passwd",
    "/../pyproject.toml",
    "/feeds/%E0%A4%A.atom",
    "/feeds/%ZZ.atom",
    "/feeds/all.atom%00.txt",
    "/feeds/" + "a" * 5000 + ".atom",
])
def test_path_tricks_get_a_small_404_and_no_file(shared_server, path):
    """Traversal, bad percent-encoding and absurd paths never read a file: a short 404 or 400
    (or a redirect that merges doubled slashes, to a path that is then 404)."""
    status, headers, body = raw(shared_server, "GET", path)
    if status == 308:
        status, _, body = raw(shared_server, "GET", headers["Location"].removeprefix(shared_server.base))
    assert status in (400, 404)
    assert len(body) < SMALL and b"root:" not in body and b"[project]" not in body


@pytest.mark.parametrize("query", [
    "limit=%zz", "%%%", "a=1&&&=&limit", "limit=1&limit=2", "limit=%31", "limit=%202", "limit=%00",
    "x=" + "y" * 100_000, "limit=" + "9" * 10_000,
])
def test_odd_query_strings_get_a_correct_small_answer(shared_server, query):
    """Malformed or huge query strings answer 200, 400 or 414 — never 5xx, never a big error page."""
    status, _, body = raw(shared_server, "GET", "/feeds/all.json?" + query)
    assert status in (200, 400, 414, 431)
    assert status == 200 or len(body) < SMALL


def test_if_none_match_star_is_304(shared_server):
    """`If-None-Match: *` matches any current representation (RFC 9110 13.1.2)."""
    assert raw(shared_server, "GET", "/feeds/all.atom", {"If-None-Match": "*"})[0] == 304


def test_if_none_match_list_and_weak_tags(shared_server):
    """A list holding the ETag, or its weak form, is a match (weak comparison)."""
    etag = raw(shared_server, "GET", "/feeds/all.rss")[1]["ETag"]
    assert raw(shared_server, "GET", "/feeds/all.rss", {"If-None-Match": f'"a", "b", {etag}'})[0] == 304
    assert raw(shared_server, "GET", "/feeds/all.rss", {"If-None-Match": f"W/{etag}"})[0] == 304
    assert raw(shared_server, "GET", "/feeds/all.rss", {"If-None-Match": '"a", W/"b"'})[0] == 200


@pytest.mark.parametrize("value", ["yesterday", "", "Mon, 99 Foo 2020 99:99:99 GMT", "0", "Sun, 06 Nov 1994 08:49:37"])
def test_garbage_if_modified_since_is_ignored(shared_server, value):
    """An If-Modified-Since that is not an HTTP date is ignored: 200."""
    assert raw(shared_server, "GET", "/feeds/all.atom", {"If-Modified-Since": value})[0] == 200


def test_control_characters_in_a_header_are_refused(shared_server):
    """A header value with control characters is a bad request (RFC 9110 5.5)."""
    status, _, body = raw(shared_server, "GET", "/feeds/all.atom", {"If-Modified-Since": "\x01\x02"})
    assert status == 400 and len(body) < SMALL


def test_garbage_if_none_match_is_not_a_match(shared_server):
    """An unparsable If-None-Match matches nothing: 200."""
    assert raw(shared_server, "GET", "/feeds/all.atom", {"If-None-Match": "not-an-etag,,,"})[0] == 200


@pytest.mark.parametrize(("accept", "gzipped"), [
    ("gzip", True), ("GZIP", True), ("*", True), ("gzip;q=0.001", True), ("x-gzip", False),
    ("gzip;q=0", False), ("*;q=0", False), ("br", False), ("identity", False), ("", False),
    ("gzip;q=abc", False), (",,,;;;", False), ("deflate, " * 500 + "gzip", True),
])
def test_unusual_accept_encoding(shared_server, accept, gzipped):
    """Accept-Encoding is honoured by its q-values; anything odd falls back to identity."""
    status, headers, _ = raw(shared_server, "GET", "/feeds/all.atom", {"Accept-Encoding": accept})
    assert status == 200
    assert (headers.get("Content-Encoding") == "gzip") == gzipped


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "TRACE", "PROPFIND", "FOO"])
def test_methods_other_than_get_and_head_are_405(shared_server, method):
    """Any other method on a feed is 405 with Allow, and a short body."""
    status, headers, body = raw(shared_server, method, "/feeds/all.atom")
    assert status == 405 and "GET" in headers["Allow"] and len(body) < SMALL


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",
    b"GET /feeds/all.atom HTTP/9.9\r\n\r\n",
    b"GET /feeds/all.atom HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
    b"GET /feeds/all.atom HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 300_000 + b"\r\n\r\n",
])
def test_malformed_requests_get_an_error_not_a_crash(shared_server, request_bytes):
    """Broken request lines and headers get an answer below 500 (or the connection closed);
    the server keeps serving."""
    with socket.create_connection(("127.0.0.1", shared_server.port), timeout=10) as sock:
        try:
            sock.sendall(request_bytes)
            answer = sock.recv(200)
        except ConnectionError:
            answer = b""
    assert answer == b"" or (answer.startswith(b"HTTP/1.") and int(answer.split(b" ")[1]) < 500)
    assert shared_server.get("/feeds/all.atom")[0] == 200


def test_error_pages_echo_nothing_active(shared_server):
    """A 404 for a path full of markup does not reflect it."""
    status, _, body = raw(shared_server, "GET", "/feeds/%3Cscript%3Ealert(1)%3C%2Fscript%3E.atom")
    assert status == 404 and b"<script" not in body.lower()
