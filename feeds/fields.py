"""How a front-matter value becomes a typed field, or a diagnostic.

A required field that cannot be read makes the file unusable (`Unusable`);
an optional one is dropped with a warning. The YAML parser already typed
unquoted scalars by YAML 1.2 core rules; a quoted number or boolean where one
is expected is coerced with a warning, since its meaning is unambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, TypeVar

T = TypeVar("T")

# The YAML 1.2 core schema's booleans (https://yaml.org/spec/1.2.2/#1032-tag-resolution)
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_DECIMAL = re.compile(r"^[-+]?[0-9]{1,18}$")
EARLIEST_YEAR, LATEST_YEAR = 1900, 9998


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """Why (part of) a seed file could not be used: file, field, severity, message."""

    file: str
    field: str
    severity: str  # "error": the file is skipped; "warning": it publishes anyway
    message: str
    stale: bool = False  # an error, but the file's last good version keeps publishing


class Unusable(Exception):
    """A required field cannot be read: the whole file is skipped."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class Fields:
    """Reads typed fields from one mapping, collecting warnings for one file."""

    def __init__(self, file: str, data: dict, prefix: str = "", warnings: list[Diagnostic] | None = None,
                 max_items: int = 1000):
        self.file = file
        self.data = data
        self.prefix = prefix
        self.warnings: list[Diagnostic] = [] if warnings is None else warnings
        self.max_items = max_items

    def nested(self, data: dict, prefix: str) -> "Fields":
        """Fields of a nested mapping, sharing this file's warnings and limits."""
        return Fields(self.file, data, self.prefix + prefix, self.warnings, self.max_items)

    def warn(self, key: str, message: str) -> None:
        self.warnings.append(Diagnostic(self.file, self.prefix + key, "warning", message))

    def _get(self, key: str, required: bool, read: Callable[[Any], T]) -> T | None:
        value = self.data.get(key)
        if _is_null(value):
            if required:
                raise Unusable(self.prefix + key, "is missing")
            return None
        try:
            return read(value)
        except ValueError as exc:
            if required:
                raise Unusable(self.prefix + key, str(exc)) from None
            self.warn(key, f"{exc}; ignored")
            return None

    def text(self, key: str, required: bool = False) -> str | None:
        def read(value: Any) -> str:
            if isinstance(value, str):
                return value
            if isinstance(value, (bool, int, float)):
                text = str(value).lower() if isinstance(value, bool) else str(value)
                self.warn(key, f"the {type(value).__name__} {value!r} read as the text {text!r}")
                return text
            raise ValueError(f"expected text, got a {_kind(value)}")

        return self._get(key, required, read)

    def integer(self, key: str) -> int | None:
        def read(value: Any) -> int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, str) and _DECIMAL.match(value.strip()):
                self.warn(key, f"quoted number {value!r} read as {int(value)}")
                return int(value)
            raise ValueError(f"expected an integer, got {_show(value)}")

        return self._get(key, False, read)

    def boolean(self, key: str, default: bool) -> bool:
        """A flag; anything but true/false makes the file unusable (its meaning is unclear)."""

        def read(value: Any) -> bool:
            if isinstance(value, bool):
                return value
            text = value.strip() if isinstance(value, str) else None
            if text in _TRUE or text in _FALSE:
                self.warn(key, f"quoted {value!r} read as {text in _TRUE}")
                return text in _TRUE
            raise ValueError(f"expected true or false, got {_show(value)}")

        value = self.data.get(key)
        if _is_null(value):
            return default
        try:
            return read(value)
        except ValueError as exc:
            raise Unusable(self.prefix + key, str(exc)) from None

    def date(self, key: str, required: bool = False) -> datetime | None:
        def read(value: Any) -> datetime:
            parsed = _parse_datetime(value)
            if parsed.tzinfo is None:
                self.warn(key, "date has no time zone; read as UTC")
                parsed = parsed.replace(tzinfo=timezone.utc)
            try:
                parsed = parsed.astimezone(timezone.utc)
            except OverflowError:
                raise ValueError(f"date {_show(value)} is out of range") from None
            # Before 1900 is no news date; RFC 822 dates (RSS) cannot even write years below 1000.
            if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
                raise ValueError(f"date {_show(value)} is not between {EARLIEST_YEAR} and {LATEST_YEAR}")
            return parsed

        return self._get(key, required, read)

    def mapping(self, key: str) -> dict | None:
        def read(value: Any) -> dict:
            if not isinstance(value, dict):
                raise ValueError(f"expected a mapping, got a {_kind(value)}")
            return value

        return self._get(key, False, read)

    def items(self, key: str) -> list:
        """A list field, at most `max_items` long; one scalar or mapping given
        alone is read as a list of one."""
        value = self.data.get(key)
        if _is_null(value):
            return []
        if not isinstance(value, list):
            self.warn(key, f"expected a list, got a {_kind(value)}; read as a list of one")
            value = [value]
        if len(value) > self.max_items:
            self.warn(key, f"{len(value)} items; only the first {self.max_items} are read")
            value = value[: self.max_items]
        return value


def _kind(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "text"}.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    return repr(value)[:100] if isinstance(value, (str, int, float, bool)) else f"a {_kind(value)}"


def _parse_datetime(value: Any) -> datetime:
    """ISO 8601 / RFC 3339 (what YAML timestamps are) or RFC 2822; naive stays naive."""
    if not isinstance(value, str):
        raise ValueError(f"expected a date, got {_show(value)}")
    text = value.strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text)
    except OverflowError:  # a year, day, hour... too big for C: "Mon, 01 Jan 99999999999999999999 ..."
        raise ValueError(f"date {_show(text)} is out of range") from None
    except (TypeError, ValueError, IndexError):  # what the RFC 2822 parser raises on other garbage
        raise ValueError(f"expected an ISO 8601 date, got {_show(text)}") from None
