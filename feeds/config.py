"""The config file, read once into a frozen `Config`: the only place keys are named.

Every setting is a row of `SETTINGS` (key, default, help); the same table
drives validation, `seedfeeds config --help`-style listings and the README
reference, and a test checks each row is documented.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from .errors import ConfigError

DEFAULT_CONFIG = Path("config") / "seedfeeds.toml"
FEED_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# Names a config-defined feed cannot take: they are paths the service owns.
RESERVED_NAMES = frozenset({"all", "topics", "providers", "index"})
LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
URI_CHARS = re.compile(r"^[A-Za-z0-9\-._~%!$&'()*+,;=:@/?#\[\]]+$")


@dataclass(frozen=True)
class NamedFeed:
    """A feed an operator defines under `[feed.<name>]`: filters, title, size."""

    name: str
    title: str
    subtitle: str = ""
    topics: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    min_quality: int | None = None
    entries: int | None = None


@dataclass(frozen=True)
class Limits:
    """What one seed file may hold before it is refused or cut short."""

    file_bytes: int = 1 << 20
    yaml_depth: int = 20
    yaml_alias_events: int = 10_000
    title_chars: int = 300
    excerpt_chars: int = 2000
    list_items: int = 100


@dataclass(frozen=True)
class Config:
    """Every setting, validated; paths are absolute."""

    file: str
    title: str
    description: str
    language: str
    base_url: str
    icon_path: Path
    seeds_path: Path
    globs: tuple[str, ...]
    include_unpublished: bool
    min_quality: int | None
    entries_per_feed: int
    refresh_seconds: int
    state_path: Path
    limit_file_bytes: int
    limit_yaml_depth: int
    limit_yaml_alias_events: int
    limit_title_chars: int
    limit_excerpt_chars: int
    limit_list_items: int
    hubs: tuple[str, ...]
    snapshot_store: str
    named_feeds: tuple[NamedFeed, ...] = field(default=())
    pace_builds: bool = True

    @property
    def limits(self) -> Limits:
        return Limits(self.limit_file_bytes, self.limit_yaml_depth, self.limit_yaml_alias_events,
                      self.limit_title_chars, self.limit_excerpt_chars, self.limit_list_items)


# --- value checkers: each returns the converted value or raises ValueError(expected)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a string")
    return value


def _nonempty_text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a non-empty string")
    return value.strip()


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"an integer from {low} to {high}")
        return value

    return check


def _optional_quality(value: Any) -> int | None:
    if value is None:
        return None
    return _integer(-1_000_000, 1_000_000)(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _text_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError("a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _base_url(value: Any) -> str:
    # URI characters only: urlsplit silently drops tabs and newlines, and this
    # URL goes into every document and into HTTP Link headers.
    parts = urlsplit(value) if isinstance(value, str) and URI_CHARS.match(value) else None
    if not parts or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("an absolute http(s) URL of URI characters")
    if parts.query or parts.fragment:
        raise ValueError("a URL without query or fragment")
    return value.rstrip("/")


def _hub_urls(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("a list of absolute http(s) URLs")
    for url in value:
        parts = urlsplit(url)
        # The URL goes into an HTTP Link header as <url>: only URI characters (RFC 3986).
        if parts.scheme not in ("http", "https") or not parts.netloc or not URI_CHARS.match(url):
            raise ValueError(f"absolute http(s) URLs of URI characters only, not {url!r}")
        if parts.fragment:
            raise ValueError(f"hub URLs without a fragment, not {url!r}")
    if len(set(value)) != len(value):
        raise ValueError("a list of distinct hub URLs")
    return tuple(value)


def _snapshot_store(value: Any) -> str:
    """"memory", or a redis:// (rediss:// for TLS) URL naming host, port and database."""
    expected = '"memory" or a redis:// URL such as "redis://127.0.0.1:6379/0"'
    if value == "memory":
        return value
    parts = urlsplit(value) if isinstance(value, str) else None
    if not parts or parts.scheme not in ("redis", "rediss") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(expected)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not 0-65535
    except ValueError:
        raise ValueError(expected) from None
    if not re.fullmatch(r"/?|/(0|[1-9][0-9]{0,4})", parts.path):
        raise ValueError(expected)
    return value


