"""The JSON codec for feeds and snapshot manifests: what serving processes share through Redis."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from conftest import BUNDLED_SEEDS, FIXTURE_SEEDS, write_config
from feeds import Builder, load_config
from feeds.codec import (CodecError, _record, _TEXT, decode_feed, decode_manifest, digest, encode_feed,
                         encode_manifest, manifest_of)
from feeds.snapshot import limit_feed, render_feed
from feeds.urls import FORMATS
from test_properties import SEED, TEXT

FOLDERS = [BUNDLED_SEEDS, FIXTURE_SEEDS / "flawed", FIXTURE_SEEDS / "hostile", FIXTURE_SEEDS / "shapes"]


def _snapshot(tmp_path: Path, seeds: Path):
    config = load_config(write_config(tmp_path / "c.toml", seeds, seeds_extra="include_unpublished = true",
                                      extra='[feed.vision]\ntitle = "Vision"\ntopics = ["Computer Vision"]\n'))
    return Builder(config).build()


def _assert_round_trips(snapshot) -> None:
    for feed in snapshot.feeds.values():
        data = encode_feed(feed)
        back = decode_feed(data)
        assert back == feed
        assert encode_feed(back) == data
        for fmt in FORMATS:
            assert render_feed(back, fmt) == render_feed(feed, fmt)
            assert render_feed(limit_feed(back, 1), fmt) == render_feed(limit_feed(feed, 1), fmt)


@pytest.mark.parametrize("seeds", FOLDERS, ids=lambda folder: folder.name)
def test_feeds_round_trip_to_equal_feeds_and_identical_bytes(tmp_path, seeds):
    """Every feed decodes to an equal feed that renders (in full and with ?limit) to the very same bytes."""
    snapshot = _snapshot(tmp_path, seeds)
    assert snapshot.feeds
    _assert_round_trips(snapshot)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=SEED, body=TEXT)
def test_feeds_from_any_front_matter_round_trip(seed, body):
    """Whatever a seed holds, the feeds built from it survive the codec unchanged."""
    folder = Path(tempfile.mkdtemp(prefix="seedfeeds-codec-"))
    try:
        (folder / "seeds").mkdir()
        text = "---\n" + yaml.safe_dump(seed, allow_unicode=True) + "---\n" + body
        (folder / "seeds" / "seed.md").write_text(text, encoding="utf-8", errors="surrogatepass")
        _assert_round_trips(_snapshot(folder, folder / "seeds"))
    finally:
        shutil.rmtree(folder)


def test_manifest_round_trips(tmp_path):
    """A snapshot's manifest (documents' metadata, feed digests, counts, diagnostics) decodes to an equal one."""
    snapshot = _snapshot(tmp_path, FIXTURE_SEEDS / "flawed")
    manifest = manifest_of(snapshot, {key: digest(encode_feed(feed)) for key, feed in snapshot.feeds.items()})
    back = decode_manifest(encode_manifest(manifest))
    assert back == manifest
    assert list(back.feeds) == list(snapshot.feeds)  # directory order survives
    assert back.diagnostics == snapshot.diagnostics and back.diagnostics


def _feed_json(tmp_path) -> dict:
    feed = next(iter(_snapshot(tmp_path, BUNDLED_SEEDS).feeds.values()))
    return json.loads(encode_feed(feed))


@pytest.mark.parametrize(("damage", "what"), [
    (lambda doc: b"\x80not json", "not JSON"),
    (lambda doc: b"[" * 100_000, "nested deeper than any feed"),
    (lambda doc: {**doc, "format": 2}, "a format from the future"),
    (lambda doc: {"format": 1, "manifest": doc["feed"]}, "another kind of object"),
    (lambda doc: {**doc, "feed": {**doc["feed"], "ttl": "60"}}, "a string where a number goes"),
    (lambda doc: {**doc, "feed": {**doc["feed"], "ttl": True}}, "a boolean where a number goes"),
    (lambda doc: {**doc, "feed": {**doc["feed"], "extra": 1}}, "an unknown key"),
    (lambda doc: {**doc, "feed": {k: v for k, v in doc["feed"].items() if k != "title"}}, "a missing key"),
    (lambda doc: {**doc, "feed": {**doc["feed"], "updated": "2020-10-27T10:37:00"}}, "a date without a zone"),
    (lambda doc: {**doc, "feed": {**doc["feed"], "entries": [{"py/object": "os.system"}]}}, "a foreign object"),
])
def test_anything_else_is_refused_with_codec_error(tmp_path, damage, what):
    """Bytes the codec did not write raise CodecError (a ValueError), never something worse."""
    damaged = damage(_feed_json(tmp_path))
    data = damaged if isinstance(damaged, bytes) else json.dumps(damaged).encode()
    with pytest.raises(CodecError):
        decode_feed(data)


def test_header_values_in_a_manifest_are_checked(tmp_path):
    """An ETag or media type that could split an HTTP header is refused."""
    snapshot = _snapshot(tmp_path, BUNDLED_SEEDS)
    manifest = manifest_of(snapshot, {key: "0" * 32 for key in snapshot.feeds})
    for bad in ({"etag": 'abc"\r\nSet-Cookie: x=1'}, {"media_type": "text/html\r\nX: y"}):
        page = replace(manifest.documents["/"], **bad)
        with pytest.raises(CodecError):
            decode_manifest(encode_manifest(replace(manifest, documents={**manifest.documents, "/": page})))


def test_a_field_missing_from_the_schema_is_caught_at_import():
    """A dataclass field the codec does not name stops the import, rather than being dropped silently."""

    @dataclass(frozen=True)
    class Pair:
        left: str
        right: str

    with pytest.raises(TypeError):
        _record(Pair, left=_TEXT)
