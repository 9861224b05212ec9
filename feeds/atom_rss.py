"""A `Feed` -> Atom 1.0 or RSS 2.0 bytes: the one door for feedgen.

feedgen defaults every timestamp to "now" and prepends entries; both are set
explicitly here so the same feed always gives the same bytes.

Each entry is serialized once, as a fragment (`entry_xml`), and a document is
its feed head with the fragments of its entries spliced in before the closing
tag: an entry in forty feeds is rendered once, not forty times. Cold and
incremental builds go through the same path, so their bytes are identical.
"""

from __future__ import annotations

from html import escape
from typing import Callable

from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseExtension
from feedgen.ext.dc import DcEntryExtension, DcExtension
from feedgen.ext.media import MediaEntryExtension, MediaExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from .catalog import Feed
from .entries import Entry

GENERATOR = "seedfeeds"
VERSION = "0.1.0"
MEDIA_TYPES = {
    "atom": "application/atom+xml",
    "rss": "application/rss+xml",
    "json": "application/feed+json",
}
# Extension namespaces, declared on each entry fragment (and on the feed root by feedgen).
NAMESPACES = {
    "atom": {"media": "http://search.yahoo.com/mrss/"},
    "rss": {"media": "http://search.yahoo.com/mrss/", "dc": "http://purl.org/dc/elements/1.1/",
            "content": "http://purl.org/rss/1.0/modules/content/"},
}
ATOM_NS = "http://www.w3.org/2005/Atom"
HISTORY_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005
# Where fragments go: before the feed's closing tag, at the indentation of its children.
_CLOSE = {"atom": b"</feed>", "rss": b"  </channel>"}
_INDENT = {"atom": 1, "rss": 2}

ATOM_LINK = "{http://www.w3.org/2005/Atom}link"

Fragment = Callable[[Entry], bytes]


def render_atom(feed: Feed, fragment: Fragment | None = None) -> bytes:
    """The feed as an Atom 1.0 document (RFC 4287)."""
    return _splice(feed, "atom", fragment)


def render_rss(feed: Feed, fragment: Fragment | None = None) -> bytes:
    """The feed as an RSS 2.0 document, with Atom self link, Media RSS and dc:creator."""
    return _splice(feed, "rss", fragment)


def entry_xml(entry: Entry, fmt: str, topics_stem: str) -> bytes:
    """One entry as an Atom <entry> or RSS <item>, serialized, indented for its place."""
    return _fragment(_feed_entry(entry, fmt, topics_stem), fmt)


def entry_xml_both(entry: Entry, topics_stem: str) -> tuple[bytes, bytes]:
    """`entry_xml` in Atom and in RSS, from one feedgen entry (made once, then given
    RSS's summary and categories): 10 of the 90 us the two took apart."""
    fe = _feed_entry(entry, "atom", topics_stem)
    atom = _fragment(fe, "atom")
    _in_format(fe, entry, "rss", topics_stem)
    return atom, _fragment(fe, "rss")


def _fragment(fe: FeedEntry, fmt: str) -> bytes:
    element = fe.atom_entry() if fmt == "atom" else fe.rss_entry()
    etree.cleanup_namespaces(element, top_nsmap=NAMESPACES[fmt])
    etree.indent(element, space="  ", level=_INDENT[fmt])
    return b"  " * _INDENT[fmt] + etree.tostring(element, encoding="UTF-8") + b"\n"


def _splice(feed: Feed, fmt: str, fragment: Fragment | None) -> bytes:
    fragment = fragment or (lambda entry: entry_xml(entry, fmt, feed.topics_stem))
    head = _generator(feed, fmt)
    document = head.atom_str(pretty=True) if fmt == "atom" else head.rss_str(pretty=True)
    cut = document.rindex(_CLOSE[fmt])
    return b"".join([document[:cut], *(fragment(entry) for entry in feed.entries), document[cut:]])


def archive_links(feed: Feed, fmt: str) -> list[tuple[str, str]]:
    """RFC 5005 links: the current document points to the newest archive page;
    each page to the current document and its older and newer neighbours."""
    if feed.page is None:
        return [("prev-archive", feed.archive_url(feed.pages, fmt))] if feed.pages else []
    links = [("current", f"{feed.current_stem}.{fmt}")]
    if feed.page > 1:
        links.append(("prev-archive", feed.archive_url(feed.page - 1, fmt)))
    if feed.page < feed.pages:
        links.append(("next-archive", feed.archive_url(feed.page + 1, fmt)))
    return links


