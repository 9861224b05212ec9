"""Logs: one line per refresh with what it did."""

from __future__ import annotations

import re

from conftest import wait_for

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
