"""Logs: one line per refresh with what it did, and request logs in the combined log format on demand."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from conftest import wait_for
from web.accesslog import combined_line

NEW_SEED = """---
title: "Robots, again"
publishedDateTime: 2022-05-01T08:00:00Z
originalUrl: "https://example.com/news/robots"
topics: [Robotics]
---
"""

REFRESH = re.compile(
    r"INFO seedfeeds: refresh outcome=(?P<outcome>ok|unchanged) duration_seconds=(?P<seconds>\d+\.\d{3}) "
    r"files_scanned=(?P<scanned>\d+) files_changed=(?P<changed>\d+) files_removed=(?P<removed>\d+) "
    r"files_broken=(?P<broken>\d+) documents_changed=(?P<documents>\d+) documents_removed=(?P<gone>\d+) "
    r"entries=(?P<entries>\d+) feeds=(?P<feeds>\d+)$", re.M)
# host ident user [time] "request" status bytes "referer" "user-agent" (Apache's combined format)
COMBINED = re.compile(
    r'^(?P<host>\S+) - (?P<user>\S+) \[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] '
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'"(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)"$', re.M)


def _refreshes(server) -> list[dict[str, str]]:
    return [m.groupdict() for m in REFRESH.finditer(server.logs())]


def test_each_refresh_logs_one_line_with_its_counts(server):
    """A refresh logs its outcome, duration, files scanned/changed/removed/broken and documents changed."""
    first = _refreshes(server)[0]
    assert first["outcome"] == "ok" and first["scanned"] == first["changed"] == "5"
    assert first["entries"] == "1" and first["feeds"] == "4" and first["broken"] == "0"
    unchanged = wait_for(lambda: [r for r in _refreshes(server) if r["outcome"] == "unchanged"])[0]
    assert unchanged["changed"] == unchanged["documents"] == "0" and unchanged["scanned"] == "5"

    batch = server.config.parent / "batch"  # both files appear in one rename, so in one refresh
    batch.mkdir()
    (batch / "new.md").write_text(NEW_SEED, encoding="utf-8")
    (batch / "broken.txt").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    batch.rename(server.config.parent / "seeds" / "batch")
    wait_for(lambda: any(r["scanned"] == "7" for r in _refreshes(server)))
    added = next(r for r in _refreshes(server) if r["scanned"] == "7")
    assert added["outcome"] == "ok" and added["changed"] == "2" and added["broken"] == "1"
    assert int(added["documents"]) > 0 and added["entries"] == "2"


def test_access_log_is_off_by_default(server):
    """Without --access-log, requests write no log lines."""
    assert server.get("/feeds/all.atom")[0] == 200
    assert server.get("/nope")[0] == 404
    assert not COMBINED.search(server.logs())


def test_access_log_writes_combined_format(tmp_path, config_file, start_server):
    """With --access-log, every request, fast path or Flask, is one combined-format line."""
    server = start_server(config_file, args=("--access-log",))
    _, headers, body = server.get("/feeds/all.atom", {"Referer": "https://reader.example/", "User-Agent": 'Tiny "RSS"'})
    server.get("/feeds/all.atom", {"If-None-Match": headers["ETag"]})
    server.get("/feeds/all.json?limit=1")
    server.get("/nope", method="HEAD")
    wait_for(lambda: "/nope" in server.logs())
    lines = [m.groupdict() for m in COMBINED.finditer(server.logs()) if "/healthz" not in m["request"]]
    assert [(r["request"], r["status"]) for r in lines] == [
        ("GET /feeds/all.atom HTTP/1.1", "200"), ("GET /feeds/all.atom HTTP/1.1", "304"),
        ("GET /feeds/all.json?limit=1 HTTP/1.1", "200"), ("HEAD /nope HTTP/1.1", "404")]
    assert lines[0]["host"] == "127.0.0.1" and lines[0]["bytes"] == str(len(body))
    assert lines[0]["referer"] == "https://reader.example/" and lines[0]["agent"] == r"Tiny \"RSS\""
    assert lines[1]["bytes"] == "-" and lines[3]["bytes"] == "-"  # no body sent
    datetime.strptime(lines[0]["time"], "%d/%b/%Y:%H:%M:%S %z")


def test_access_log_escapes_what_the_client_sent():
    """Quotes, backslashes, control and non-ASCII bytes from the client cannot forge or break a line."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": '/feeds/a b"\n.atom', "QUERY_STRING": 'x="1"',
               "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "10.0.0.1",
               "HTTP_USER_AGENT": 'evil\\" "\r\n10.0.0.2 - - [forged]\xe9', "HTTP_REFERER": "-"}
    line = combined_line(environ, datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc), "404", 0)
    assert "\n" not in line and "\r" not in line
    match = COMBINED.fullmatch(line)
    assert match is not None, line
    assert match["request"] == r"GET /feeds/a%20b%22%0A.atom?x=\"1\" HTTP/1.1"
    assert match["agent"] == r'evil\\\" \"\x0d\x0a10.0.0.2 - - [forged]\xe9'
    assert match["time"] == "01/May/2024:08:00:00 +0000" and match["bytes"] == "-"
