"""How a front-matter value becomes a typed field, or a diagnostic.

A required field that cannot be read makes the file unusable (`Unusable`);
an optional one is dropped with a warning. Plain (unquoted) scalars are typed
by YAML 1.2 core-schema rules only; quoted numbers and booleans are coerced
with a warning, since the meaning is unambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, TypeVar

from .front_matter import Plain

T = TypeVar("T")

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution)
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})
_DECIMAL = re.compile(r"^[-+]?[0-9]+$")
_OCTAL = re.compile(r"^0o[0-7]+$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")


@dataclass(frozen=True)
class Diagnostic:
    """Why (part of) a seed file could not be used: file, field, severity, message."""

    file: str
    field: str
    severity: str  # "error": the file is skipped; "warning": it publishes anyway
    message: str


class Unusable(Exception):
    """A required field cannot be read: the whole file is skipped."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, Plain) and value.strip() in _NULLS)


class Fields:
    """Reads typed fields from one mapping, collecting warnings for one file."""

    def __init__(self, file: str, data: dict, prefix: str = "", warnings: list[Diagnostic] | None = None):
        self.file = file
        self.data = data
        self.prefix = prefix
        self.warnings: list[Diagnostic] = [] if warnings is None else warnings

    def nested(self, data: dict, prefix: str) -> "Fields":
        """Fields of a nested mapping, sharing this file's warnings."""
        return Fields(self.file, data, self.prefix + prefix, self.warnings)

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
                return str(value)
            if isinstance(value, (bool, int, float, date)):
                self.warn(key, f"a {type(value).__name__} read as text")
                return value.isoformat() if isinstance(value, date) else str(value)
            raise ValueError(f"expected text, got a {type(value).__name__}")

        return self._get(key, required, read)

    def integer(self, key: str) -> int | None:
        def read(value: Any) -> int:
            if isinstance(value, bool) or isinstance(value, (float, date, list, dict)):
                raise ValueError(f"expected an integer, got {value!r}"[:200])
            if isinstance(value, int):
                return value
            number = _yaml_int(value.strip())
            if number is None:
                raise ValueError(f"expected an integer, got {value!r}"[:200])
            if not isinstance(value, Plain):
                self.warn(key, f"quoted number {value!r} read as {number}")
            return number

        return self._get(key, False, read)

    def boolean(self, key: str, default: bool) -> bool:
        """A flag; anything but true/false makes the file unusable (its meaning is unclear)."""

        def read(value: Any) -> bool:
            if isinstance(value, bool):
                return value
            text = value.strip() if isinstance(value, str) else None
            if text in _TRUE or text in _FALSE:
                if not isinstance(value, Plain):
                    self.warn(key, f"quoted {value!r} read as a boolean")
                return text in _TRUE
            raise ValueError(f"expected true or false, got {value!r}"[:200])

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
                return parsed.astimezone(timezone.utc)
            except OverflowError:
                raise ValueError(f"date {value!r} is out of range") from None

        return self._get(key, required, read)

    def mapping(self, key: str) -> dict | None:
        def read(value: Any) -> dict:
            if not isinstance(value, dict):
                raise ValueError(f"expected a mapping, got a {type(value).__name__}")
            return value

        return self._get(key, False, read)

    def items(self, key: str) -> list:
        """A list field; one scalar or mapping given alone is read as a list of one."""
        value = self.data.get(key)
        if _is_null(value):
            return []
        if isinstance(value, list):
            return value
        self.warn(key, f"expected a list, got a {type(value).__name__}; read as a list of one")
        return [value]


def _yaml_int(text: str) -> int | None:
    if _DECIMAL.match(text):
        return int(text)
    if _OCTAL.match(text):
        return int(text[2:], 8)
    if _HEX.match(text):
        return int(text[2:], 16)
    return None


def _parse_datetime(value: Any) -> datetime:
    """ISO 8601 / RFC 3339 (what YAML timestamps are) or RFC 2822; naive stays naive."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        raise ValueError(f"expected a date, got a {type(value).__name__}")
    text = value.strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        raise ValueError(f"expected an ISO 8601 date, got {text!r}"[:200]) from None
