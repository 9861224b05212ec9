"""HTML pages built with the feeds: the directory of every feed (`/`)."""

from __future__ import annotations

from typing import Mapping, Sequence

import jinja2

from .catalog import Feed
from .config import Config
from .fields import Diagnostic

SECTIONS = (("all", "Everything"), ("named", "Feeds"), ("topic", "Topics"), ("provider", "Providers"))
DIAGNOSTICS_SHOWN = 200

# Autoescaping on: every value from a seed is escaped where it is printed.
_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("feeds", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


def render_directory(feeds: Sequence[Feed], config: Config, entry_count: int,
                     left_out: Mapping[str, int], diagnostics: Sequence[Diagnostic]) -> bytes:
    """The directory page: every feed with its entry count, last update and formats."""
    errors = sum(1 for d in diagnostics if d.severity == "error")
    shown = sorted(diagnostics, key=lambda d: (d.severity != "error", d.file, d.field))[:DIAGNOSTICS_SHOWN]
    html = _templates.get_template("directory.html").render(
        title=config.title, description=config.description, language=config.language,
        feeds=feeds, sections=SECTIONS, entry_count=entry_count, left_out=left_out,
        errors=errors, diagnostics=shown, hidden=len(diagnostics) - len(shown),
    )
    return html.encode("utf-8")
