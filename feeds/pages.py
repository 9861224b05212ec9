"""HTML pages built with the feeds: the directory of every feed (`/`), and a
preview of each feed for people who open a feed in a browser."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import jinja2
from markupsafe import Markup

from .catalog import Feed
from .config import Config
from .entries import Entry, human_date
from .fields import Diagnostic
from .opml import opml_path
from .urls import FORMATS, Urls

SECTIONS = (("all", "Everything"), ("named", "Feeds"), ("topic", "Topics"), ("provider", "Providers"))
DIAGNOSTICS_SHOWN = 200

# Autoescaping on: every value from a seed is escaped where it is printed. The
# templates ship with the package: no stat of each one at each use to see if it
# changed (4 us of the 23 an entry's <article> took).
_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("feeds", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    auto_reload=False,
)


def render_directory(feeds: Sequence[Feed], config: Config, urls: Urls, entry_count: int,
                     left_out: Mapping[str, int], diagnostics: Sequence[Diagnostic]) -> bytes:
    """The directory page: every feed with its entry count, last update and formats."""
    errors = sum(1 for d in diagnostics if d.severity == "error")
    shown = sorted(diagnostics, key=lambda d: (d.severity != "error", d.file, d.field))[:DIAGNOSTICS_SHOWN]
    html = _templates.get_template("directory.html").render(
        title=config.title, description=config.description, language=config.language,
        feeds=feeds, sections=SECTIONS, entry_count=entry_count, left_out=left_out,
        errors=errors, diagnostics=shown, hidden=len(diagnostics) - len(shown),
        icon=urls.icon_url, opml={fmt: urls.absolute(opml_path(fmt)) for fmt in FORMATS},
    )
    return html.encode("utf-8")


def render_preview(feed: Feed, fragment: Callable[[Entry], bytes] | None = None) -> bytes:
    """A feed as a web page: its entries (already sanitized HTML), the three
    subscribe links and the address to copy into a reader. Each entry is an
    `article_html` fragment, made once for all the pages that show it."""
    fragment = fragment or (lambda entry: article_html(entry, feed.topics_stem))
    articles = [Markup(fragment(entry).decode("utf-8")) for entry in feed.entries]
    return _templates.get_template("preview.html").render(feed=feed, articles=articles).encode("utf-8")


def article_html(entry: Entry, topics_stem: str) -> bytes:
    """One entry as a preview page's <article>: title, date, author, topic links, content."""
    html = _templates.get_template("article.html").render(entry=entry, topics_stem=topics_stem, human_date=human_date)
    return html.encode("utf-8")
