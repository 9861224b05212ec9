"""Every public path and slug, article identity, and URL checks.

The paths are the public contract (readers bookmark them):

    /feeds/all.<fmt>  /feeds/topics/<slug>.<fmt>  /feeds/providers/<domain>.<fmt>
    /feeds/<name>.<fmt>  with <fmt> one of atom, rss, json
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import unicodedata
from functools import lru_cache
from urllib.parse import SplitResult, parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

FORMATS = ("atom", "rss", "json")
DEFAULT_PORTS = {"http": "80", "https": "443"}
_SLUG_RUN = re.compile(r"[^a-z0-9]+")
# Symbols that make another name of the word they follow (C, C++, C#; Disney, Disney+).
_SPELLED = re.compile(r"(?<=[^\W_])[+#]+")
_SPELLED_OUT = {"+": " plus ", "#": " sharp "}
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# WHATWG URL: a host whose last label is a number (decimal, or 0x and hex) is an IPv4 address.
_NUMBER_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
# Special-use names (RFC 6761, 6762, 8375; ICANN's .internal) that resolve inside the reader's own network.
_LOCAL_SUFFIXES = ("localhost", "local", "internal", "home.arpa", "invalid")
# WHATWG URL parsing removes these anywhere in a URL, and C0 controls and spaces at its ends.
_URL_INVISIBLE = re.compile(r"[\t\n\r]")
_URL_EDGES = "".join(chr(c) for c in range(0x21))
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*(?=:)")
# How Python names a byte that is not UTF-8 (PEP 383), in a URL or a file name: a lone surrogate.
UNDECODABLE = re.compile("[\ud800-\udfff]")
# Path segments Windows (and some tools) treat specially.
_RESERVED_SLUGS = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                             *(f"lpt{i}" for i in range(10))})
SLUG_MAX = 60
# An absolute http(s) URL that needs no resolving, no re-encoding and no case
# change: lowercase ASCII host, no port, no userinfo, a path, only URI characters.
_URI_CHARS = r"[A-Za-z0-9\-._~%!$&'()*+,;=:@/]"
_PLAIN_URL = re.compile(rf"^(https?)://([a-z0-9][a-z0-9.-]*)(/{_URI_CHARS}*)(\?[A-Za-z0-9\-._~%!$&'()*+,;=:@/?]*)?"
                        rf"(#[A-Za-z0-9\-._~%!$&'()*+,;=:@/?]*)?$")


class Urls:
    """Builds every public path and absolute URL from the configured base URL."""

    def __init__(self, base_url: str, icon_name: str = "icon.png") -> None:
        self.base_url = base_url.rstrip("/")
        self.icon_path = f"/{icon_name}"
        self.icon_url = self.absolute(self.icon_path)

    def absolute(self, path: str) -> str:
        return self.base_url + path

    def directory(self) -> str:
        return self.absolute("/")

    def feed_path(self, key: str, fmt: str) -> str:
        return f"/feeds/{key}.{fmt}"

    def feed_stem(self, key: str) -> str:
        """The feed's absolute URL without its `.<fmt>` suffix."""
        return self.absolute(f"/feeds/{key}")


def topic_key(slug: str) -> str:
    return f"topics/{slug}"


def provider_key(domain: str) -> str:
    return f"providers/{domain}"