class _History(BaseExtension):
    """What feedgen cannot say itself: RSS's atom:link for rels other than self
    (feedgen drops them), and RFC 5005's <fh:archive/> marker on archive pages."""

    def __init__(self) -> None:
        self.links: list[tuple[str, str, str]] = []  # (rel, href, type)
        self.archive = False

    def extend_ns(self) -> dict[str, str]:
        return {"fh": HISTORY_NS}

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        if self.archive:
            etree.SubElement(feed, f"{{{HISTORY_NS}}}archive")
        return feed

    def extend_rss(self, rss: etree._Element) -> etree._Element:
        channel = rss[0]
        for rel, href, media_type in self.links:
            etree.SubElement(channel, f"{{{ATOM_NS}}}link", href=href, rel=rel, type=media_type)
        if self.archive:
            etree.SubElement(channel, f"{{{HISTORY_NS}}}archive")
        return rss


def _generator(feed: Feed, fmt: str) -> FeedGenerator:
    """The feed's head: everything but the entries."""
    fg = FeedGenerator()
    # What load_extension("media") and ("dc", atom=False) register, without its failing import per call.
    fg.register_extension("media", MediaExtension, MediaEntryExtension)
    fg.register_extension("dc", DcExtension, DcEntryExtension, atom=False, rss=True)
    fg.id(feed.url("atom"))
    fg.title(feed.title)
    fg.subtitle(feed.subtitle or feed.title)
    fg.link(href=feed.url(fmt), rel="self", type=MEDIA_TYPES[fmt])
    if feed.hubs:
        # WebSub section 4: a topic names its hubs beside its self link. feedgen's
        # RSS output keeps only the self link, so RSS gets them from an extension.
        fg.register_extension("websub", WebSubExtension, atom=False, rss=True)
        for hub in feed.hubs:
            fg.link(href=hub, rel="hub")
            fg.websub.hub(hub)
    links = archive_links(feed, fmt)
    if links or feed.page is not None:
        fg.register_extension("history", _History, None)
        fg.history.archive = feed.page is not None
        if fmt == "rss":
            fg.history.links = [(rel, href, MEDIA_TYPES[fmt]) for rel, href in links]
    if fmt == "atom":
        for rel, href in links:
            fg.link(href=href, rel=rel, type=MEDIA_TYPES[fmt])
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
    if feed.logo:
        fg.logo(feed.logo)
    return fg


class WebSubExtension(BaseExtension):
    """feedgen extension: the RSS channel's <atom:link rel="hub"> elements, after its self link."""

    def __init__(self) -> None:
        self._hubs: list[str] = []

    def hub(self, url: str) -> None:
        self._hubs.append(url)

    def extend_rss(self, rss: etree._Element) -> etree._Element:
        channel = rss.find("channel")
        after = next((link for link in channel.iterfind(ATOM_LINK) if link.get("rel") == "self"), None)
        at = channel.index(after) + 1 if after is not None else len(channel)
        for offset, url in enumerate(self._hubs):
            link = etree.Element(ATOM_LINK, href=url, rel="hub")
            channel.insert(at + offset, link)
        return rss


def _feed_entry(entry: Entry, fmt: str, topics_stem: str) -> FeedEntry:
    fe = FeedEntry()
    # Registered by class: feedgen's load_extension() tries a failing import on every call.
    fe.register_extension("media", MediaEntryExtension, atom=True, rss=True)
    # RSS <author> must be an e-mail address; providers have none, so RSS says dc:creator.
    fe.register_extension("dc", DcEntryExtension, atom=False, rss=True)
    fe.id(entry.id)
    fe.title(entry.title)
    fe.link(href=entry.link, rel="alternate", type="text/html")
    fe.published(entry.published)
    fe.updated(entry.updated)
    if entry.author:
        fe.author({"name": entry.author.name, **({"uri": entry.author.uri} if entry.author.uri else {})})
        fe.dc.dc_creator(entry.author.name)
    if entry.content:  # an empty <content> is legal but validators frown on it
        fe.content(entry.content_html, type="html")
    if entry.image:
        size = {k: str(v) for k, v in (("width", entry.image.width), ("height", entry.image.height)) if v}
        fe.media.thumbnail(url=entry.image.url, group=None, **size)
    _in_format(fe, entry, fmt, topics_stem)
    return fe


def _in_format(fe: FeedEntry, entry: Entry, fmt: str, topics_stem: str) -> None:
    """What differs between an entry's Atom and RSS: its summary and its categories
    (replacing those of the other format)."""
    if entry.summary:
        # RSS readers take <description> as HTML: the plain-text summary goes in escaped
        # ("AT&T" as "AT&amp;T"), so it reads as the same text. Atom says type="text".
        fe.summary(escape(entry.summary, quote=False) if fmt == "rss" else entry.summary)
    if entry.topics:
        fe.category([{"term": topic.label, "scheme": f"{topics_stem}{topic.slug}.{fmt}"} for topic in entry.topics],
                    replace=True)
