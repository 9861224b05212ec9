"""The one door for bleach: plain text, allowed HTML, allowed URL schemes.

bleach is in security-fix-only maintenance; every call to it is in this module,
so the sanitizer can be swapped without touching the rest. It is imported on
first use: a cold build's main process, whose pool does the sanitizing, never
loads it (9 MiB less at its peak).
"""

from __future__ import annotations

import html
import re
import threading
from bisect import bisect_left
from contextvars import ContextVar
from typing import TYPE_CHECKING, Iterator

from .urls import http_url

ALLOWED_TAGS = frozenset({
    "p", "br", "a", "em", "strong", "b", "i", "ul", "ol", "li", "blockquote",
    "code", "pre", "h2", "h3", "h4", "img",
})
ALLOWED_ATTRIBUTES = {"a": ["href", "title"], "img": ["src", "alt", "width", "height"]}
LINK_SCHEMES = ("http", "https", "mailto")
IMAGE_SCHEMES = ("http", "https")
MAX_IMAGE_SIZE = 10_000  # pixels, for an image's width or height

# Characters XML 1.0 forbids (https://www.w3.org/TR/xml/#charsets), C1 controls, and
# noncharacters: feedgen raises on the former, readers choke on the rest.
# Noncharacters are U+FDD0-U+FDEF and the last two code points of every plane. Those
# beyond the first plane have a pattern of their own, run only on text holding such
# planes' characters: in one character class they made every text's scan 12x slower.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_ASTRAL_NONCHARACTERS = re.compile("[%s]" % "".join(chr(plane + 0xFFFE) + chr(plane + 0xFFFF)
                                                    for plane in range(0x10000, 0x110000, 0x10000)))
# Stripping a disallowed element keeps its text; for these the text is code or
# page furniture, not prose, so it goes with the element (bleach still does the
# sanitizing: this only spares readers "alert(1)" and CSS in the middle of a story).
# Openers and closers are found in one pass each (see `_drop_hidden`): a single
# pattern `<script>.*?</script>` rescans to the end from every unclosed opener.
_HIDDEN = "script|style|template|textarea|title|xmp|iframe|noembed|noframes|noscript"
_HIDDEN_OPENER = re.compile(rf"<({_HIDDEN})\b[^<>]*>", re.IGNORECASE)
_HIDDEN_CLOSER = re.compile(rf"</({_HIDDEN})\s*>", re.IGNORECASE)
# html5lib (inside bleach) checks each attribute of a tag against all of the tag's
# earlier ones: one tag of 40,000 attributes (269 kB) took 28 s. No tag needs more
# than MAX_ATTRIBUTES; a text holding one is hostile, and goes to bleach as text,
# every "<" escaped. Only texts longer than _CROWD_SCAN_CHARS are scanned: below
# that, the worst such text (one tag of 4,278 attributes) costs bleach 0.35 s. The
# scan reads tags as html5lib's tokenizer does, or counts more attributes (never fewer).
MAX_ATTRIBUTES = 64
_CROWD_SCAN_CHARS = 16 * 1024
_TAG_START = re.compile(r"</?[A-Za-z][^\s/>]*")
_ATTRIBUTE = re.compile(r"""[\s/]*[^\s/>][^\s/>=]*(?:\s*=\s*(?:"[^"]*"?|'[^']*'?|[^\s>]*))?""")
# In plain text, a "<" that an HTML reader would take for the start of a tag or
# comment (https://html.spec.whatwg.org/#tag-open-state): it gets a space after it.
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")
# Bidi overrides and isolates, zero-width space and BOM: invisible, and able to make a
# title read differently from what it says ("txt.exe" spoofing). Plain text only.
_INVISIBLE = re.compile("[\u200b\u202a-\u202e\u2066-\u2069\ufeff]")
# A numeric character reference left in HTML (bleach keeps them) decodes to its
# character in the reader: those naming forbidden characters go too.
_CHAR_REF = re.compile(r"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));?")

_base_url: ContextVar[str | None] = ContextVar("base_url", default=None)
_local = threading.local()  # bleach Cleaners are not thread-safe: one per thread


if TYPE_CHECKING:
    import bleach


def _image_size(value: str) -> str | None:
    """An image's width or height as HTML has it (a whole number of CSS pixels,
    https://html.spec.whatwg.org/#dimension-attributes), or None: "100%", "-5",
    "4e3" and sizes over MAX_IMAGE_SIZE (a box no reader should lay out) go."""
    digits = value.strip(" \t\n\f\r").lstrip("0") or "0"
    if not (digits.isascii() and digits.isdigit()) or len(digits) > len(str(MAX_IMAGE_SIZE)):
        return None  # the length first: int() refuses (or is slow on) thousands of digits
    size = int(digits)
    return str(size) if 0 < size <= MAX_IMAGE_SIZE else None


def _checked_links_and_images(token_stream: Iterator[dict]) -> Iterator[dict]:
    """The tokens, each link and image checked by `_link_or_image`."""
    base = _base_url.get()
    for token in token_stream:
        if token["type"] in ("StartTag", "EmptyTag") and token["name"] in ("a", "img"):
            token = _link_or_image(token, base)
            if token is None:
                continue
        yield token


