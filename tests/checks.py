"""Reading documents back as users meet them: every text of a feed, and whether
any of it, read as HTML, is active content. Shared by the validity and
property-based tests."""

from __future__ import annotations

import json
import re
from typing import Any, Iterator
from urllib.parse import urlsplit

import lxml.html
from lxml import etree

# What must never reach a reader: elements that run, embed, restyle or re-target a page.
FORBIDDEN_TAGS = frozenset({"script", "iframe", "frame", "frameset", "object", "embed", "applet", "style",
                            "link", "form", "input", "button", "textarea", "select", "meta", "base", "svg",
                            "math", "template"})
# A raw "<script" in markup is a tag to every parser, whatever lxml makes of the rest.
# Only "<" or "</" followed straight by a letter opens a tag: "< script" is text
# (https://html.spec.whatwg.org/#tag-open-state), which is how plain text defuses
# what its decoding could not (see feeds.sanitize.plain_text).
RAW_FORBIDDEN_TAG = re.compile(r"</?(?:%s)\b" % "|".join(sorted(FORBIDDEN_TAGS)), re.IGNORECASE)
# URL-bearing or styling attributes the sanitizer never needs; href and src are checked by value.
UNWANTED_ATTRIBUTES = frozenset({"style", "srcset", "action", "formaction", "poster", "background", "data",
                                 "xlink:href", "lowsrc", "dynsrc", "ping"})

def parse_xml(body: bytes) -> etree._Element:
    """The document's root; raises on anything not well-formed (no entities resolved, no network)."""
    return etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))


def is_web_url(value: str, mailto: bool = False) -> bool:
    """An absolute http(s) URL with a host (or, where allowed, a mailto: address), with
    nothing a browser would strip first (controls, spaces) to find another scheme."""
    if not value or any(ord(c) <= 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        return False
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return False
    if mailto and parts.scheme == "mailto":
        return "@" in parts.path
    return parts.scheme in ("http", "https") and bool(host)


def texts(fmt: str, body: bytes) -> Iterator[tuple[str, str, bool]]:
    """(where, text, is_html) for every text and attribute value of a document."""
    if fmt == "json":
        yield from _json_texts(json.loads(body), "")
        return
    for element in parse_xml(body).iter():
        if not isinstance(element.tag, str):
            continue
        name = etree.QName(element).localname
        where = f"{etree.QName(element.getparent()).localname}/{name}" if element.getparent() is not None else name
        if element.text and element.text.strip():
            if fmt == "atom":
                is_html = element.get("type") == "html"
            else:  # RSS 2.0: description may hold entity-encoded HTML; so does content:encoded.
                is_html = name in ("description", "encoded")
            yield where, element.text, is_html
        for attribute, value in element.attrib.items():
            yield f"{where}@{etree.QName(attribute).localname}", value, False


def _json_texts(value: Any, where: str) -> Iterator[tuple[str, str, bool]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_texts(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _json_texts(item, f"{where}[{i}]")
    elif isinstance(value, str):
        yield where, value, where.endswith(".content_html")


def active_content(text: str, plain: bool) -> list[str]:
    """What in `text`, read as HTML, could run, load or restyle something; a plain
    text is read once more, as readers that decode titles twice would."""
    found = [f"raw {m.group(0)!r}" for m in RAW_FORBIDDEN_TAG.finditer(text)]
    tree = lxml.html.document_fromstring(f"<html><body><div>{text}</div></body></html>")
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        tag = element.tag.lower()
        if tag in FORBIDDEN_TAGS:
            found.append(f"<{tag}>")
        for name, value in element.attrib.items():
            name = name.lower()
            if name.startswith("on") or name in UNWANTED_ATTRIBUTES:
                found.append(f"<{tag} {name}=...>")
            elif name in ("href", "src") and not is_web_url(value, mailto=(tag, name) == ("a", "href")):
                found.append(f"<{tag} {name}={value!r}>")
    if plain:
        found += [f"decoded twice: {x}" for x in active_content(tree.text_content(), plain=False)]
    return found
