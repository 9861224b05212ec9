"""Refreshing: the scheduler picks up added, changed and deleted seed files;
a broken file is reported while the rest publishes; a failed refresh keeps
the last good snapshot. All against a real server rescanning every second."""

from __future__ import annotations

import json
import shutil

from conftest import wait_for

NEW_SEED = """---
title: "A brand new article about robots"
excerpt: "Robots, again."
publishedDateTime: 2022-05-01T08:00:00Z
originalUrl: "https://example.com/news/robots"
provider:
  name: Example News
  domain: www.Example.com
topics:
  - Robotics
---
Some **body** text.
"""


def _titles(server, path="/feeds/all.json"):
    status, _, body = server.get(path)
    assert status == 200
    return [item["title"] for item in json.loads(body)["items"]]


def test_added_file_appears_in_feeds(server):
    """A new seed file shows up in `all`, its topic and its provider feed after the next rescan."""
    (server.config.parent / "seeds" / "new.md").write_text(NEW_SEED, encoding="utf-8")
    wait_for(lambda: "A brand new article about robots" in _titles(server))
    assert _titles(server, "/feeds/topics/robotics.json") == ["A brand new article about robots"]
    assert _titles(server, "/feeds/providers/example.com.json") == ["A brand new article about robots"]
    assert _titles(server)[0] == "A brand new article about robots"  # newest first


def test_changed_file_updates_its_entry_and_etag(server):
    """Editing a seed changes its entry and the feed's ETag; unrelated documents keep theirs."""
    _, before, _ = server.get("/feeds/all.atom")
    seed = server.config.parent / "seeds" / "000_3416384145912650.txt"
    seed.write_text(seed.read_text().replace("Human Rights Groups Call", "Rights Groups Urge"))
    wait_for(lambda: _titles(server)[0].startswith("Rights Groups Urge"))
    _, after, _ = server.get("/feeds/all.atom")
    assert after["ETag"] != before["ETag"]


def test_deleted_file_leaves_the_feeds(server):
    """Deleting the only published seed empties `all` and removes its topic feeds."""
    (server.config.parent / "seeds" / "000_3416384145912650.txt").unlink()
    wait_for(lambda: _titles(server) == [])
    assert server.get("/feeds/topics/computer-vision.atom")[0] == 404


def test_broken_file_is_reported_while_the_rest_publishes(server):
    """A seed with bad YAML is listed with its file and field on `/`; the good entry stays."""
    (server.config.parent / "seeds" / "broken.txt").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    wait_for(lambda: b"broken.txt" in server.get("/")[2])
    page = server.get("/")[2].decode()
    assert "(yaml)" in page and "1 unusable file" in page
    assert _titles(server) == ["Human Rights Groups Call On The University Of Miami To Ban Facial Recognition"]
    assert json.loads(server.get("/healthz")[2])["unusable_files"] == 1


def test_missing_seed_folder_keeps_last_good_snapshot(server):
    """With the seed folder gone, feeds keep serving, /healthz is degraded, and it recovers by itself."""
    seeds = server.config.parent / "seeds"
    _, headers, body = server.get("/feeds/all.atom")
    moved = seeds.with_name("seeds-away")
    seeds.rename(moved)
    wait_for(lambda: server.get("/healthz")[0] == 503)
    health = json.loads(server.get("/healthz")[2])
    assert health["status"] == "degraded" and "missing" in health["reason"]
    status, again, same = server.get("/feeds/all.atom")
    assert status == 200 and same == body and again["ETag"] == headers["ETag"]
    moved.rename(seeds)
    wait_for(lambda: server.get("/healthz")[0] == 200)
    assert "refresh failed" in server.logs()


def test_unchanged_seeds_keep_etags_across_refreshes(server):
    """Rescans of unchanged seeds give the same bytes and validators."""
    first = {path: server.get(path)[1]["ETag"] for path in ("/", "/feeds/all.atom", "/feeds/all.json")}
    server.wait_for_refresh()
    assert {path: server.get(path)[1]["ETag"] for path in first} == first


def test_renamed_file_keeps_its_entry_id(server):
    """An entry's id is its canonical URL, so renaming the file changes nothing readers see."""
    _, headers, body = server.get("/feeds/all.atom")
    seeds = server.config.parent / "seeds"
    shutil.move(seeds / "000_3416384145912650.txt", seeds / "renamed.txt")
    server.wait_for_refresh()
    assert server.get("/feeds/all.atom")[2] == body
