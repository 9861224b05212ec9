"""The obvious pipeline, for comparison: seedfeeds' libraries used the straightforward way.

    python bench/baseline.py [--lean] SEED_DIR OUT_DIR

Every seed read with `frontmatter.load()` (its default YAML loader), every text
value cleaned by its own `bleach.clean()` call, bodies rendered with
`markdown.markdown()`; then for each feed (all, one per topic, one per provider;
newest 50 entries) a fresh feedgen FeedGenerator per format and a JSON Feed from
`json.dumps`, written under OUT_DIR/feeds/, and the same for each RFC 5005
archive page of older entries (as seedfeeds writes them). Unpublished seeds
are skipped.

The documents carry what seedfeeds' do (author, categories, summary, content with
lead image and related coverage, media thumbnail, dc:creator in RSS), so the two
are timed on the same work. Nothing here is slowed on purpose; it leaves out
what seedfeeds adds beyond the feeds (URL canonicalization, duplicate merging,
diagnostics, gzip bodies and ETags, the index page).

`--lean` sanitizes less than seedfeeds does: bleach cleans only the title, the
excerpt and the body; provider names, topics and related items go in as they
are. That is closer to the issue's own estimate of the obvious pipeline (about
8 s on these machines, YAML half of it): the ~12 short values of a seed, each
cleaned by a `bleach.clean()` call that builds its own cleaner, take about a
quarter of the full baseline's time. It is timed beside it, for a stricter comparison.
"""

from __future__ import annotations

import html
import json
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import bleach
import frontmatter
import markdown
from feedgen.feed import FeedGenerator

BASE_URL = "http://127.0.0.1:8000"
SITE_TITLE = "seedfeeds"
ENTRIES_PER_FEED = 50
GLOBS = ("*.txt", "*.md", "*.markdown")
ALLOWED_TAGS = {"p", "br", "a", "em", "strong", "b", "i", "ul", "ol", "li", "blockquote",
                "code", "pre", "h2", "h3", "h4", "img"}
ALLOWED_ATTRIBUTES = {"a": ["href", "title"], "img": ["src", "alt", "width", "height"]}
MEDIA_TYPES = {"atom": "application/atom+xml", "rss": "application/rss+xml"}


@dataclass
class Entry:
    id: str
    title: str
    summary: str
    content: str
    published: datetime
    author: str
    domain: str
    icon: str | None
    topics: list[str]
    image: dict | None


SANITIZE_EVERY_VALUE = True  # False with --lean: only title, excerpt and body


def main(argv: list[str]) -> int:
    global SANITIZE_EVERY_VALUE
    if argv[:1] == ["--lean"]:
        SANITIZE_EVERY_VALUE, argv = False, argv[1:]
    if len(argv) != 2:
        print("usage: python bench/baseline.py [--lean] SEED_DIR OUT_DIR", file=sys.stderr)
        return 2
    seed_dir, out_dir = Path(argv[0]), Path(argv[1])
    started = time.perf_counter()
    entries, skipped = read_entries(seed_dir)
    read = time.perf_counter() - started
    feeds = group_feeds(entries)
    written = 0
    for key, (title, members) in feeds.items():
        written += write_feed(out_dir / "feeds", key, title, members[:ENTRIES_PER_FEED])
        # The same archive pages as seedfeeds (RFC 5005): older entries in pages of
        # ENTRIES_PER_FEED, numbered from the oldest, each page a document of its own.
        older = members[ENTRIES_PER_FEED:][::-1]
        for number, start in enumerate(range(0, len(older), ENTRIES_PER_FEED), start=1):
            page = older[start:start + ENTRIES_PER_FEED][::-1]
            written += write_feed(out_dir / "feeds", f"{key}/archive/{number}", title, page)
    print(f"wrote {written} files to {out_dir} ({len(entries)} entries, {len(feeds)} feeds, "
          f"{skipped} unreadable seed files) in {time.perf_counter() - started:.2f}s (reading {read:.2f}s)")
    return 0


def read_entries(seed_dir: Path) -> tuple[list[Entry], int]:
    """Every published seed as an entry, newest first; and how many files failed."""
    paths = sorted({p for glob in GLOBS for p in seed_dir.rglob(glob)})
    entries, skipped = [], 0
    for path in paths:
        try:
            post = frontmatter.load(path)
            if post.get("published") is False:
                continue
            entries.append(to_entry(post.metadata, post.content))
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the build
            print(f"{path}: {exc}", file=sys.stderr)
            skipped += 1
    entries.sort(key=lambda e: (e.published, e.id), reverse=True)
    return entries, skipped


def to_entry(meta: dict, body: str) -> Entry:
    url = meta.get("originalUrl") or meta["webUrl"]
    provider = meta.get("provider") or {}
    images = meta.get("images") or []
    image = images[0] if images else None
    title = clean_text(meta["title"])
    summary = clean_text(meta.get("excerpt") or "")
    parts = []
    if image:
        parts.append(f'<p><img src="{html.escape(image["url"])}" alt="{html.escape(title)}"></p>')
    if summary:
        parts.append(f"<p>{html.escape(summary)}</p>")
    if body.strip():
        parts.append(bleach.clean(markdown.markdown(body), tags=ALLOWED_TAGS,
                                  attributes=ALLOWED_ATTRIBUTES, strip=True))
    related = [related_item(item) for item in meta.get("related") or []]
    if related:
        parts.append("<h3>Related coverage</h3>\n<ul>\n" + "\n".join(related) + "\n</ul>")
    logos = provider.get("images") or []
    return Entry(
        id=url,
        title=title,
        summary=summary,
        content="\n".join(parts),
        published=aware(meta["publishedDateTime"]),
        author=secondary_text(provider.get("name") or provider.get("domain") or ""),
        domain=str(provider.get("domain") or "").lower().removeprefix("www."),
        icon=logos[0]["url"] if logos else None,
        topics=[secondary_text(topic) for topic in meta.get("topics") or []],
        image=image,
    )


