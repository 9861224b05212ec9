"""The scheduler and the atomic swap: a refresh builds a new snapshot aside,
then replaces the served one in a single assignment.

A request reads `service.snapshot` once and uses that object throughout, so it
never sees half a refresh; a failed refresh keeps the last good snapshot.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime, timezone
from typing import Callable

from apscheduler.schedulers.background import BackgroundScheduler

from feeds import Builder, Config
from feeds.builder import BuildReport, collector_paused
from feeds.snapshot import Document, Snapshot, carry_last_modified, limit_feed, render_feed
from feeds.urls import Urls

from .delta import History
from .heap import out_of_collector_sight, release_in_slices, return_free_memory
from .fastpath import Prepares
from .reload import ConfigWatch, removed_feeds
from .metrics import Metrics
from .websub import ANNOUNCED_FILE, Announced, Publisher, changed_feeds, feed_etags

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
        self.history = History()  # recent versions of each feed, for RFC 3229 deltas
        self.built_at: float | None = None  # time.time() of the last successful refresh
        self.last_error: str | None = None
        self.watch = ConfigWatch(config)
        self.gone: set[str] = set()  # keys of named feeds a config reload removed: 410 Gone
        self.metrics = Metrics(self)  # this process's /metrics; hub pings: metrics.count_hub_ping()
        self._refreshing = threading.Lock()
        self._scheduler: BackgroundScheduler | None = None
        self._scheduler_lock = threading.Lock()
        # Documents rendered for ?limit=N, kept for the snapshot they came from only.
        self._limited: tuple[Snapshot | None, OrderedDict[tuple[str, int], Document]] = (None, OrderedDict())
        self._limited_lock = threading.Lock()
        # Pings the configured WebSub hubs about changed feeds, from its own thread.
        self.publisher = Publisher(config.hubs, report=self.metrics.count_hub_ping) if config.hubs else None
        self.replica = None  # a web.replica.Replica when snapshots are shared through Redis

    def refresh(self) -> bool:
        """Rescan and swap in the new snapshot; on any failure keep the old one."""
        with self._refreshing:
            started = time.perf_counter()
            try:
                self._apply_config()
                fresh = self.builder.build()
            except Exception as exc:  # noqa: BLE001 - a refresh must never take the service down
                self.last_error = f"{type(exc).__name__}: {exc}"
                seconds = time.perf_counter() - started
                self.metrics.observe_refresh("failed", seconds)
                log.exception("refresh failed after %.3fs; still serving the last good snapshot", seconds)
                return False
            now = time.time()
            changed = fresh is not self._built  # the builder hands back the same object when nothing changed
            if changed:
                with collector_paused():  # until _serve freezes what the swap made
                    documents = self._swap(fresh, now)
                return_free_memory()  # the previous snapshot is gone now that _swap returned
            else:
                documents = (0, 0)
            self.built_at = now
            self.last_error = None
            seconds = time.perf_counter() - started
            outcome = "ok" if changed else "unchanged"
            self.metrics.observe_refresh(outcome, seconds)
            report = self.builder.last_report or BuildReport(fresh.file_count, 0, 0)
            log.info("refresh outcome=%s duration_seconds=%.3f files_scanned=%d files_changed=%d files_removed=%d "
                     "files_broken=%d documents_changed=%d documents_removed=%d entries=%d feeds=%d",
                     outcome, seconds, report.files, report.read, report.removed, fresh.errors,
                     *documents, fresh.entry_count, len(fresh.feeds))
            return True

    def _swap(self, fresh: Snapshot, now: float) -> tuple[int, int]:
        """Date and serve a new snapshot; how many documents' bytes changed (or
        are new), and how many are gone."""
        self._built = fresh
        snapshot = carry_last_modified(self.snapshot, fresh, datetime.fromtimestamp(now, timezone.utc))
        previous = self._serve(snapshot)
        before = previous.documents if previous else {}
        if self.publisher is not None:
            self._publish(snapshot, previous)
        changed = sum(1 for path, doc in snapshot.documents.items()
                      if path not in before or before[path].etag != doc.etag)
        removed = sum(1 for path in before if path not in snapshot.documents)
        doomed = _parts(previous)
        del previous, before
        release_in_slices(doomed)
        return changed, removed

    def _serve(self, snapshot: Snapshot) -> Snapshot | None:
        """Answer with `snapshot` from now on; the one it replaces."""
        self.prepares.update(snapshot)  # before the swap: the fast path never lags the snapshot
        self.history.record(snapshot)
        previous, self.snapshot = self.snapshot, snapshot
        with self._limited_lock:  # or ?limit answers of the old snapshot keep it alive (and a request frees it)
            self._limited = (None, OrderedDict())
        out_of_collector_sight()
        return previous

    def _apply_config(self) -> None:
        fresh = self.watch.changed()
        if fresh is None:
            return
        self.gone = (self.gone | removed_feeds(self.config, fresh)) - {f.name for f in fresh.named_feeds}
        self.builder.reconfigure(fresh)
        if fresh.refresh_seconds != self.config.refresh_seconds:
            self.prepares = Prepares(fresh.refresh_seconds)
            with self._scheduler_lock:
                if self._scheduler is not None:
                    self._scheduler.reschedule_job("refresh", trigger="interval", seconds=fresh.refresh_seconds)
        if fresh.hubs != self.config.hubs:
            self.publisher = Publisher(fresh.hubs, report=self.metrics.count_hub_ping) if fresh.hubs else None
        self.config = fresh
        self._built = None  # date and prepare the next snapshot afresh

    def reload_now(self) -> None:
        """SIGHUP: read the config file and refresh now, on a thread of its own."""
        self.watch.forced = True
        threading.Thread(target=self.refresh, name="seedfeeds-reload", daemon=True).start()

    def _publish(self, snapshot: Snapshot, previous: Snapshot | None) -> None:
        """Queue a WebSub ping for each feed document changed since `previous`, or,
        on the first build, since the hubs were last told (returns at once)."""
        announced = Announced(self.config.state_path / ANNOUNCED_FILE)
        before = feed_etags(previous) if previous is not None else announced.load()
        now = feed_etags(snapshot)
        paths = changed_feeds(before, now) if before is not None else []  # first run ever: nothing to compare
        if before != now:
            announced.save(now)
        if not paths:
            return
        urls = Urls(self.config.base_url)
        log.info("websub: publishing %d changed feed documents to %d hubs", len(paths), len(self.publisher.hubs))
        self.publisher.publish(urls.absolute(path) for path in paths)

    def install(self, snapshot: Snapshot) -> None:
        """Serve `snapshot`, made elsewhere (fetched from a shared store), from now on."""
        with self._refreshing, collector_paused():  # never interleaved with a local refresh's swap
            release_in_slices(_parts(self._serve(snapshot)))
            return_free_memory()

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

    def start_scheduler(self, job: Callable[[], object] | None = None) -> None:
        """Start the periodic refresh (or `job`), once per process whoever calls."""
        with self._scheduler_lock:
            if self._scheduler is not None:
                return
            scheduler = BackgroundScheduler(daemon=True)
            # One run at a time; runs missed while one was busy collapse into one.
            scheduler.add_job(job or self.refresh, "interval", seconds=self.config.refresh_seconds,
                              id="refresh", max_instances=1, coalesce=True,
                              misfire_grace_time=self.config.refresh_seconds)
            scheduler.start()
            self._scheduler = scheduler
            log.info("scheduler started in pid %d: refresh every %ds", os.getpid(), self.config.refresh_seconds)

    def refresh_soon(self) -> None:
        """Run the scheduled job now rather than at its next interval (if the scheduler runs)."""
        with self._scheduler_lock:
            if self._scheduler is not None:
                self._scheduler.modify_job("refresh", next_run_time=datetime.now(timezone.utc))

    def stop_scheduler(self) -> None:
        with self._scheduler_lock:
            if self._scheduler is not None:
                self._scheduler.shutdown(wait=False)
                self._scheduler = None


def _parts(snapshot: Snapshot | None) -> list:
    """What a snapshot holds, for `release_in_slices`: documents, then entries, then
    feeds (freed first, they hold the entries); empty for none."""
    if snapshot is None:
        return []
    feeds = list(snapshot.feeds.values())
    return [*snapshot.documents.values(), *(e for feed in feeds for e in (*feed.entries, *feed.older)), *feeds]
