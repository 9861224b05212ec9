"""Prometheus metrics for one serving process, on a registry of its own: GET /metrics.

Requests are counted on the hot path, so they are not prometheus_client
Counters (a lock and a label lookup per poll): each request adds to plain
integers in its thread's own table (`RequestTally`), and a collector sums the
tables when /metrics is scraped. Records and snapshot age are read from the
served snapshot at scrape time too. Refreshes and hub pings are rare, and use
prometheus_client's Counter and Histogram.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .refresh import Service

ROUTES = {"/": "directory", "/healthz": "healthz", "/metrics": "metrics"}
REFRESH_OUTCOMES = ("ok", "unchanged", "failed")
HUB_PING_OUTCOMES = ("ok", "retried", "failed")
# A refresh of a few files takes milliseconds; a cold build of 100k files, minutes.
REFRESH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


def route_class(path: str) -> str:
    """The `route` label of a request path: feed, directory, healthz, metrics or other."""
    if path.startswith("/feeds/"):
        return "feed"
    return ROUTES.get(path, "other")


class RequestTally:
    """Requests and body bytes sent, by (route class, status line).

    Each thread adds to its own table, so a count is two integer additions,
    with no lock and no lost update however many threads serve; `totals()`
    sums the tables.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._tables: list[dict[tuple[str, str], list[int]]] = []
        self._lock = threading.Lock()

    def count(self, route: str, status: str, sent: int) -> None:
        """One response: its route class, its status line ("200 OK") and the body bytes sent."""
        try:
            cell = self._local.table[route, status]
        except (AttributeError, KeyError):
            cell = self._new_cell(route, status)
        cell[0] += 1
        cell[1] += sent

    def _new_cell(self, route: str, status: str) -> list[int]:
        table = getattr(self._local, "table", None)
        if table is None:  # this thread's first response
            table = self._local.table = {}
            with self._lock:
                self._tables.append(table)
        return table.setdefault((route, status), [0, 0])

    def totals(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(route, status code) -> (requests, bytes), summed over every thread."""
        with self._lock:
            tables = list(self._tables)
        totals: dict[tuple[str, str], tuple[int, int]] = {}
        for table in tables:
            for (route, status), (requests, sent) in table.copy().items():  # copy(): atomic under the GIL
                key = (route, status[:3])
                before = totals.get(key, (0, 0))
                totals[key] = (before[0] + requests, before[1] + sent)
        return totals


class _RequestCollector(Collector):
    """Exposes a `RequestTally` as two counters."""

    def __init__(self, tally: RequestTally) -> None:
        self.tally = tally

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("seedfeeds_http_requests", "HTTP requests answered, by route class and status.",
                                       labels=["route", "status"])
        sent = CounterMetricFamily("seedfeeds_http_response_bytes", "Response body bytes sent, by route class.",
                                   labels=["route"])
        by_route: dict[str, int] = {}
        for (route, status), (count, size) in sorted(self.tally.totals().items()):
            requests.add_metric([route, status], count)
            by_route[route] = by_route.get(route, 0) + size
        for route, size in by_route.items():
            sent.add_metric([route], size)
        yield requests
        yield sent


class _SnapshotCollector(Collector):
    """Records by state and snapshot age, read from the service when scraped."""

    def __init__(self, service: "Service") -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        snapshot, built_at = self.service.snapshot, self.service.built_at
        if snapshot is None:
            return
        errors = [d for d in snapshot.diagnostics if d.severity == "error"]
        records = GaugeMetricFamily(
            "seedfeeds_records", "Seed records by state in the served snapshot "
            "(stale records are also broken, and their last good entries published).", labels=["state"])
        records.add_metric(["published"], snapshot.entry_count)
        records.add_metric(["left_out"], sum(snapshot.left_out.values()))
        records.add_metric(["broken"], len(errors))
        records.add_metric(["stale"], sum(1 for d in errors if d.stale))
        yield records
        if built_at is not None:
            yield GaugeMetricFamily("seedfeeds_snapshot_age_seconds",
                                    "Seconds since the last successful refresh.", value=time.time() - built_at)


class Metrics:
    """Every metric of one serving process, on its own registry (so several
    apps in one test process never collide)."""

    def __init__(self, service: "Service") -> None:
        self.registry = CollectorRegistry()
        self.requests = RequestTally()
        self.registry.register(_RequestCollector(self.requests))
        self.registry.register(_SnapshotCollector(service))
        self.refresh_seconds = Histogram("seedfeeds_refresh_duration_seconds", "Duration of each refresh.",
                                         buckets=REFRESH_BUCKETS, registry=self.registry)
        self.refreshes = Counter("seedfeeds_refreshes", "Refreshes by outcome.", ["outcome"], registry=self.registry)
        self.hub_pings = Counter("seedfeeds_hub_pings", "WebSub hub pings by outcome.", ["outcome"],
                                 registry=self.registry)
        for outcome in REFRESH_OUTCOMES:
            self.refreshes.labels(outcome)  # every series exists from the start, at 0
        for outcome in HUB_PING_OUTCOMES:
            self.hub_pings.labels(outcome)

    def observe_refresh(self, outcome: str, seconds: float) -> None:
        """Count a refresh ("ok", "unchanged" or "failed") and its duration."""
        self.refresh_seconds.observe(seconds)  # first: a scrape never sees more outcomes than durations
        self.refreshes.labels(outcome).inc()

    def count_hub_ping(self, outcome: str) -> None:
        """Count one ping attempt of a WebSub hub: "ok" (accepted), "retried" or "failed" (given up)."""
        self.hub_pings.labels(outcome).inc()

    def exposition(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)