def _language(value: Any) -> str:
    if not isinstance(value, str) or not LANGUAGE.match(value):
        raise ValueError("a language tag such as en or en-GB")
    return value


@dataclass(frozen=True)
class Setting:
    """One row of the settings table."""

    key: str
    attr: str
    check: Callable[[Any], Any]
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("site.title", "title", _nonempty_text, "seedfeeds",
            "Site title: the directory page and the `all` feed."),
    Setting("site.description", "description", _text, "News feeds built from a folder of seed files.",
            "Site description: the `all` feed's subtitle."),
    Setting("site.language", "language", _language, "en",
            "Language tag of every feed (Atom xml:lang, RSS language, JSON Feed language)."),
    Setting("site.base_url", "base_url", _base_url, "http://127.0.0.1:8000",
            "Public URL of the service; every self link and feed id is built on it."),
    Setting("site.icon", "icon_path", _text, "",
            "Square site icon (PNG, JPEG, GIF, SVG, WebP; 192 px or more), served at /icon.<ext>; "
            "empty: the bundled one. Relative to the config file."),
    Setting("seeds.path", "seeds_path", _nonempty_text, "seeds",
            "Seed folder, read recursively; relative to the config file."),
    Setting("seeds.globs", "globs", _text_list, ["*.txt", "*.md", "*.markdown"],
            "File-name patterns of seed files, matched in every subfolder."),
    Setting("seeds.include_unpublished", "include_unpublished", _boolean, False,
            "Publish records marked `published: false` too."),
    Setting("seeds.min_quality", "min_quality", _optional_quality, None,
            "Leave out records whose `quality` is below this (unset: keep all)."),
    Setting("feeds.entries_per_feed", "entries_per_feed", _integer(1, 1000), 50,
            "Entries in each feed document; `?limit=N` may ask for fewer."),
    Setting("feeds.refresh_seconds", "refresh_seconds", _integer(1, 86400), 60,
            "Seconds between rescans of the seed folder; also the HTTP max-age."),
    Setting("state.path", "state_path", _nonempty_text, ".seedfeeds-state",
            "Folder for state kept between runs (the entry-id ledger); relative to the config file."),
    Setting("limits.file_bytes", "limit_file_bytes", _integer(1024, 1 << 30), Limits.file_bytes,
            "Largest seed file read, in bytes; bigger files are refused."),
    Setting("limits.yaml_depth", "limit_yaml_depth", _integer(2, 60), Limits.yaml_depth,
            "Deepest nesting of lists and mappings in front matter."),
    Setting("limits.yaml_alias_events", "limit_yaml_alias_events", _integer(0, 10_000_000),
            Limits.yaml_alias_events, "Most YAML events that aliases may replay (stops 'billion laughs')."),
    Setting("limits.title_chars", "limit_title_chars", _integer(10, 100_000), Limits.title_chars,
            "Longer titles are cut to this many characters, with a warning."),
    Setting("limits.excerpt_chars", "limit_excerpt_chars", _integer(10, 1_000_000), Limits.excerpt_chars,
            "Longer excerpts are cut to this many characters, with a warning."),
    Setting("limits.list_items", "limit_list_items", _integer(1, 100_000), Limits.list_items,
            "Items read from each list (topics, tags, images, related); the rest are dropped with a warning."),
    Setting("websub.hubs", "hubs", _hub_urls, [],
            "WebSub hubs every feed advertises and each changed feed is published to."),
    Setting("serve.snapshot_store", "snapshot_store", _snapshot_store, "memory",
            "Where serving processes get snapshots: `memory` (each process builds its own) "
            "or a `redis://host:port/db` URL (one elected process builds, every process serves)."),
    Setting("serve.pace_builds", "pace_builds", _boolean, True,
            "Slow rebuilds down while the server is busy, so requests keep their latency; "
            "false: rebuild at full speed whatever the load."),
)

