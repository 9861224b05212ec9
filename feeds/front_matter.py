"""Seed text -> (front-matter mapping, Markdown body), through python-frontmatter.

The YAML is read by yaml-rs (a Rust YAML 1.2 parser) behind python-frontmatter's
handler API, rather than PyYAML:

- YAML 1.2 core schema: `NO`, `off`, `y` stay text and `1:20` is not the
  number 80, so a title keeps the text its author typed; numbers, booleans and
  null are resolved only when unquoted, which `fields.py` relies on.
- Hostile input is refused cheaply: nesting is bounded by the parser (libyaml's
  composer recurses in C and crashes the process on deep nesting) and alias
  replay is capped, in events and in characters, so a "billion laughs" document
  (or a few thousand aliases of one long string) fails fast in bounded memory.
- It is about ten times faster than PyYAML's libyaml loader on seed files, and
  releases the GIL while parsing.

Dates are left as text (`parse_datetime=False`); `fields.py` parses them where a
date is expected. yaml-rs is imported on first use: a cold build's main process,
whose pool does the parsing, never needs it (5 MiB less at its peak).
"""

from __future__ import annotations

from typing import Any

import frontmatter
from frontmatter.default_handlers import YAMLHandler


class FrontMatterError(ValueError):
    """The front matter is not YAML, or not usable as a mapping of fields."""


# Where a loaded front matter carries the first key it had twice (the last value
# is kept): a key no YAML document can hold, as python-frontmatter passes on only
# the mapping. `pop_duplicate_key` takes it out again.
_DUPLICATE_KEY = object()


# Most characters of text aliases may replay in one front matter. yaml-rs makes a
# new string at each replay, so 9,000 aliases of one 900 kB scalar (a file under
# the size limit) would make 8 GB; each replayed event makes at most one scalar,
# no longer than the front matter itself, so a front matter of N characters may
# replay at most ALIAS_REPLAY_CHARS // N events (and never more than the limit).
ALIAS_REPLAY_CHARS = 16 * 1024 * 1024


class SeedHandler(YAMLHandler):
    """python-frontmatter's YAML handler, parsing with yaml-rs under alias limits."""

    def __init__(self, max_alias_events: int = 10_000) -> None:
        super().__init__()
        self.max_alias_events = max_alias_events

    def load(self, fm: str, **kwargs: object) -> dict[str, Any]:
        import yaml_rs

        events = min(self.max_alias_events, ALIAS_REPLAY_CHARS // max(len(fm), 1))
        limits = yaml_rs.AliasLimits(max_total_replayed_events=events)
        duplicate = None
        try:
            try:
                data = yaml_rs.loads(fm, parse_datetime=False, alias_limits=limits)
            except yaml_rs.YAMLDecodeError as exc:  # a key twice: the last value, as YAML 1.1 loaders did, and say so
                if not str(exc).startswith("duplicate mapping key: "):
                    raise
                duplicate = str(exc).removeprefix("duplicate mapping key: ")
                data = yaml_rs.loads(fm, parse_datetime=False, alias_limits=limits,
                                     duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.LastWins)
        except yaml_rs.YAMLDecodeError as exc:
            message = str(exc)
            if events < self.max_alias_events and "alias" in message:
                message += (f" (aliases may replay {ALIAS_REPLAY_CHARS:,} characters at most:"
                            f" {events} events in a front matter of {len(fm):,})")
            raise FrontMatterError(message) from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise FrontMatterError(f"front matter is a {type(data).__name__}, not a mapping")
        if duplicate is not None:
            data[_DUPLICATE_KEY] = duplicate
        return data


def pop_duplicate_key(data: dict[Any, Any]) -> str | None:
    """The first key a loaded front matter had twice (as yaml-rs quotes it), or None;
    removed from `data`."""
    return data.pop(_DUPLICATE_KEY, None)


def has_front_matter(text: str) -> bool:
    """True when the text opens with a `---` line."""
    return bool(YAMLHandler.FM_BOUNDARY.match(text.lstrip()))


def split_seed(text: str, handler: SeedHandler) -> tuple[dict[str, Any], str]:
    """Parse a seed's text into its front-matter mapping and its body.

    Raises `FrontMatterError` when the front matter is unusable.
    """
    return frontmatter.parse(text, handler=handler)


def nesting_depth(value: Any, depth: int = 1) -> int:
    """How deeply lists and mappings nest in a loaded value (a scalar is 0).

    Recursive: yaml-rs already refuses documents nested past a few hundred
    levels, far below Python's recursion limit."""
    if isinstance(value, dict):
        children = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return depth - 1
    deepest = depth
    for child in children:
        if isinstance(child, (dict, list)):
            deepest = max(deepest, nesting_depth(child, depth + 1))
    return deepest
