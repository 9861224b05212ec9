"""A deterministic corpus of seed files, shaped like the samples in seeds/.

    python bench/generate.py OUT_DIR --count N [--seed S]

Writes N files named `<index>_<hex>.txt` into one subfolder per publication
year. The same count and seed give byte-identical files. Every file is 2.6-6.9 KB:
a provider with a logo, 1-4 topics from a pool of 40, 0-6 related items and, on
about a third of the files, a Markdown body; about 15 % are `published: false`.
Standard library only, so it runs outside the project's venv.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import random
import re
import sys
import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

# Bump when the output changes, so cached corpora (bench/build_time.py) are rebuilt.
FORMAT_VERSION = 1
MIN_BYTES = 2600
MAX_BYTES = 6900
UNPUBLISHED_SHARE = 0.15
BODY_SHARE = 0.35
MAX_RELATED = 6
PROVIDER_COUNT = 400
FIRST_DAY = datetime(2019, 1, 1, tzinfo=timezone.utc)
SPAN_MINUTES = 5 * 365 * 24 * 60

TOPICS = (
    "AI", "Computer Vision", "Machine Learning", "Facial Recognition", "Deep Learning",
    "Robotics", "Natural Language Processing", "Autonomous Vehicles", "Privacy", "Surveillance",
    "Biometrics", "Generative AI", "Large Language Models", "AI Ethics", "AI Regulation",
    "Chatbots", "Speech Recognition", "Drones", "Edge Computing", "Cloud Computing",
    "Cybersecurity", "Healthcare AI", "Semiconductors", "Quantum Computing", "Internet of Things",
    "Smart Cities", "AR & VR", "Data Science", "Big Data", "Reinforcement Learning",
    "Neural Networks", "Recommender Systems", "Fintech", "Image Recognition", "Video Analytics",
    "Open Source", "MLOps", "Self-Driving Cars", "Wearables", "Digital Health",
)
# Front-loaded, as in real news: most items are tagged AI or Computer Vision.
TOPIC_CUM_WEIGHTS = tuple(itertools.accumulate(1 / (rank + 1) ** 0.9 for rank in range(len(TOPICS))))

_NAME_HEADS = (
    "Daily", "Tech", "Metro", "Global", "Silicon", "Future", "Digital", "Bay", "Northern",
    "Capital", "Pacific", "Atlantic", "Midwest", "Valley", "Harbor", "City", "Open", "Smart",
    "Data", "Robot", "Signal", "Circuit", "Prairie", "Coastal", "Summit", "Lakeside",
)
_NAME_TAILS = (
    "Times", "Herald", "Post", "Wire", "Journal", "Insider", "Review", "Report", "Chronicle",
    "Tribune", "Gazette", "News", "Observer", "Monitor", "Dispatch", "Beat", "Ledger", "Digest",
    "Today", "Weekly", "Register", "Courier",
)
_TLDS = ("com",) * 12 + ("co.uk", "org", "net", "io", "com.au", "de", "ca", "in", "org.uk")
_SECTIONS = ("news", "technology", "business", "science", "tech/ai", "world", "innovation", "opinion")

_ORGS = (
    "Amnesty International", "the European Commission", "Microsoft", "Google", "Amazon", "IBM",
    "NEC", "Clearview AI", "OpenAI", "Nvidia", "Intel", "Baidu", "Tesla", "Waymo", "the ACLU",
    "the FTC", "MIT researchers", "Stanford researchers", "the city council", "the Metropolitan Police",
    "Boston Dynamics", "DeepMind", "Meta", "Apple", "Samsung", "Huawei", "SenseTime", "Palantir",
    "Detroit police", "the NHS", "Société Générale", "Siemens", "Bosch", "a coalition of rights groups",
    "the Department of Homeland Security", "Zürich's transport authority", "AT&T", "Qualcomm",
)
_THINGS = (
    "facial recognition technology", "a new computer vision model", "autonomous delivery robots",
    "a speech recognition system", "an AI chip", "a customer-service chatbot", "a surveillance program",
    "a machine learning platform", "driver-assistance software", "a drone fleet",
    "an open-source language model", "emotion detection software", "a biometric ID system",
    "a predictive policing tool", "a medical imaging model", "a self-driving taxi service",
    "a deepfake detector", "smart traffic cameras", "warehouse robots", "a fraud detection system",
)
_VERBS = (
    "launched", "unveiled", "banned", "tested", "deployed", "paused", "expanded", "open-sourced",
    "acquired", "criticized", "approved", "rolled out", "halted", "piloted", "audited",
)
_PLACES = (
    "schools", "airports", "hospitals", "New York", "London", "Minneapolis", "Tokyo", "Berlin",
    "São Paulo", "retail stores", "city streets", "warehouses", "college campuses", "Toronto",
    "Singapore", "Detroit", "Paris", "Nairobi",
)
_TAILS = (
    "after months of public pressure", "despite privacy concerns", "ahead of new regulation",
    "in a bid to cut costs", "following a string of wrongful arrests", "as competition heats up",
    "amid the pandemic", "to mixed reviews", "with little public debate", "for the first time",
)
_OPINIONS = (
    "Critics say the technology creates privacy issues and can contribute to racial profiling.",
    "Supporters argue it will make the service faster, cheaper and safer.",
    "The company did not respond to a request for comment.",
    "Analysts expect similar announcements from rivals within the year.",
    "Lawmakers have called for an independent audit before any wider roll-out.",
    "Researchers warn that the training data may not represent the people it is used on.",
    "The pilot will run for six months before a decision on a permanent deployment.",
    "Civil liberties groups have asked for the data to be deleted after 30 days.",
)
_IMAGE_SIZES = ((1200, 675), (1200, 630), (640, 360), (1920, 1080), (800, 450), (980, 574), (400, 400))
# Unquoted YAML that any YAML version reads as text: no indicators, no 1.1 booleans.
_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9 &'.-]*[A-Za-z0-9.]$")
_YAML11_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


@dataclass(frozen=True)
class Provider:
    name: str
    domain: str
    host: str  # the domain, with "www." on some sites
    logo: str


def generate(out_dir: Path, count: int, seed: int = 1) -> None:
    """Write `count` seed files under `out_dir`; the same count and seed give the same bytes."""
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty; generate into a new folder")
    rng = random.Random(seed)
    providers = make_providers(rng, PROVIDER_COUNT)
    # Zipf-like: a few providers publish much; from ~10,000 files on, each of them appears.
    provider_weights = list(itertools.accumulate(1 / (rank + 1) ** 0.8 for rank in range(len(providers))))
    width = max(6, len(str(count - 1)))
    folders: set[Path] = set()
    for index in range(count):
        published = FIRST_DAY + timedelta(minutes=rng.randrange(SPAN_MINUTES))
        provider = rng.choices(providers, cum_weights=provider_weights)[0]
        text = seed_text(rng, index, published, provider, providers)
        folder = out_dir / str(published.year)
        if folder not in folders:
            folder.mkdir(parents=True, exist_ok=True)
            folders.add(folder)
        name = f"{index:0{width}d}_{rng.getrandbits(64):016x}.txt"
        (folder / name).write_bytes(text.encode("utf-8"))


def make_providers(rng: random.Random, count: int) -> list[Provider]:
    """`count` providers with distinct names and domains, and a 50x50 logo each."""
    names = [f"{head} {tail}" for head in _NAME_HEADS for tail in _NAME_TAILS]
    if count > len(names):
        raise ValueError(f"at most {len(names)} providers")
    providers = []
    for name in rng.sample(names, count):
        domain = name.replace(" ", "").lower() + "." + rng.choice(_TLDS)
        host = "www." + domain if rng.random() < 0.6 else domain
        logo = f"https://smartableai.github.io/artificial-intelligence/assets/images/organizations/{domain}-50x50.jpg"
        providers.append(Provider(name, domain, host, logo))
    return providers


def seed_text(rng: random.Random, index: int, published: datetime, provider: Provider,
              providers: list[Provider]) -> str:
    """One seed file: front matter, then (sometimes) a Markdown body; within the size bounds."""
    title = make_title(rng)
    url = article_url(rng, provider, published, title, index)
    head = _head(rng, title, url, published, provider)
    tail = _topics(rng) + _images(rng, provider, published)
    secured = f'secured: "{_secured(rng)}"\n---\n'
    related = [_related(rng, published, providers) for _ in range(rng.randint(0, MAX_RELATED))]
    body = make_body(rng, url) if rng.random() < BODY_SHARE else ""

    def size() -> int:
        block = len("related:\n\n") + sum(len(item.encode()) for item in related) if related else 0
        return len(head.encode()) + len(tail.encode()) + block + len(secured) + len(body.encode())

    while size() < MIN_BYTES:
        # Files drawn without related items stay without: they grow a longer body instead.
        if related and len(related) < MAX_RELATED:
            related.append(_related(rng, published, providers))
        else:
            body += "\n" + _paragraph(rng) + "\n"
    while size() > MAX_BYTES and related:
        related.pop()
    block = "related:\n" + "".join(related) + "\n" if related else ""
    return head + tail + block + secured + body


def make_title(rng: random.Random) -> str:
    org, thing, place = rng.choice(_ORGS), rng.choice(_THINGS), rng.choice(_PLACES)
    pattern = rng.randrange(5)
    if pattern == 0:
        title = f"{org} {rng.choice(_VERBS)} {thing} in {place}"
    elif pattern == 1:
        title = f"How {thing} is changing {place}"
    elif pattern == 2:
        title = f"{org} calls for ‘day of action’ on {thing}"
    elif pattern == 3:
        title = f"Why {thing} at {place} worries {org}"
    else:
        title = f"{org} {rng.choice(_VERBS)} {thing} {rng.choice(_TAILS)}"
    return _capitalized(title)


def make_excerpt(rng: random.Random) -> str:
    sentences = [_sentence(rng) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.5:
        sentences.append(rng.choice(_OPINIONS))
    text = " ".join(sentences)
    # Some sources cut their excerpts mid-sentence, as in the samples.
    return text[:rng.randint(120, 200)].rstrip() + " ..." if rng.random() < 0.2 else text


def make_body(rng: random.Random, url: str) -> str:
    """Markdown: paragraphs with emphasis and a link, a list, sometimes a heading."""
    first, second = _paragraph(rng), _paragraph(rng)
    link = rng.choice((f"{url}report/", "/tag/artificial-intelligence/", "https://www.aclu.org/issues/privacy"))
    points = "\n".join(f"- {_capitalized(rng.choice(_THINGS))} in {rng.choice(_PLACES)}"
                       for _ in range(rng.randint(2, 5)))
    heading = "## Background\n\n" if rng.random() < 0.3 else ""
    return (f"\n{first} *{rng.choice(_ORGS)}* has published [the full findings]({link}).\n\n"
            f"{heading}**What changes:**\n\n{points}\n\n{second}\n")


def article_url(rng: random.Random, provider: Provider, published: datetime, title: str, index: int) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    section = rng.choice(_SECTIONS)
    return f"https://{provider.host}/{section}/{published:%Y/%m/%d}/{slug}-{index}/"


def _head(rng: random.Random, title: str, url: str, published: datetime, provider: Provider) -> str:
    lines = [
        "---",
        f"category: {'news' if rng.random() < 0.85 else rng.choice(('analysis', 'opinion', 'research'))}",
        f"title: {_quoted(title)}",
        f"excerpt: {_quoted(make_excerpt(rng))}",
        f"publishedDateTime: {_timestamp(published)}",
    ]
    if rng.random() < 0.85:
        lines.append(f"originalUrl: {_quoted(url)}")
    lines.append(f"webUrl: {_quoted(url)}")
    if rng.random() < 0.6:
        lines += _amp_urls(url)
    lines += [
        f"type: {'article' if rng.random() < 0.9 else 'video'}",
        f"quality: {rng.randint(5, 99)}",
        f"heat: {-1 if rng.random() < 0.6 else rng.randint(0, 500)}",
        f"published: {'false' if rng.random() < UNPUBLISHED_SHARE else 'true'}",
        "",
        "provider:",
        f"  name: {_scalar(provider.name)}",
        f"  domain: {provider.domain}",
        "  images:",
        f"    - url: {_quoted(provider.logo)}",
        "      width: 50",
        "      height: 50",
        "",
    ]
    return "\n".join(lines) + "\n"


def _topics(rng: random.Random) -> str:
    picked = dict.fromkeys(rng.choices(TOPICS, cum_weights=TOPIC_CUM_WEIGHTS, k=rng.randint(1, 4)))
    return "topics:\n" + "".join(f"  - {_scalar(topic)}\n" for topic in picked) + "\n"


def _images(rng: random.Random, provider: Provider, published: datetime) -> str:
    if rng.random() < 0.2:
        return ""
    return "images:\n" + _image(rng, provider, published, "  ") + "\n"


def _image(rng: random.Random, provider: Provider, published: datetime, indent: str) -> str:
    width, height = rng.choice(_IMAGE_SIZES)
    url = f"https://cdn.{provider.domain}/uploads/{published:%Y/%m}/{rng.getrandbits(48):012x}.jpg"
    lines = [f"{indent}- url: {_quoted(url)}", f"{indent}  width: {width}", f"{indent}  height: {height}"]
    if rng.random() < 0.8:
        lines.append(f"{indent}  isCached: true")
    return "\n".join(lines) + "\n"


def _related(rng: random.Random, published: datetime, providers: list[Provider]) -> str:
    provider = rng.choice(providers)
    when = published + timedelta(minutes=rng.randint(-5 * 24 * 60, 24 * 60))
    title = make_title(rng)
    url = article_url(rng, provider, when, title, rng.randrange(10**6))
    lines = [
        f"  - title: {_quoted(title)}",
        f"    excerpt: {_quoted(make_excerpt(rng))}",
        f"    publishedDateTime: {_timestamp(when)}",
        f"    webUrl: {_quoted(url)}",
    ]
    if rng.random() < 0.5:
        lines += ["    " + line for line in _amp_urls(url)]
    lines += [
        f"    type: {'article' if rng.random() < 0.9 else 'video'}",
        "    provider:",
        f"      name: {_scalar(provider.name)}",
        f"      domain: {provider.domain}",
        f"    quality: {rng.randint(5, 99)}",
    ]
    text = "\n".join(lines) + "\n"
    if rng.random() < 0.6:
        text += "    images:\n" + _image(rng, provider, when, "      ")
    return text


def _amp_urls(url: str) -> list[str]:
    host_and_path = url.split("://", 1)[1]
    cdn_host = host_and_path.split("/", 1)[0].replace("-", "--").replace(".", "-")
    return [f"ampWebUrl: {_quoted(url + 'amp/')}",
            f"cdnAmpWebUrl: {_quoted(f'https://{cdn_host}.cdn.ampproject.org/c/s/{host_and_path}amp/')}"]


def _sentence(rng: random.Random) -> str:
    return _capitalized(f"{rng.choice(_ORGS)} {rng.choice(_VERBS)} {rng.choice(_THINGS)} "
                        f"in {rng.choice(_PLACES)} {rng.choice(_TAILS)}.")


def _paragraph(rng: random.Random) -> str:
    return " ".join([_sentence(rng), rng.choice(_OPINIONS), _sentence(rng)])


def _secured(rng: random.Random) -> str:
    # An opaque signature in the samples: base64 payload, ';', base64 nonce.
    payload = base64.b64encode(rng.randbytes(rng.randint(200, 440))).decode()
    return payload + ";" + base64.b64encode(rng.randbytes(16)).decode()


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:00Z")


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _scalar(text: str) -> str:
    """Plain (unquoted) where every YAML reader agrees it is text, quoted otherwise."""
    if _PLAIN.match(text) and text.lower() not in _YAML11_WORDS and " #" not in text:
        return text
    return _quoted(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder to create (must be new or empty)")
    parser.add_argument("--count", type=int, required=True, help="number of seed files")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    args = parser.parse_args(argv)
    if args.count < 0:
        parser.error("--count must be 0 or more")
    started = time.perf_counter()
    try:
        generate(args.out_dir, args.count, args.seed)
    except FileExistsError as exc:
        print(f"generate.py: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.count} seed files to {args.out_dir} in {time.perf_counter() - started:.2f}s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