NAMED_FEED_KEYS: dict[str, Callable[[Any], Any]] = {
    "title": _nonempty_text,
    "subtitle": _text,
    "topics": _text_list,
    "providers": _text_list,
    "categories": _text_list,
    "types": _text_list,
    "min_quality": _optional_quality,
    "entries": _integer(1, 1000),
}


def load_config(path: Path | str | None = None) -> Config:
    """Read and validate a config file; with no path, the built-in defaults
    with relative paths resolved against the current folder."""
    if path is None:
        return _build({}, "<defaults>", Path.cwd())
    path = Path(path).resolve()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "(file)", "an existing config file", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), "(file)", "a readable UTF-8 file", str(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "(syntax)", "valid TOML", str(exc)) from None
    return _build(raw, str(path), path.parent)


def _build(raw: dict[str, Any], file: str, base: Path) -> Config:
    values = {s.attr: s.check(s.default) for s in SETTINGS}
    known = {s.key: s for s in SETTINGS}
    sections = {key.split(".")[0] for key in known} | {"feed"}
    for section, table in raw.items():
        if section not in sections:
            raise ConfigError(file, section, "one of " + ", ".join(sorted(sections)), "an unknown key")
        if not isinstance(table, dict):
            raise ConfigError(file, section, "a table", type(table).__name__)
        if section == "feed":
            continue
        for name, value in table.items():
            key = f"{section}.{name}"
            if key not in known:
                raise ConfigError(file, key, "a known setting (see the README)", "an unknown key")
            values[known[key].attr] = _checked(file, key, known[key].check, value)
    values["seeds_path"] = _seed_folder(file, base, values["seeds_path"])
    values["icon_path"] = _icon(file, base, values["icon_path"])
    values["state_path"] = (base / values["state_path"]).resolve()
    named = tuple(_named_feed(file, name, table) for name, table in raw.get("feed", {}).items())
    return Config(file=file, named_feeds=named, **values)


def _checked(file: str, key: str, check: Callable[[Any], Any], value: Any) -> Any:
    try:
        return check(value)
    except ValueError as exc:
        raise ConfigError(file, key, str(exc), repr(value)) from None


def _seed_folder(file: str, base: Path, value: str) -> Path:
    folder = (base / value).resolve()
    if not folder.is_dir():
        raise ConfigError(file, "seeds.path", "an existing folder", str(folder))
    return folder


BUNDLED_ICON = Path(__file__).resolve().parent / "static" / "icon.png"
ICON_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
              ".svg": "image/svg+xml", ".webp": "image/webp"}


def _icon(file: str, base: Path, value: str) -> Path:
    if not value:
        return BUNDLED_ICON
    path = (base / value).resolve()
    if path.suffix.lower() not in ICON_TYPES:
        raise ConfigError(file, "site.icon", "an image file (" + ", ".join(ICON_TYPES) + ")", value)
    if not path.is_file():
        raise ConfigError(file, "site.icon", "an existing file", str(path))
    return path


def _named_feed(file: str, name: str, table: Any) -> NamedFeed:
    key = f"feed.{name}"
    if not FEED_NAME.match(name) or name in RESERVED_NAMES:
        raise ConfigError(file, key, "a name of lowercase letters, digits and hyphens, not "
                          + ", ".join(sorted(RESERVED_NAMES)), repr(name))
    if not isinstance(table, dict):
        raise ConfigError(file, key, "a table", type(table).__name__)
    if "title" not in table:
        raise ConfigError(file, f"{key}.title", "a title", "nothing")
    fields: dict[str, Any] = {}
    for option, value in table.items():
        if option not in NAMED_FEED_KEYS:
            raise ConfigError(file, f"{key}.{option}", "one of " + ", ".join(NAMED_FEED_KEYS),
                              "an unknown key")
        fields[option] = _checked(file, f"{key}.{option}", NAMED_FEED_KEYS[option], value)
    return NamedFeed(name=name, **fields)
