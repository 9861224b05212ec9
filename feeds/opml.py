"""Every feed in one OPML 2.0 file, so a reader subscribes to all of them in one step.

http://opml.org/spec2.opml: one <outline type="rss" xmlUrl=...> per feed,
grouped under all, named feeds, topics and providers. Written with lxml.
"""

from __future__ import annotations

from email.utils import format_datetime
from typing import Sequence

from lxml import etree

from .catalog import Feed

MEDIA_TYPE = "text/x-opml; charset=utf-8"
GROUPS = (("all", "Everything"), ("named", "Feeds"), ("topic", "Topics"), ("provider", "Providers"))


def opml_path(fmt: str) -> str:
    """Where the OPML listing the feeds in `fmt` lives: /feeds.opml is Atom."""
    return "/feeds.opml" if fmt == "atom" else f"/feeds-{fmt}.opml"


def render_opml(feeds: Sequence[Feed], title: str, home_url: str, fmt: str) -> bytes:
    """OPML 2.0 listing every feed in one format; dated by the newest feed, never "now"."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = f"{title} ({fmt.upper() if fmt != 'json' else 'JSON Feed'})"
    if feeds:
        etree.SubElement(head, "dateModified").text = format_datetime(max(f.updated for f in feeds), usegmt=True)
    etree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = etree.SubElement(root, "body")
    for kind, label in GROUPS:
        members = [feed for feed in feeds if feed.kind == kind]
        if not members:
            continue
        group = etree.SubElement(body, "outline", text=label, title=label)
        for feed in members:
            # type="rss" is what OPML readers look for, whatever the feed's format.
            etree.SubElement(group, "outline", type="rss", text=feed.title, title=feed.title,
                             xmlUrl=feed.url(fmt), htmlUrl=feed.url("html"))
    return etree.tostring(root, encoding="UTF-8", xml_declaration=True, pretty_print=True)
