"""A `Feed` -> Atom 1.0 or RSS 2.0 bytes: the one door for feedgen.

feedgen defaults every timestamp to "now" and prepends entries; both are set
explicitly here so the same feed always gives the same bytes.
"""

from __future__ import annotations

from feedgen.feed import FeedGenerator

from .catalog import Feed
from .entries import Entry

GENERATOR = "seedfeeds"
VERSION = "0.1.0"
MEDIA_TYPES = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}


def render_atom(feed: Feed) -> bytes:
    """The feed as an Atom 1.0 document (RFC 4287)."""
    return _generator(feed, "atom").atom_str(pretty=True)


def render_rss(feed: Feed) -> bytes:
    """The feed as an RSS 2.0 document, with Atom self link and Media RSS."""
    return _generator(feed, "rss").rss_str(pretty=True)


def _generator(feed: Feed, fmt: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("media")
    # RSS <author> must be an e-mail address; providers have none, so RSS says dc:creator.
    fg.load_extension("dc", atom=False, rss=True)
    fg.id(feed.url("atom"))
    fg.title(feed.title)
    fg.subtitle(feed.subtitle or feed.title)
    fg.link(href=feed.url(fmt), rel="self", type=MEDIA_TYPES[fmt])
    # feedgen's RSS <link> is the last link given: the HTML page goes last.
    fg.link(href=feed.home_url, rel="alternate", type="text/html")
    fg.language(feed.language)
    fg.generator(GENERATOR, version=VERSION)
    fg.author(name=feed.publisher)
    fg.updated(feed.updated)
    fg.lastBuildDate(feed.updated)
    fg.ttl(feed.ttl)
    if feed.icon:
        fg.icon(feed.icon)
        fg.image(url=feed.icon, title=feed.title, link=feed.home_url)
    for entry in feed.entries:
        _add_entry(fg, entry, feed, fmt)
    return fg


def _add_entry(fg: FeedGenerator, entry: Entry, feed: Feed, fmt: str) -> None:
    fe = fg.add_entry(order="append")
    fe.id(entry.id)
    fe.title(entry.title)
    fe.link(href=entry.link, rel="alternate", type="text/html")
    fe.published(entry.published)
    fe.updated(entry.updated)
    if entry.author:
        fe.author({"name": entry.author.name, **({"uri": entry.author.uri} if entry.author.uri else {})})
        fe.dc.dc_creator(entry.author.name)
    if entry.summary:
        fe.summary(entry.summary)
    fe.content(entry.content_html, type="html")
    for topic in entry.topics:
        fe.category(term=topic.label, scheme=f"{feed.topics_stem}{topic.slug}.{fmt}")
    if entry.image:
        size = {k: str(v) for k, v in (("width", entry.image.width), ("height", entry.image.height)) if v}
        fe.media.thumbnail(url=entry.image.url, group=None, **size)
