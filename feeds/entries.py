"""`Record` -> `Entry`: sanitized, with a canonical id; duplicates merged.

An entry holds only safe values: plain text, allowlisted HTML, absolute http(s)
URLs. Renderers (`atom_rss.py`, `jsonfeed.py`, `pages.py`) escape them but
never have to clean them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from html import escape
from typing import Iterable

import cmarkgfm
from cmarkgfm.cmark import Options

from .fields import Diagnostic
from .records import Image, Provider, Record, Related, pickled_by_fields
from .sanitize import clean_html, plain_text, safe_url
from .urls import canonical_url, slugify

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Topic:
    label: str
    slug: str


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Author:
    name: str
    uri: str | None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Entry:
    """One published item, safe to render in any format."""

    id: str
    file: str
    link: str
    title: str
    summary: str | None
    # UTF-8: one non-Latin-1 character makes Python store a str at two bytes per
    # character, and contents are most of a build's memory. See `content_html`.
    content: bytes
    published: datetime
    updated: datetime
    author: Author | None
    provider_domain: str | None
    provider_icon: str | None
    topics: tuple[Topic, ...]
    category: str | None
    type: str | None
    locale: str | None
    quality: int | None
    is_published: bool
    image: Image | None

    @property
    def content_html(self) -> str:
        """Lead image + excerpt + body + related coverage, as safe HTML."""
        return self.content.decode("utf-8")


def to_entry(record: Record) -> Entry:
    """Sanitize a record into an entry; its id is the canonical article URL."""
    title = plain_text(record.title) or record.url
    summary = plain_text(record.excerpt) if record.excerpt else None
    image = _lead_image(record.images, title)
    provider = record.provider
    return Entry(
        id=canonical_url(record.url),
        file=record.file,
        link=record.url,
        title=title,
        summary=summary or None,
        content=_content(record, summary, image).encode("utf-8"),
        published=record.published,
        updated=record.updated,
        author=_author(provider),
        provider_domain=provider.domain if provider else None,
        provider_icon=_first_image_url(provider.images) if provider else None,
        topics=_topics(record.topics),
        category=_optional_text(record.category),
        type=_optional_text(record.type),
        locale=_optional_text(record.locale),
        quality=record.quality,
        is_published=record.is_published,
        image=image,
    )


def share_values(entry: Entry, table: dict) -> Entry:
    """The entry with its provider, author, topics, category and type replaced by
    equal objects already in `table` (one copy per provider or topic instead of one
    per entry: entries unpickled from worker processes share nothing)."""

    def one(value):
        return table.setdefault(value, value) if value is not None else None

    return replace(entry, author=one(entry.author), provider_domain=one(entry.provider_domain),
                   provider_icon=one(entry.provider_icon), topics=one(tuple(one(t) for t in entry.topics)),
                   category=one(entry.category), type=one(entry.type), file=entry.file)


def merge_duplicates(entries: Iterable[Entry]) -> tuple[list[Entry], list[Diagnostic]]:
    """One entry per id: the most recently updated wins (ties: the first file by
    name); every loser gets a warning naming the winner."""
    winners: dict[str, Entry] = {}
    notes: list[Diagnostic] = []
    for entry in sorted(entries, key=lambda e: e.file):
        kept = winners.get(entry.id)
        if kept is None:
            winners[entry.id] = entry
            continue
        if entry.updated > kept.updated:
            winners[entry.id], entry, kept = entry, kept, entry
        notes.append(Diagnostic(entry.file, "originalUrl", "warning",
                                f"same article as {kept.file}, which is newer or first; this file is not published"))
    return list(winners.values()), notes


def _optional_text(value: str | None) -> str | None:
    return plain_text(value) or None if value else None


def _author(provider: Provider | None) -> Author | None:
    if provider is None:
        return None
    name = plain_text(provider.name) if provider.name else ""
    uri = f"https://{provider.domain}" if provider.domain else None
    if not name:
        name = provider.domain or ""
    return Author(name, uri) if name else None


def _topics(labels: tuple[str, ...]) -> tuple[Topic, ...]:
    topics: dict[str, Topic] = {}
    for raw in labels:
        topic = _topic(raw)
        if topic:
            topics.setdefault(topic.slug, topic)
    return tuple(topics.values())


@lru_cache(maxsize=1024)  # a pure function of a few hundred labels, three times an entry
def _topic(raw: str) -> Topic | None:
    label = plain_text(raw)
    return Topic(label, slugify(label)) if label else None


def _first_image_url(images: tuple[Image, ...]) -> str | None:
    return images[0].url if images else None


def _lead_image(images: tuple[Image, ...], title: str) -> Image | None:
    if not images:
        return None
    first = images[0]
    return Image(first.url, first.width, first.height, plain_text(first.title) if first.title else title)


def _render_markdown(text: str) -> str:
    """CommonMark to HTML with cmark-gfm (C; ~40x faster than Python-Markdown here).
    Raw HTML is let through on purpose: `clean_html` sanitizes all of it next."""
    return cmarkgfm.markdown_to_html(text, options=Options.CMARK_OPT_UNSAFE)


def _content(record: Record, summary: str | None, image: Image | None) -> str:
    """Lead image + excerpt + body + "Related coverage", all of it safe HTML."""
    parts = []
    if image:
        size = "".join(f' {k}="{v}"' for k, v in (("width", image.width), ("height", image.height)) if v)
        parts.append(f'<p><img src="{escape(image.url)}" alt="{escape(image.title or "")}"{size}></p>')
    if summary:
        parts.append(f"<p>{escape(summary, quote=False)}</p>")
    if record.body.strip():
        parts.append(clean_html(_render_markdown(record.body), base_url=record.url))
    related = [_related_item(r) for r in record.related]
    related = [item for item in related if item]
    if related:
        parts.append("<h3>Related coverage</h3>\n<ul>\n" + "\n".join(related) + "\n</ul>")
    return "\n".join(parts)


def _related_item(related: Related) -> str:
    title = plain_text(related.title)
    if not title:
        return ""
    url = safe_url(related.url)
    head = f'<a href="{escape(url)}">{escape(title, quote=False)}</a>' if url else escape(title, quote=False)
    source = plain_text(related.provider.name) if related.provider and related.provider.name else ""
    when = human_date(related.published) if related.published else ""
    tail = ", ".join(x for x in (escape(source, quote=False), when) if x)
    # &#8212; rather than "—": one non-Latin-1 character would make Python store the
    # whole content string at two bytes per character.
    return f"<li>{head}" + (f" &#8212; {tail}" if tail else "") + "</li>"


def human_date(moment: datetime) -> str:
    """"26 October 2020", whatever the process locale."""
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"
