"""/metrics: Prometheus text a real scraper parses, counting what the server did."""

from __future__ import annotations

import re
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.test import Client

from conftest import BUNDLED_SEEDS, wait_for, write_config
from feeds import load_config
from web import create_app
from web.metrics import RequestTally, route_class

BROKEN_YAML = "---\ntitle: [unclosed\n---\n"


def scrape(get) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one scrape, keyed by (name, sorted labels), parsed as Prometheus does."""
    status, headers, body = get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples}


def requests(samples, route: str, status: str) -> float:
    return samples.get(("seedfeeds_http_requests_total", (("route", route), ("status", status))), 0)


def test_requests_are_counted_by_route_and_status(server):
    """Plain, gzip, 304, HEAD and 404 answers, fast path or Flask, are counted with the body bytes sent."""
    plain = server.get("/feeds/all.atom")
    gzipped = server.get("/feeds/all.atom", {"Accept-Encoding": "gzip"})
    assert server.get("/feeds/all.atom", {"Accept-Encoding": "gzip",
                                          "If-None-Match": gzipped[1]["ETag"]})[0] == 304  # fast path
    assert server.get("/feeds/all.atom", {"If-None-Match": f'W/{plain[1]["ETag"]}'})[0] == 304  # Flask
    assert server.get("/feeds/all.rss", method="HEAD")[0] == 200
    missing = server.get("/feeds/nope.atom")
    assert missing[0] == 404 and server.get("/nope")[0] == 404
    directory = server.get("/")

    samples = scrape(server.get)
    assert requests(samples, "feed", "200") == 3
    assert requests(samples, "feed", "304") == 2
    assert requests(samples, "feed", "404") == 1
    assert requests(samples, "other", "404") == 1
    assert requests(samples, "directory", "200") == 1
    assert requests(samples, "healthz", "200") >= 1  # the fixture polled it until the server was up
    assert requests(samples, "metrics", "200") == 0  # a scrape is counted once answered
    sent = len(plain[2]) + len(gzipped[2]) + len(missing[2])
    assert samples[("seedfeeds_http_response_bytes_total", (("route", "feed"),))] == sent
    assert samples[("seedfeeds_http_response_bytes_total", (("route", "directory"),))] == len(directory[2])
    assert requests(scrape(server.get), "metrics", "200") == 1


def test_records_are_counted_by_state(server):
    """Published, left-out, broken and stale records come from the served snapshot."""
    seeds = server.config.parent / "seeds"
    (seeds / "broken.txt").write_text(BROKEN_YAML, encoding="utf-8")
    (seeds / "000_3416384145912650.txt").write_text(BROKEN_YAML, encoding="utf-8")  # was good: now stale

    def records():
        samples = scrape(server.get)
        return {state: samples[("seedfeeds_records", (("state", state),))]
                for state in ("published", "left_out", "broken", "stale")}

    wait_for(lambda: records()["stale"] == 1)
    assert records() == {"published": 1, "left_out": 4, "broken": 2, "stale": 1}


def test_refreshes_are_counted_by_outcome_and_timed(server):
    """Each refresh is counted as ok, unchanged or failed, and its duration observed."""

    def outcomes():
        samples = scrape(server.get)
        return {outcome: samples[("seedfeeds_refreshes_total", (("outcome", outcome),))]
                for outcome in ("ok", "unchanged", "failed")}

    wait_for(lambda: outcomes()["unchanged"] >= 1)
    seeds = server.config.parent / "seeds"
    seeds.rename(seeds.with_name("seeds-away"))
    wait_for(lambda: outcomes()["failed"] >= 1)
    samples = scrape(server.get)
    assert outcomes()["ok"] == 1  # the first build; nothing changed since
    timed = samples[("seedfeeds_refresh_duration_seconds_count", ())]
    assert timed >= 3 and samples[("seedfeeds_refresh_duration_seconds_bucket", (("le", "+Inf"),))] == timed
    assert 0 <= samples[("seedfeeds_snapshot_age_seconds", ())] < 60


@pytest.fixture
def app(tmp_path):
    return create_app(load_config(write_config(tmp_path / "c.toml", BUNDLED_SEEDS,
                                               extra=f'[state]\npath = "{tmp_path}/state"')))


def _client_get(app):
    client = Client(app)

    def get(path):
        response = client.get(path)
        return response.status_code, response.headers, response.get_data()

    return get


def test_hub_pings_are_counted_by_outcome(app):
    """`metrics.count_hub_ping()` (for the WebSub publisher) shows in seedfeeds_hub_pings_total."""
    get = _client_get(app)
    assert scrape(get)[("seedfeeds_hub_pings_total", (("outcome", "ok"),))] == 0
    metrics = app.extensions["seedfeeds"].metrics
    metrics.count_hub_ping("ok")
    metrics.count_hub_ping("ok")
    metrics.count_hub_ping("failed")
    samples = scrape(get)
    assert samples[("seedfeeds_hub_pings_total", (("outcome", "ok"),))] == 2
    assert samples[("seedfeeds_hub_pings_total", (("outcome", "failed"),))] == 1


def test_each_app_has_its_own_registry(app, tmp_path):
    """Two apps in one process count apart (no global registry)."""
    other = create_app(load_config(write_config(tmp_path / "d.toml", BUNDLED_SEEDS,
                                                extra=f'[state]\npath = "{tmp_path}/state2"')))
    Client(app).get("/feeds/all.json")
    assert requests(scrape(_client_get(app)), "feed", "200") == 1
    assert requests(scrape(_client_get(other)), "feed", "200") == 0


def test_tally_loses_no_count_across_threads():
    """Concurrent counts from many threads add up exactly."""
    tally = RequestTally()

    def work():
        for _ in range(20_000):
            tally.count("feed", "200 OK", 3)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tally.count("feed", "304 NOT MODIFIED", 0)
    assert tally.totals() == {("feed", "200"): (160_000, 480_000), ("feed", "304"): (1, 0)}


@pytest.mark.parametrize(("path", "route"), [
    ("/feeds/all.atom", "feed"), ("/feeds/nope", "feed"), ("/", "directory"), ("/healthz", "healthz"),
    ("/metrics", "metrics"), ("/feeds", "other"), ("/index.html", "other"), ("/healthz/", "other"),
])
def test_route_class(path, route):
    """Each path falls in one route class."""
    assert route_class(path) == route


def test_every_metric_is_documented(app):
    """Each metric family /metrics exposes has a row in the README's metrics table."""
    from conftest import ROOT

    app.extensions["seedfeeds"].metrics.count_hub_ping("ok")
    Client(app).get("/")
    status, _, body = _client_get(app)("/metrics")
    families = {family.name for family in text_string_to_metric_families(body.decode())
                if not family.name.endswith("_created")}  # prometheus_client's start times
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(seedfeeds_\w+)` \|", readme, re.M))
    exposed = {name + "_total" if f"{name}_total" in documented else name for name in families}
    assert exposed == documented