def slugify(label: str) -> str:
    """A stable, path-safe slug: "Computer Vision" -> "computer-vision".

    Labels that differ only in case, accents, spacing or punctuation share a
    slug: they are one topic ("AI", "ai"; "Café", "Cafe"), whose feed takes the
    most common label. A "+" or "#" after a letter or digit is spelled out, as
    it names something else: "C++" -> "c-plus-plus", "C#" -> "c-sharp", "C" -> "c".
    Letters that do not fold to ASCII, and labels that fold to nothing or to a
    reserved name, get a short hash of the label, so that every slug is a safe
    single path segment and such labels never share one.
    """
    label = _SPELLED.sub(lambda m: "".join(_SPELLED_OUT[c] for c in m.group()), label)
    folded = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    slug = _SLUG_RUN.sub("-", folded.lower()).strip("-")
    lost = any(ch.isalnum() for ch in unicodedata.normalize("NFKD", label) if not ch.isascii())
    if lost or not slug or slug in _RESERVED_SLUGS or len(slug) > SLUG_MAX:
        digest = hashlib.sha256(label.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        slug = f"{slug[:SLUG_MAX - 9].rstrip('-')}-{digest}".lstrip("-")
    return slug


@lru_cache(maxsize=8192)  # a pure function of a few hundred distinct domains, called per field
def provider_domain(value: str) -> str | None:
    """A provider's domain as used in feed paths: lowercase, IDNA, no `www.`;
    None when the value is not a plain host name (slashes, ports, userinfo...)
    or names a place inside the reader's own network (see `_inside_networks`)."""
    named = _named_host(value)
    if named is None or len(named[1]) < 2 or _inside_networks(*named):
        return None
    return named[0]


def _named_host(value: str) -> tuple[str, list[str]] | None:
    """A host name as written -> (lowercase, IDNA, no trailing dot or `www.`; its
    labels); None unless every label is a valid one."""
    host = value.strip().rstrip(".").lower()
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if host.startswith("www."):
        host = host[4:]
    labels = host.split(".")
    if len(host) > 253 or not all(_HOST_LABEL.match(x) for x in labels):
        return None
    return host, labels


def _inside_networks(host: str, labels: list[str]) -> bool:
    """Whether a reader's browser would take `host` to its own machine or network,
    or to no address it can name.

    A hostile seed's `<img src="http://192.168.1.1/reboot">` makes every
    subscriber's reader send that request from inside their network. Refused:
    IP addresses that are not global (loopback, private, link-local, shared,
    reserved, multicast), hosts a browser reads as an IPv4 address although Python reads
    a name (`0x7f.1`, `127.1` and `0177.0.0.1` are all 127.0.0.1 to the WHATWG
    parser: a last label that is a number makes the whole host one), and
    special-use names that resolve locally (`printer.local`, `x.localhost`).
    A global IPv4 address in dotted decimal stays usable."""
    if _NUMBER_LABEL.fullmatch(labels[-1]):
        try:
            address = ipaddress.IPv4Address(host)  # dotted decimal only, no leading zeros
        except ValueError:
            return True
        return not address.is_global or address.is_multicast
    return any(host == suffix or host.endswith("." + suffix) for suffix in _LOCAL_SUFFIXES)


INSIDE = "an address inside the reader's own network (private, loopback or local)"


def why_unusable(url: str) -> str:
    """Why `http_url` refused `url`, in a diagnostic's words."""
    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:
        host = ""
    return f"its host is {INSIDE}" if inside_networks(host) else "not an absolute http(s) URL"


def inside_networks(host: str) -> bool:
    """Whether a host name, as written, is refused for naming a place inside the
    reader's own network (see `_inside_networks`)."""
    named = _named_host(host)
    return named is not None and _inside_networks(*named)


def http_url(value: str, base: str | None = None, schemes: tuple[str, ...] = ("http", "https")) -> str | None:
    """An absolute URL with one of `schemes` and a host, percent-encoded where
    needed; None for anything else (javascript:, data:, relative without base...).

    With `base`, relative references are resolved against it first.
    """
    plain = _PLAIN_URL.match(value)
    if plain and plain.group(1) in schemes and provider_domain(plain.group(2)):
        return value  # already in the form the general path below would give
    return _http_url(value, base, schemes)


def _http_url(value: str, base: str | None, schemes: tuple[str, ...]) -> str | None:
    value = _URL_INVISIBLE.sub("", value).strip(_URL_EDGES)
    if not value:
        return None
    try:
        value = _web_slashes(value, base)
        if base is not None:
            value = urljoin(base, value)
        if UNDECODABLE.search(value):
            return None
        parts = urlsplit(value)
        scheme = parts.scheme.lower()
        if scheme not in schemes:
            return None
        if scheme == "mailto":
            # An address at least ("mailto:" alone, or a subject with no one to send it to, opens nothing).
            return "mailto:" + quote(parts.path, safe="@!$&'()*+,;=%") if "@" in parts.path else None
        host = _host(parts)
        port = parts.port
    except ValueError:
        return None
    if host is None:
        return None
    netloc = host if port is None or str(port) == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = quote(parts.path, safe="/%:@!$&'()*+,;=~-._") or "/"
    query = quote(parts.query, safe="/%:@!$&'()*+,;=?~-._")
    fragment = quote(parts.fragment, safe="/%:@!$&'()*+,;=?~-._")
    return urlunsplit((scheme, netloc, path, query, fragment))


def _web_slashes(value: str, base: str | None) -> str:
    """`value` with each backslash before its query or fragment made a slash,
    when it is (or, relative, resolves to) an http(s) URL.

    Browsers parse http(s) URLs by the WHATWG URL standard, which reads `\\` as
    `/` there; Python's `urlsplit` keeps it as a character of the host or
    userinfo. So `https://example.com\\@evil.com/` is example.com to a reader
    but evil.com to `urlsplit`. Read the way browsers read it rather than
    rejected: the link then goes where the author's own browser went, and the
    URL we write back has only slashes, which every parser splits alike.
    Backslashes in the query and fragment are data to both, so they stay.
    """
    if "\\" not in value:
        return value
    scheme = _SCHEME.match(value) or (_SCHEME.match(base) if base else None)
    if scheme is None or scheme.group().lower() not in DEFAULT_PORTS:
        return value
    end = min((i for i in (value.find("?"), value.find("#")) if i >= 0), default=len(value))
    return value[:end].replace("\\", "/") + value[end:]


def _host(parts: SplitResult) -> str | None:
    """The host as written back into a URL: a domain (IDNA) or a global IPv4
    address; None for anything else.

    An IPv6 literal (`http://[::1]:8080/`) is refused: the W3C Feed Validator
    reports its brackets as "Invalid character in a URI", and the articles,
    images and icons of a public feed live at names. (Its brackets were once
    dropped on the way back into a URL, which read as host and port.) Brackets
    anywhere, and spaces, which browsers refuse in a host, make the URL unusable.
    """
    hostport = parts.netloc.rpartition("@")[2]
    host = parts.hostname
    if not host or "[" in hostport or "]" in hostport or host != host.strip() or provider_domain(host) is None:
        return None  # provider_domain also takes every global IPv4 address
    try:
        return host if host.isascii() else host.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def canonical_url(url: str) -> str:
    """An article's identity: the URL with scheme, `www.`, host case, default
    port, trailing slash, fragment and `utm_*` parameters normalized away.

    `url` must already have passed `http_url`; any other string is its own
    identity, as it cannot be the same article as a different one. The query
    is decoded to be re-encoded one way, with bytes that are not UTF-8 kept as
    they are (surrogateescape): replaced by U+FFFD, `?id=%FF` and `?id=%FE`
    would be one article.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
        pairs = parse_qsl(parts.query, keep_blank_values=True, errors="surrogateescape")
        query = urlencode([(k, v) for k, v in pairs if not k.lower().startswith("utm_")],
                          quote_via=quote, safe="/:@!$'()*+,;~", errors="surrogateescape")
    except ValueError:  # not from http_url (UnicodeEncodeError is a ValueError too)
        return url
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    if port is not None and str(port) not in DEFAULT_PORTS.values():
        host += f":{port}"
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("https", host, path, query, ""))
