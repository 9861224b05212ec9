"""Which feeds exist and what each holds, newest first.

Feeds: `all`, one per topic, one per provider (by domain), and the named feeds
of the config. Left-out records (unpublished, below `min_quality`) appear in no
feed; `left_out_reason` says which and why.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable, Iterable

from .config import Config, NamedFeed
from .entries import Entry
from .urls import Urls, provider_domain, provider_key, slugify, topic_key

# A feed with no entries still needs an `updated`; never "now" (output must be reproducible).
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
KINDS = ("all", "named", "topic", "provider")


@dataclass(frozen=True, slots=True)
class Feed:
    """One feed: what it is called, where it lives, and its entries."""

    key: str  # "all", "topics/ai", "providers/forbes.com", or a config name
    kind: str  # one of KINDS
    title: str
    subtitle: str
    language: str
    home_url: str  # the HTML directory page
    url_stem: str  # absolute URL without ".<fmt>"
    topics_stem: str  # absolute URL prefix of topic feeds, for category links
    icon: str | None  # small and square: the provider's image on provider feeds, else the site icon
    logo: str | None  # the site icon
    publisher: str  # the site title: feed-level author
    ttl: int  # minutes between refreshes (RSS <ttl>)
    hubs: tuple[str, ...]  # WebSub hubs the feed advertises
    entries: tuple[Entry, ...]  # newest first, at most `size`
    total: int  # entries that matched, before the size cap
    updated: datetime
    size: int = 50  # entries per document, for the current one and each archive page
    older: tuple[Entry, ...] = ()  # the rest, newest first: what the archive pages hold
    page: int | None = None  # this archive page's number (1 = oldest); None for the current feed
    pages: int = 0  # archive pages of the feed
    current_stem: str | None = None  # an archive page's feed (its url_stem)

    def url(self, fmt: str) -> str:
        return f"{self.url_stem}.{fmt}"

    def archive_url(self, page: int, fmt: str) -> str:
        return f"{self.current_stem or self.url_stem}/archive/{page}.{fmt}"

    @property
    def is_complete_page(self) -> bool:
        """A full archive page: it never changes again (unless an entry is deleted)."""
        return self.page is not None and len(self.entries) == self.size


def archive_pages(feed: Feed) -> list[Feed]:
    """RFC 5005 archives: the entries older than the current document, in fixed
    pages of `size`, numbered from the oldest, so a full page never changes as
    new entries arrive (only the newest page fills up)."""
    oldest_first = feed.older[::-1]
    pages = []
    for number, start in enumerate(range(0, len(oldest_first), feed.size), start=1):
        shown = oldest_first[start:start + feed.size][::-1]
        pages.append(replace(
            feed, key=f"{feed.key}/archive/{number}", url_stem=f"{feed.url_stem}/archive/{number}",
            entries=shown, total=len(shown), older=(), page=number, current_stem=feed.url_stem,
            updated=max(e.updated for e in shown)))
    return pages


def newest_first(entries: Iterable[Entry]) -> list[Entry]:
    """Newest published first; ties broken by id, so the order is total."""
    return sorted(entries, key=lambda e: (-e.published.timestamp(), e.id))


def left_out_reason(is_published: bool, quality: int | None, config: Config) -> str | None:
    """Why a record is left out of every feed, or None when it publishes."""
    if not is_published and not config.include_unpublished:
        return "unpublished"
    if config.min_quality is not None and (quality is None or quality < config.min_quality):
        return "below min_quality"
    return None


def build_catalog(entries: list[Entry], config: Config, urls: Urls) -> tuple[Feed, ...]:
    """Every feed, in directory order: all, named (config order), topics, providers."""
    ordered = newest_first(entries)

    def feed(key: str, kind: str, title: str, subtitle: str, members: list[Entry],
             icon: str | None = None, size: int | None = None) -> Feed:
        size = size or config.entries_per_feed
        shown = tuple(members[:size])
        older = tuple(members[size:])
        return Feed(key=key, kind=kind, title=title, subtitle=subtitle, language=config.language,
                    home_url=urls.directory(), url_stem=urls.feed_stem(key),
                    topics_stem=urls.feed_stem(topic_key("")), icon=icon or urls.icon_url,
                    logo=urls.icon_url, publisher=config.title, hubs=config.hubs,
                    ttl=-(-config.refresh_seconds // 60), entries=shown,
                    total=len(members), updated=max((e.updated for e in shown), default=EPOCH),
                    size=size, older=older, pages=-(-len(older) // size))

    feeds = [feed("all", "all", config.title, config.description, ordered)]
    for named in config.named_feeds:
        matches = _matcher(named)
        members = [e for e in ordered if matches(e)]
        feeds.append(feed(named.name, "named", named.title, named.subtitle, members, size=named.entries))
    by_topic: dict[str, list[Entry]] = defaultdict(list)
    labels: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in ordered:
        for topic in entry.topics:
            by_topic[topic.slug].append(entry)
            labels[topic.slug][topic.label] += 1
    for slug in sorted(by_topic):
        label = _most_common(labels[slug])
        feeds.append(feed(topic_key(slug), "topic", f"{label} · {config.title}",
                          f"News about {label}.", by_topic[slug]))
    by_provider: dict[str, list[Entry]] = defaultdict(list)
    for entry in ordered:
        if entry.provider_domain:
            by_provider[entry.provider_domain].append(entry)
    for domain in sorted(by_provider):
        members = by_provider[domain]
        name = _most_common(Counter(e.author.name for e in members if e.author)) or domain
        icon = next((e.provider_icon for e in members if e.provider_icon), None)
        feeds.append(feed(provider_key(domain), "provider", f"{name} · {config.title}",
                          f"News from {domain}.", members, icon=icon))
    return tuple(feeds)


def _most_common(counts: Counter[str]) -> str:
    """The most frequent value; ties go to the first in sort order (deterministic)."""
    if not counts:
        return ""
    return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def _matcher(named: NamedFeed) -> Callable[[Entry], bool]:
    """A predicate for a named feed's filters: each given filter must match."""
    topics = {slugify(t) for t in named.topics}
    providers = {provider_domain(p) or p.lower() for p in named.providers}
    categories = {c.casefold() for c in named.categories}
    types = {t.casefold() for t in named.types}

    def matches(entry: Entry) -> bool:
        return ((not topics or any(t.slug in topics for t in entry.topics))
                and (not providers or entry.provider_domain in providers)
                and (not categories or (entry.category or "").casefold() in categories)
                and (not types or (entry.type or "").casefold() in types)
                and (named.min_quality is None
                     or (entry.quality is not None and entry.quality >= named.min_quality)))

    return matches
