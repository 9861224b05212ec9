"""The scheduler and the atomic swap: a refresh builds a new snapshot aside,
then replaces the served one in a single assignment.

A request reads `service.snapshot` once and uses that object throughout, so it
never sees half a refresh; a failed refresh keeps the last good snapshot.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime, timezone

from apscheduler.schedulers.background import BackgroundScheduler

from feeds import Builder, Config
from feeds.snapshot import Document, Snapshot, carry_last_modified, limit_feed, render_feed

from .fastpath import Prepares
from .metrics import Metrics

log = logging.getLogger("seedfeeds")
LIMITED_CACHE = 256


class Service:
    """What the serving side holds: the current snapshot and how refreshes went."""

    def __init__(self, config: Config, builder: Builder | None = None) -> None:
        self.config = config
        self.builder = builder or Builder(config)  # or a BuilderProcess: anything with build()
        self.snapshot: Snapshot | None = None
        self._built: Snapshot | None = None  # the builder's last snapshot, before Last-Modified dating
        self.prepares = Prepares(config.refresh_seconds)  # ready-made answers for the fast path
        self.built_at: float | None = None  # time.time() of the last successful refresh
        self.last_error: str | None = None
        self.metrics = Metrics(self)  # this process's /metrics; hub pings: metrics.count_hub_ping()
        self._refreshing = threading.Lock()
        self._scheduler: BackgroundScheduler | None = None
        self._scheduler_lock = threading.Lock()
        # Documents rendered for ?limit=N, kept for the snapshot they came from only.
        self._limited: tuple[Snapshot | None, OrderedDict[tuple[str, int], Document]] = (None, OrderedDict())
        self._limited_lock = threading.Lock()

    def refresh(self) -> bool:
        """Rescan and swap in the new snapshot; on any failure keep the old one."""
        with self._refreshing:
            started = time.perf_counter()
            try:
                fresh = self.builder.build()
            except Exception as exc:  # noqa: BLE001 - a refresh must never take the service down
                self.last_error = f"{type(exc).__name__}: {exc}"
                seconds = time.perf_counter() - started
                self.metrics.observe_refresh("failed", seconds)
                log.exception("refresh failed after %.3fs; still serving the last good snapshot", seconds)
                return False
            now = time.time()
            changed = fresh is not self._built  # the builder hands back the same object when nothing changed
            documents = self._swap(fresh, now) if changed else (0, 0)
            self.built_at = now
            self.last_error = None
            seconds = time.perf_counter() - started
            outcome = "ok" if changed else "unchanged"
            self.metrics.observe_refresh(outcome, seconds)
            report = self.builder.last_report
            log.info("refresh outcome=%s duration_seconds=%.3f files_scanned=%d files_changed=%d files_removed=%d "
                     "files_broken=%d documents_changed=%d documents_removed=%d entries=%d feeds=%d",
                     outcome, seconds, report.files, report.read, report.removed, fresh.errors,
                     *documents, fresh.entry_count, len(fresh.feeds))
            return True

    def _swap(self, fresh: Snapshot, now: float) -> tuple[int, int]:
        """Date and serve a new snapshot; how many documents' bytes changed (or
        are new), and how many are gone."""
        self._built = fresh
        before = self.snapshot.documents if self.snapshot else {}
        snapshot = carry_last_modified(self.snapshot, fresh, datetime.fromtimestamp(now, timezone.utc))
        self.prepares.update(snapshot)  # before the swap: the fast path never lags the snapshot
        self.snapshot = snapshot
        # The snapshot lives until the next change: move it out of the cyclic
        # collector's sight (a full collection over 10k entries holds the GIL
        # ~70 ms). Snapshots hold no reference cycles; refcounting frees them.
        gc.freeze()
        changed = sum(1 for path, doc in snapshot.documents.items()
                      if path not in before or before[path].etag != doc.etag)
        return changed, sum(1 for path in before if path not in snapshot.documents)

    def limited(self, snapshot: Snapshot, key: str, fmt: str, limit: int) -> Document:
        """The feed with only its newest `limit` entries, rendered once per snapshot."""
        with self._limited_lock:
            if self._limited[0] is not self.snapshot:
                self._limited = (self.snapshot, OrderedDict())
            owner, cache = self._limited
            doc = cache.get((f"{key}.{fmt}", limit)) if owner is snapshot else None
        if doc is not None:
            return doc
        full = snapshot.documents[f"/feeds/{key}.{fmt}"]
        doc = replace(render_feed(limit_feed(snapshot.feeds[key], limit), fmt), last_modified=full.last_modified)
        with self._limited_lock:
            if owner is snapshot:
                cache[(f"{key}.{fmt}", limit)] = doc
                while len(cache) > LIMITED_CACHE:
                    cache.popitem(last=False)
        return doc

    def start_scheduler(self) -> None:
        """Start the periodic refresh, once per process whoever calls."""
        with self._scheduler_lock:
            if self._scheduler is not None:
                return
            scheduler = BackgroundScheduler(daemon=True)
            # One run at a time; runs missed while one was busy collapse into one.
            scheduler.add_job(self.refresh, "interval", seconds=self.config.refresh_seconds,
                              id="refresh", max_instances=1, coalesce=True,
                              misfire_grace_time=self.config.refresh_seconds)
            scheduler.start()
            self._scheduler = scheduler
            log.info("scheduler started in pid %d: refresh every %ds", os.getpid(), self.config.refresh_seconds)

    def stop_scheduler(self) -> None:
        with self._scheduler_lock:
            if self._scheduler is not None:
                self._scheduler.shutdown(wait=False)
                self._scheduler = None
