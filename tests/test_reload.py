"""Config changes without a restart: noticed at the next refresh (or on SIGHUP),
applied when valid, reported and ignored when not."""

from __future__ import annotations

import json
import os
import signal
import subprocess

from conftest import SEEDFEEDS, wait_for

NAMED = '\n[feed.vision]\ntitle = "Vision"\ntopics = ["Computer Vision"]\n'


def _edit(server, text: str) -> None:
    server.config.write_text(text, encoding="utf-8")


def test_new_named_feed_appears_and_removed_one_is_gone(server):
    """A feed added to the config is served after the next refresh; removed, it answers 410 pointing to /."""
    original = server.config.read_text()
    _edit(server, original + NAMED)
    wait_for(lambda: server.get("/feeds/vision.atom")[0] == 200)
    assert b"/feeds/vision.atom" in server.get("/")[2]
    _edit(server, original)
    wait_for(lambda: server.get("/feeds/vision.atom")[0] == 410)
    status, _, body = server.get("/feeds/vision.rss")
    assert status == 410 and b'href="/"' in body
    assert server.get("/feeds/never-existed.atom")[0] == 404


def test_changed_filter_rerenders_only_that_feed(server):
    """Changing one named feed's filter changes its documents' ETags and no others'."""
    original = server.config.read_text()
    _edit(server, original + NAMED)
    wait_for(lambda: server.get("/feeds/vision.atom")[0] == 200)
    before = {p: server.get(p)[1]["ETag"] for p in ("/feeds/vision.atom", "/feeds/all.atom", "/feeds/topics/ai.rss")}
    _edit(server, original + NAMED.replace('title = "Vision"', 'title = "Vision only"'))
    wait_for(lambda: server.get("/feeds/vision.atom")[1]["ETag"] != before["/feeds/vision.atom"])
    assert server.get("/feeds/all.atom")[1]["ETag"] == before["/feeds/all.atom"]
    assert server.get("/feeds/topics/ai.rss")[1]["ETag"] == before["/feeds/topics/ai.rss"]


def test_invalid_edit_is_reported_and_the_last_good_config_serves(server):
    """A config edit that does not validate shows on /healthz (file and key); feeds keep serving."""
    original = server.config.read_text()
    _edit(server, original + NAMED)
    wait_for(lambda: server.get("/feeds/vision.atom")[0] == 200)
    _edit(server, original + NAMED + "\n[limits]\nbogus = 1\n")
    wait_for(lambda: server.get("/healthz")[0] == 503)
    reason = json.loads(server.get("/healthz")[2])["reason"]
    assert "limits.bogus" in reason and str(server.config) in reason
    assert server.get("/feeds/vision.atom")[0] == 200
    _edit(server, original + NAMED)
    wait_for(lambda: server.get("/healthz")[0] == 200)


def test_sighup_reloads_at_once(server):
    """SIGHUP to the serving process reloads the config even when its file looks unchanged."""
    original = server.config.read_bytes()
    edited = original.replace(b'title = "Test feeds"', b'title = "Test FEEDS"')
    st = os.stat(server.config)
    with open(server.config, "r+b") as handle:  # same inode, same size, same mtime: invisible to the poll
        handle.write(edited)
    os.utime(server.config, ns=(st.st_atime_ns, st.st_mtime_ns))
    server.wait_for_refresh()
    assert b"Test FEEDS" not in server.get("/")[2]
    os.kill(json.loads(server.get("/healthz")[2])["pid"], signal.SIGHUP)
    wait_for(lambda: b"Test FEEDS" in server.get("/")[2])


def test_check_validates_a_config_without_serving(tmp_path, config_file):
    """`seedfeeds check --config FILE` says whether a config is valid (exit 2 and one line if not)."""
    good = subprocess.run([SEEDFEEDS, "check", "--config", str(config_file)], capture_output=True, text=True)
    assert good.returncode == 0 and "config OK" in good.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text(config_file.read_text() + '\n[feed.x]\ntopics = ["a"]\n')
    result = subprocess.run([SEEDFEEDS, "check", "--config", str(bad)], capture_output=True, text=True)
    assert result.returncode == 2 and "feed.x.title" in result.stderr and len(result.stderr.splitlines()) == 1
