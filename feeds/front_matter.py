"""Seed text -> (front-matter mapping, Markdown body), through python-frontmatter.

PyYAML's safe loader speaks YAML 1.1, where `NO`, `off` and `y` are booleans
and `1:20` is the number 80. Seeds are written by people who mean the text they
typed, so this loader resolves no plain scalar implicitly: every unquoted value
arrives as `Plain` text, and `fields.py` gives it a type only where the field
expects one, by YAML 1.2 core-schema rules (true/false, integers, null).
"""

from __future__ import annotations

from typing import Any

import frontmatter
import yaml
from frontmatter.default_handlers import YAMLHandler

# libyaml's C parser where present: the composer runs in C, only construction in Python.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Plain(str):
    """An unquoted YAML scalar: text that YAML 1.2 might read as a bool, int or null."""

    __slots__ = ()


class FrontMatterError(ValueError):
    """The front matter is not a YAML mapping."""


class SeedLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe loader with no implicit resolvers: plain scalars stay text."""

    yaml_implicit_resolvers: dict = {}


def _construct_text(loader: SeedLoader, node: yaml.ScalarNode) -> str:
    value = loader.construct_scalar(node)
    # Plain style is None from the Python parser, "" from libyaml.
    return Plain(value) if not node.style else value


SeedLoader.add_constructor("tag:yaml.org,2002:str", _construct_text)


class SeedHandler(YAMLHandler):
    """python-frontmatter's YAML handler, loading with `SeedLoader`."""

    def load(self, fm: str, **kwargs: object) -> dict[str, Any]:
        data = yaml.load(fm, Loader=SeedLoader)  # noqa: S506 - SeedLoader is a safe loader
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise FrontMatterError(f"front matter is a {type(data).__name__}, not a mapping")
        return data


_HANDLER = SeedHandler()


def has_front_matter(text: str) -> bool:
    """True when the text opens with a `---` line."""
    return _HANDLER.detect(text.lstrip())


def split_seed(text: str) -> tuple[dict[str, Any], str]:
    """Parse a seed's text into its front-matter mapping and its body.

    Raises `yaml.YAMLError` or `FrontMatterError` when the front matter is unusable.
    """
    return frontmatter.parse(text, handler=_HANDLER)
