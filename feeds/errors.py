"""The errors seedfeeds raises, and the one it does not raise.

    SeedfeedsError
     └── ConfigError        the config file cannot be used: start-up stops

A broken seed file is not an exception: it becomes a `records.Diagnostic`
(file, field, severity, message) and every other file still publishes.
"""

from __future__ import annotations


class SeedfeedsError(Exception):
    """Base class of every error seedfeeds raises on purpose."""


class ConfigError(SeedfeedsError):
    """The config file cannot be used; names the file, the key and why."""

    def __init__(self, file: str, key: str, expected: str, got: str = "") -> None:
        self.file = file
        self.key = key
        self.expected = expected
        self.got = got
        detail = f"{file}: {key}: expected {expected}"
        if got:
            detail += f", got {got}"
        super().__init__(detail)