def related_item(item: dict) -> str:
    title = html.escape(secondary_text(item["title"]))
    head = f'<a href="{html.escape(item["webUrl"])}">{title}</a>' if item.get("webUrl") else title
    source = secondary_text((item.get("provider") or {}).get("name") or "")
    moment = aware(item["publishedDateTime"]) if item.get("publishedDateTime") else None
    when = f"{moment.day} {moment:%B %Y}" if moment else ""
    tail = ", ".join(x for x in (html.escape(source), when) if x)
    return f"<li>{head}" + (f" — {tail}" if tail else "") + "</li>"


def clean_text(value: object) -> str:
    """Plain text: bleach strips the tags, its escaping is undone (the feed writer escapes)."""
    return html.unescape(bleach.clean(str(value), tags=set(), strip=True)).strip()


def secondary_text(value: object) -> str:
    """A provider name, topic or related item: cleaned, except with --lean."""
    return clean_text(value) if SANITIZE_EVERY_VALUE else str(value).strip()


def aware(value: object) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def group_feeds(entries: list[Entry]) -> dict[str, tuple[str, list[Entry]]]:
    """Feed key -> (title, entries newest first): all, each topic, each provider."""
    feeds: dict[str, tuple[str, list[Entry]]] = {"all": (SITE_TITLE, entries)}
    by_topic: dict[str, list[Entry]] = defaultdict(list)
    by_provider: dict[str, list[Entry]] = defaultdict(list)
    labels: dict[str, str] = {}
    for entry in entries:
        for topic in entry.topics:
            by_topic[slug(topic)].append(entry)
            labels.setdefault(slug(topic), topic)
        if entry.domain:
            by_provider[entry.domain].append(entry)
    for key, members in sorted(by_topic.items()):
        feeds[f"topics/{key}"] = (f"{labels[key]} · {SITE_TITLE}", members)
    for domain, members in sorted(by_provider.items()):
        feeds[f"providers/{domain}"] = (f"{members[0].author} · {SITE_TITLE}", members)
    return feeds


def write_feed(folder: Path, key: str, title: str, entries: list[Entry]) -> int:
    """Write KEY.atom, KEY.rss and KEY.json; returns the number of files."""
    path = folder / key
    path.parent.mkdir(parents=True, exist_ok=True)
    updated = max(e.published for e in entries)
    for fmt in ("atom", "rss"):
        # One generator per format: each document's self link names its own URL.
        fg = feed_generator(key, title, entries, fmt, updated)
        data = fg.atom_str(pretty=True) if fmt == "atom" else fg.rss_str(pretty=True)
        Path(f"{path}.{fmt}").write_bytes(data)
    Path(f"{path}.json").write_text(json_feed(key, title, entries), encoding="utf-8")
    return 3


def feed_generator(key: str, title: str, entries: list[Entry], fmt: str, updated: datetime) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("media")
    fg.load_extension("dc", atom=False, rss=True)
    fg.id(f"{BASE_URL}/feeds/{key}.atom")
    fg.title(title)
    fg.subtitle(title)
    fg.link(href=f"{BASE_URL}/feeds/{key}.{fmt}", rel="self", type=MEDIA_TYPES[fmt])
    fg.link(href=f"{BASE_URL}/", rel="alternate", type="text/html")
    fg.language("en")
    fg.author(name=SITE_TITLE)
    # feedgen defaults these to now; set them so the output is reproducible.
    fg.updated(updated)
    fg.lastBuildDate(updated)
    if key.startswith("providers/") and entries[0].icon:
        fg.icon(entries[0].icon)
    for entry in entries:
        fe = fg.add_entry(order="append")  # feedgen prepends by default
        fe.id(entry.id)
        fe.title(entry.title)
        fe.link(href=entry.id, rel="alternate", type="text/html")
        fe.published(entry.published)
        fe.updated(entry.published)
        if entry.author:
            fe.author(name=entry.author, uri=f"https://{entry.domain}")
            fe.dc.dc_creator(entry.author)
        if entry.summary:
            fe.summary(entry.summary)
        fe.content(entry.content, type="html")
        for topic in entry.topics:
            fe.category(term=topic, scheme=f"{BASE_URL}/feeds/topics/{slug(topic)}.{fmt}")
        if entry.image:
            size = {k: str(entry.image[k]) for k in ("width", "height") if entry.image.get(k)}
            fe.media.thumbnail(url=entry.image["url"], group=None, **size)
    return fg


def json_feed(key: str, title: str, entries: list[Entry]) -> str:
    items = []
    for entry in entries:
        item = {"id": entry.id, "url": entry.id, "title": entry.title, "content_html": entry.content,
                "date_published": entry.published.isoformat().replace("+00:00", "Z")}
        if entry.summary:
            item["summary"] = entry.summary
        if entry.image:
            item["image"] = entry.image["url"]
        if entry.author:
            item["authors"] = [{"name": entry.author, "url": f"https://{entry.domain}"}]
        if entry.topics:
            item["tags"] = entry.topics
        items.append(item)
    document = {"version": "https://jsonfeed.org/version/1.1", "title": title,
                "home_page_url": f"{BASE_URL}/", "feed_url": f"{BASE_URL}/feeds/{key}.json",
                "language": "en", "items": items}
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
