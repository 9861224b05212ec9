"""A `Feed` -> JSON Feed 1.1 bytes (https://www.jsonfeed.org/version/1.1/).

Like `atom_rss.py`, each item is serialized once (`item_json`) and documents
are assembled from those fragments.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Callable

from .catalog import Feed
from .entries import Entry

VERSION = "https://jsonfeed.org/version/1.1"
_ITEM_INDENT = "    "


def render_json(feed: Feed, fragment: Callable[[Entry], bytes] | None = None) -> bytes:
    """The feed as a JSON Feed 1.1 document; keys in a fixed order, UTF-8."""
    fragment = fragment or item_json
    document: dict[str, Any] = {
        "version": VERSION,
        "title": feed.title,
        "home_page_url": feed.home_url,
        "feed_url": feed.url("json"),
        "description": feed.subtitle,
        "authors": [{"name": feed.publisher}],
        "language": feed.language,
    }
    if feed.logo:
        document["icon"] = feed.logo  # JSON Feed's large icon (512 px is ideal)
    if feed.icon:
        document["favicon"] = feed.icon
    older = feed.pages if feed.page is None else feed.page - 1
    if older:
        # JSON Feed's pagination: next_url holds the next (older) items, here the archive page.
        document["next_url"] = feed.archive_url(older, "json")
    if feed.hubs:
        document["hubs"] = [{"type": "WebSub", "url": hub} for hub in feed.hubs]
    head = _dumps(document)[:-2]  # without the closing "\n}"
    if not feed.entries:
        return (head + ',\n  "items": []\n}\n').encode("utf-8")
    items = b",\n".join(fragment(entry) for entry in feed.entries)
    return (head + ',\n  "items": [\n').encode("utf-8") + items + b"\n  ]\n}\n"


def item_json(entry: Entry) -> bytes:
    """One entry as a JSON Feed item, serialized and indented for its place in "items"."""
    text = _dumps(_item(entry))
    return (_ITEM_INDENT + text.replace("\n", "\n" + _ITEM_INDENT)).encode("utf-8")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _item(entry: Entry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": entry.id,
        "url": entry.link,
        "title": entry.title,
        "content_html": entry.content_html,
    }
    if entry.summary:
        item["summary"] = entry.summary
    if entry.image:
        item["image"] = entry.image.url
    item["date_published"] = _rfc3339(entry.published)
    item["date_modified"] = _rfc3339(entry.updated)
    if entry.author:
        item["authors"] = [{"name": entry.author.name, **({"url": entry.author.uri} if entry.author.uri else {})}]
    if entry.topics:
        item["tags"] = [topic.label for topic in entry.topics]
    return item


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
