"""One serving process among several that share a Redis store: one builds, all serve.

Each process runs a replica thread that ticks every lease / 3:

- it takes the builder lease, or renews its own (`RedisStore.hold_lease`). The
  holder starts a builder (its `BuilderProcess`) and its scheduled refreshes
  build and publish; every other process never scans the seeds. A builder that
  dies stops renewing, and another process takes over once the lease runs out
  (`lease_seconds`: within one refresh interval).
- a process that is not the builder compares the store's version with its own,
  at once when the builder announces a version on the channel, else at the
  next tick, and on a change fetches only the documents and feeds it lacks and
  swaps in the new snapshot.

Requests never touch Redis: they read the local snapshot. When Redis is
unreachable or lost its data, every process keeps serving what it has,
/healthz says degraded and why, and the thread keeps trying; a builder that
cannot renew its lease in time stops building until it holds it again.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from typing import Any, Callable

import redis

from feeds import Config
from feeds.builder import collector_paused
from feeds.snapshot import Snapshot

from .redis_store import LeaseLost, RedisStore, StoreError
from .refresh import Service

log = logging.getLogger("seedfeeds")
LEASE_MAX_SECONDS = 10
WAIT_SLICE_SECONDS = 0.25  # the longest the replica thread sleeps without looking at `stop()`
STARTUP_SECONDS = 60.0  # how long a new process waits for a first snapshot (built here, or by the builder)
STORE_ERRORS = (redis.RedisError, StoreError)


def lease_seconds(refresh_seconds: int) -> float:
    """The builder lease: one refresh interval, at most 10 s, so a dead builder is
    replaced within one interval whatever the interval."""
    return float(min(refresh_seconds, LEASE_MAX_SECONDS))


class OnDemandBuilder:
    """A builder made on first use and dropped by `close()`: only the lease holder runs one."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._builder: Any = None

    @property
    def running(self) -> bool:
        return self._builder is not None

    def build(self) -> Snapshot:
        if self._builder is None:
            self._builder = self._make()
        return self._builder.build()

    @property
    def last_report(self):
        return self._builder.last_report if self._builder is not None else None

    def reconfigure(self, config) -> None:
        if self._builder is not None:
            self._builder.reconfigure(config)

    def close(self) -> None:
        builder, self._builder = self._builder, None
        if builder is not None and hasattr(builder, "close"):
            builder.close()


