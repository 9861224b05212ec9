"""Config changes without a restart.

Before each refresh (and at once on SIGHUP) the config file is checked; an
edit that validates is applied — new named feeds appear, removed ones answer
410 Gone, changed filters re-render only the feeds they touch (the builder
keeps every document whose feed is unchanged). An edit that does not validate
is reported (file, key, reason) in the log and on /healthz, and the last good
config keeps serving.
"""

from __future__ import annotations

import logging
import os

from feeds import Config, ConfigError, load_config

log = logging.getLogger("seedfeeds")


class ConfigWatch:
    """Notices when the config file changed and reads it again."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.error: str | None = None  # why the file on disk is not the config in use
        self.forced = False  # SIGHUP: read it even if it looks unchanged
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int, int] | None:
        if self.config.file == "<defaults>":
            return None
        try:
            st = os.stat(self.config.file)
        except OSError:
            return (-1, -1, -1)
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def changed(self) -> Config | None:
        """The new config when the file changed and validates; None otherwise."""
        stamp = self._stamp()
        if stamp is None or (stamp == self._seen and not self.forced):
            return None
        self._seen, self.forced = stamp, False
        try:
            fresh = load_config(self.config.file)
        except ConfigError as exc:
            self.error = str(exc)
            log.error("config not reloaded, the last good one keeps serving: %s", exc)
            return None
        self.error = None
        if fresh == self.config:
            return None
        self.config = fresh
        log.info("config reloaded from %s", fresh.file)
        return fresh


def removed_feeds(before: Config, after: Config) -> set[str]:
    """Names of the config-defined feeds the new config no longer has."""
    return {f.name for f in before.named_feeds} - {f.name for f in after.named_feeds}