def _link_or_image(token: dict, base: str | None) -> dict | None:
    """A link's or image's start tag with its URL resolved against the article URL
    and made an absolute http(s) one (mailto too for links): a link with no such URL
    loses its href; an image with none is dropped (None). An image keeps its width
    and height only as whole pixels (`_image_size`)."""
    data = token["data"]
    if token["name"] == "img":
        for attr in ((None, "width"), (None, "height")):
            size = _image_size(data[attr]) if attr in data else None
            if size is None:
                data.pop(attr, None)
            else:
                data[attr] = size
    attr, schemes = ((None, "href"), LINK_SCHEMES) if token["name"] == "a" else ((None, "src"), IMAGE_SCHEMES)
    url = http_url(data[attr], base, schemes) if attr in data else None
    if url is None and token["name"] == "img":
        return None
    if url is None:
        data.pop(attr, None)
    else:
        data[attr] = url
    return token


def _cleaners() -> tuple["bleach.Cleaner", "bleach.Cleaner"]:
    if not hasattr(_local, "cleaners"):
        import bleach
        from bleach.html5lib_shim import Filter

        class LinksAndImages(Filter):
            def __iter__(self) -> Iterator[dict]:
                return _checked_links_and_images(super().__iter__())

        _local.cleaners = (
            bleach.Cleaner(tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                           protocols=LINK_SCHEMES, strip=True, strip_comments=True,
                           filters=[LinksAndImages]),
            bleach.Cleaner(tags=set(), attributes={}, strip=True, strip_comments=True),
        )
    return _local.cleaners


def remove_forbidden(text: str) -> str:
    """Drop characters that XML 1.0 forbids or discourages."""
    text = _FORBIDDEN.sub("", text)
    if not text.isascii() and _ASTRAL.search(text):
        text = _ASTRAL_NONCHARACTERS.sub("", text)
    return text


def _drop_hidden(html_text: str) -> str:
    """`html_text` without each hidden element (`_HIDDEN`), from its opener to the first
    closer of the same name; an opener with no closer after it stays (bleach strips it).
    Linear: each closer list is searched by bisection, never rescanned."""
    if "<" not in html_text:
        return html_text
    closers: dict[str, list[tuple[int, int]]] = {}
    for match in _HIDDEN_CLOSER.finditer(html_text):
        closers.setdefault(match.group(1).lower(), []).append(match.span())
    if not closers:
        return html_text
    kept, done = [], 0
    for opener in _HIDDEN_OPENER.finditer(html_text):
        if opener.start() < done:
            continue  # inside an element already dropped
        spans = closers.get(opener.group(1).lower(), ())
        after = bisect_left(spans, (opener.end(), 0))
        if after < len(spans):
            kept.append(html_text[done:opener.start()])
            done = spans[after][1]
    return "".join(kept) + html_text[done:] if kept else html_text


def _uncrowded(html_text: str) -> str:
    """`html_text`, or, if it is long and a tag in it has more than MAX_ATTRIBUTES
    attributes, `html_text` with every "<" escaped (see MAX_ATTRIBUTES). Linear."""
    if len(html_text) <= _CROWD_SCAN_CHARS:
        return html_text
    at = 0
    while tag := _TAG_START.search(html_text, at):
        at, count = tag.end(), 0
        while attribute := _ATTRIBUTE.match(html_text, at):
            at, count = attribute.end(), count + 1
            if count > MAX_ATTRIBUTES:
                return html_text.replace("<", "&lt;")
    return html_text


def _bleach_ready(html_text: str) -> str:
    """What goes to bleach: hidden elements dropped, a crowded text escaped."""
    return _uncrowded(_drop_hidden(html_text))


def _drop_forbidden_refs(html_text: str) -> str:
    def keep(match: re.Match) -> str:
        hex_digits, decimal = match.groups()
        point = int(hex_digits, 16) if hex_digits else int(decimal)
        if point > 0x10FFFF or not remove_forbidden(chr(point)):
            return ""
        return match.group(0)

    return _CHAR_REF.sub(keep, html_text) if "&#" in html_text else html_text


def plain_text(value: str) -> str:
    """Text with no markup: tags stripped, entities decoded, whitespace collapsed,
    forbidden characters removed. Text that only looks like a tag once decoded
    (`&lt;script&gt;`) is stripped too, since some readers render titles as HTML."""
    text = _INVISIBLE.sub("", remove_forbidden(value))
    for _ in range(4):
        if "<" in text:
            decoded = html.unescape(_cleaners()[1].clean(_bleach_ready(text)))
        elif "&" in text:
            decoded = html.unescape(text)  # no tag to strip: decoding is all bleach would leave to do
        else:
            break
        decoded = _INVISIBLE.sub("", remove_forbidden(decoded))
        if decoded == text:
            break
        text = decoded
    # Whatever four rounds left (an unclosed "<img onerror=...", text encoded five
    # times over) must not read as a tag to a reader that takes the text for HTML.
    return " ".join((_TAG_OPEN.sub("< ", text) if "<" in text else text).split())


def clean_html(fragment: str, base_url: str | None = None) -> str:
    """HTML reduced to the allowlist; every link and image an absolute http(s) URL
    (links may be mailto), relative ones resolved against `base_url`."""
    token = _base_url.set(base_url)
    try:
        return _drop_forbidden_refs(_cleaners()[0].clean(_bleach_ready(remove_forbidden(fragment))))
    finally:
        _base_url.reset(token)


def safe_url(value: str | None, base_url: str | None = None) -> str | None:
    """An absolute http(s) URL or None, whatever the disguise of the input."""
    if value is None:
        return None
    return http_url(remove_forbidden(value), base_url)