class Replica:
    """This process's part in the group: builder while it holds the lease, follower otherwise."""

    def __init__(self, service: Service, store: RedisStore, lease: float) -> None:
        self.service = service
        self.store = store
        self.lease = lease
        self.is_builder = False
        self.version: str | None = None  # of the snapshot served, when it is the store's
        # What failed, by activity (lease, publish, fetch); replaced, never changed in place,
        # because /healthz reads it from request threads. Written by this thread and the job.
        self._errors: dict[str, str] = {}
        self._errors_lock = threading.Lock()
        self._held_until = 0.0  # time.monotonic() when our lease runs out unless renewed
        self._pubsub: Any = None
        self._ready = threading.Event()  # set once there is a snapshot to serve
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="seedfeeds-replica", daemon=True)
        self._start_lock = threading.Lock()
        self._started = False

    @property
    def error(self) -> str | None:
        """Why the store is not working for this process right now, or None."""
        return "; ".join(self._errors.values()) or None

    def start(self, timeout: float = STARTUP_SECONDS) -> None:
        """Join the group (once, whoever calls); return when a first snapshot is being served."""
        with self._start_lock:
            if not self._started:
                self._started = True
                self.service.start_scheduler(self.refresh)
                self._thread.start()
                log.info("replica: pid %d shares snapshots through Redis (lease %gs)", os.getpid(), self.lease)
        if not self._ready.wait(timeout):
            raise RuntimeError(f"no snapshot to serve after {timeout:g}s: "
                               f"{self.error or self.service.last_error or 'no builder published one'}")

    def stop(self) -> None:
        """Leave the group: stop the thread, hand the lease back, stop any builder."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self.is_builder:
            self.is_builder = False
            try:
                self.store.release_lease()
                log.info("builder: pid %d handed the lease back", os.getpid())
            except STORE_ERRORS:
                pass  # it expires by itself
        self.service.stop_scheduler()
        self.service.builder.close()
        self.store.close()

    def refresh(self) -> None:
        """The scheduled job: while holding the lease, rescan and publish; after
        losing it, stop the builder."""
        builder = self.service.builder
        if not self.is_builder:
            if builder.running:
                builder.close()
                self.service.last_error = None  # a follower's health is the store's, not its old builds'
            return
        self.service.refresh()
        if self.service.snapshot is None:
            return
        self._ready.set()
        started = time.perf_counter()
        try:
            version = self.store.publish(self.service.snapshot)
        except LeaseLost as exc:
            self._lose(str(exc))
            return
        except STORE_ERRORS as exc:
            self._fail("publish", exc)
            return
        self._succeed("publish")
        if version != self.version:
            log.info("builder: pid %d published version %s in %.2fs", os.getpid(), version,
                     time.perf_counter() - started)
        self.version = version

    # --- the replica thread

    def _run(self) -> None:
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                self._hold_lease(began)
                if not self.is_builder:
                    self._follow()
            except Exception:  # noqa: BLE001 - this thread must outlive any one failure
                log.exception("replica: pid %d: unexpected failure; trying again", os.getpid())
            self._wait(began + self.lease / 3)
        self._drop_subscription()

    def _hold_lease(self, began: float) -> None:
        try:
            held = self.store.hold_lease(int(self.lease * 1000))
        except STORE_ERRORS as exc:
            self._fail("lease", exc)
            if self.is_builder and time.monotonic() >= self._held_until:
                self._lose("the lease could not be renewed in time")
            return
        self._succeed("lease")
        if held:
            self._held_until = began + self.lease  # counted from before the call: never longer than Redis's
            if not self.is_builder:
                self._take_over()
        elif self.is_builder:
            self._lose("another process holds the lease")

    def _take_over(self) -> None:
        if self.service.snapshot is None:
            # Serve what the store has until our first build, and date that build
            # against it: a document whose bytes did not change keeps its Last-Modified.
            self._follow(quiet_if_empty=True)
        self.is_builder = True
        self._forget("fetch")  # a builder does not fetch: its health is its publishing
        log.info("builder: pid %d holds the lease; it rescans and publishes", os.getpid())
        self.service.refresh_soon()

    def _lose(self, why: str) -> None:
        if self.is_builder:
            self.is_builder = False
            self._forget("publish")  # a follower does not publish: its health is its fetching
            log.warning("builder: pid %d stopped building: %s", os.getpid(), why)
        self.version = None  # what we serve may be a build that was never published: fetch the store's
        self.service.refresh_soon()  # the job stops the builder process

    def _follow(self, quiet_if_empty: bool = False) -> None:
        try:
            version = self.store.version()
            if version is not None and version != self.version:
                with collector_paused():  # a whole snapshot's objects, made at once, until install freezes them
                    fetched = self.store.fetch(self.service.snapshot)
                    version = fetched[0] if fetched else None
                    if fetched:
                        self.service.install(fetched[1])
                if fetched:
                    self.version = version
                    self._ready.set()
                    log.info("replica: pid %d serves version %s", os.getpid(), version)
            if version is None and not quiet_if_empty:
                raise StoreError("the store holds no snapshot; waiting for the builder to publish one")
        except STORE_ERRORS as exc:
            self._fail("fetch", exc)
            return
        self._succeed("fetch")
        if version is not None:
            self.service.built_at = time.time()  # our copy is known current as of now

    def _wait(self, until: float) -> None:
        """Sleep until `until`, or until a version is announced or the replica stops."""
        while not self._stopping.is_set():
            left = until - time.monotonic()
            if left <= 0:
                return
            try:
                if self._pubsub is None:
                    self._pubsub = self.store.subscribe()
                # In slices, so that `stop()` (joining this thread) never waits a whole tick.
                if self._pubsub.get_message(timeout=min(left, WAIT_SLICE_SECONDS)) is not None:
                    return
            except STORE_ERRORS:
                self._drop_subscription()  # the next tick subscribes again
                self._stopping.wait(max(0.0, until - time.monotonic()))
                return

    def _drop_subscription(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except STORE_ERRORS + (OSError,):
                pass

    def _fail(self, activity: str, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"
        with self._errors_lock:
            changed = self._errors.get(activity) != message
            self._errors = {**self._errors, activity: message}
        if changed:  # log a change, not every tick
            still = "serving the last snapshot" if self._ready.is_set() else "nothing to serve yet"
            log.warning("replica: pid %d: %s failed: %s; %s", os.getpid(), activity, message, still)

    def _succeed(self, activity: str) -> None:
        if self._forget(activity):
            log.info("replica: pid %d: %s works again", os.getpid(), activity)

    def _forget(self, activity: str) -> bool:
        """Drop `activity`'s error; True if there was one."""
        with self._errors_lock:
            if activity not in self._errors:
                return False
            self._errors = {key: message for key, message in self._errors.items() if key != activity}
            return True


def shared_service(config: Config, make_builder: Callable[[], Any]) -> Service:
    """A service whose snapshots come through `config.snapshot_store`, with its replica
    (`service.replica`); nothing is built or fetched until `replica.start()`."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"  # readable in Redis, unique per process
    service = Service(config, OnDemandBuilder(make_builder))
    service.replica = Replica(service, RedisStore(config.snapshot_store, holder), lease_seconds(config.refresh_seconds))
    return service
