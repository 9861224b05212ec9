"""Configuration: validated once, errors name the file and the key."""

from __future__ import annotations

import re
import subprocess

import pytest

from conftest import ROOT, SEEDFEEDS, write_config
from feeds import ConfigError, load_config
from feeds.config import SETTINGS


def _config(tmp_path, text: str):
    path = tmp_path / "seedfeeds.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "key"), [
    ('[site]\ntitel = "typo"\n', "site.titel"),
    ('[sight]\ntitle = "x"\n', "sight"),
    ('[feeds]\nentries_per_feed = "50"\n', "feeds.entries_per_feed"),
    ("[feeds]\nentries_per_feed = 0\n", "feeds.entries_per_feed"),
    ("[feeds]\nrefresh_seconds = true\n", "feeds.refresh_seconds"),
    ('[seeds]\npath = "seeds"\ninclude_unpublished = "yes"\n', "seeds.include_unpublished"),
    ('[seeds]\npath = "seeds"\nglobs = "*.txt"\n', "seeds.globs"),
    ('[site]\nbase_url = "ftp://example.com"\n', "site.base_url"),
    ('[site]\nbase_url = "http://example.com\\n/x"\n', "site.base_url"),
    ('[site]\nbase_url = "http://exa mple.com"\n', "site.base_url"),
    ('[site]\nlanguage = "english please"\n', "site.language"),
    ('[seeds]\npath = "does-not-exist"\n', "seeds.path"),
    ('[websub]\nhubs = "https://hub.example.org/"\n', "websub.hubs"),
    ('[websub]\nhubs = ["ftp://hub.example.org/"]\n', "websub.hubs"),
    ('[websub]\nhubs = ["/hub"]\n', "websub.hubs"),
    ('[websub]\nhubs = ["https://hub.example.org/a b"]\n', "websub.hubs"),
    ('[websub]\nhubs = ["https://hub.example.org/>; rel=\\"self\\""]\n', "websub.hubs"),
    ('[websub]\nhubs = ["https://hub.example.org/#x"]\n', "websub.hubs"),
    ('[websub]\nhubs = ["https://h.example/", "https://h.example/"]\n', "websub.hubs"),
    ('[websub]\nhub = ["https://hub.example.org/"]\n', "websub.hub"),
    ('[feed.all]\ntitle = "clash"\n', "feed.all"),
    ('[feed.Bad_Name]\ntitle = "x"\n', "feed.Bad_Name"),
    ('[feed.ok]\nsubtitle = "no title"\n', "feed.ok.title"),
    ('[feed.ok]\ntitle = "x"\ntopic = ["a"]\n', "feed.ok.topic"),
    ('[feed.ok]\ntitle = "x"\nmin_quality = "high"\n', "feed.ok.min_quality"),
    ("[site\n", "(syntax)"),
    ('[serve]\nsnapshot_store = "redis://"\n', "serve.snapshot_store"),
    ('[serve]\nsnapshot_store = "memcached://127.0.0.1:11211"\n', "serve.snapshot_store"),
    ('[serve]\nsnapshot_store = "redis://127.0.0.1:99999/0"\n', "serve.snapshot_store"),
    ('[serve]\nsnapshot_store = "redis://127.0.0.1:6379/cache"\n', "serve.snapshot_store"),
    ('[serve]\nsnapshot_store = "redis://127.0.0.1:6379/0?timeout=1"\n', "serve.snapshot_store"),
    ("[serve]\nsnapshot_store = 6379\n", "serve.snapshot_store"),
    ('[serve]\nworkers = 2\n', "serve.workers"),
])
def test_bad_config_names_file_and_key(tmp_path, text, key):
    """Unknown keys, wrong types, bad values and a missing seed folder raise ConfigError with file and key."""
    (tmp_path / "seeds").mkdir()
    if "[seeds]" not in text:
        text = '[seeds]\npath = "seeds"\n' + text
    path = _config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == key
    assert caught.value.file == str(path)


@pytest.mark.parametrize("store", ["memory", "redis://127.0.0.1:6379/0", "redis://cache.internal", "rediss://:secret@cache:6380/15"])
def test_snapshot_store_takes_memory_or_a_redis_url(tmp_path, store):
    """serve.snapshot_store is "memory" (the default) or a redis:// or rediss:// URL."""
    (tmp_path / "seeds").mkdir()
    config = load_config(_config(tmp_path, f'[seeds]\npath = "seeds"\n[serve]\nsnapshot_store = "{store}"\n'))
    assert config.snapshot_store == store


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    """seeds.path is relative to the config file's folder, not the working directory."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "data").mkdir()
    config = load_config(_config(tmp_path / "conf", '[seeds]\npath = "../data"\n'))
    assert config.seeds_path == (tmp_path / "data").resolve()


def test_defaults_apply_to_keys_not_given(tmp_path):
    """A config naming only the seed folder gets every documented default."""
    (tmp_path / "seeds").mkdir()
    config = load_config(_config(tmp_path, '[seeds]\npath = "seeds"\n'))
    assert config.entries_per_feed == 50 and config.refresh_seconds == 60
    assert config.include_unpublished is False and config.min_quality is None
    assert config.globs == ("*.txt", "*.md", "*.markdown")
    assert config.hubs == ()


def test_bundled_config_is_valid():
    """config/seedfeeds.toml loads and points at the bundled seeds."""
    config = load_config(ROOT / "config" / "seedfeeds.toml")
    assert config.seeds_path == (ROOT / "seeds").resolve()


def test_every_setting_is_documented_in_the_readme():
    """Each row of the settings table appears in the README's configuration reference, with its default."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for setting in SETTINGS:
        section, name = setting.key.split(".")
        assert f"### `[{section}]`" in readme, f"section [{section}] is not documented"
        row = re.search(rf"^\| `{name}` \|.*$", readme.split(f"### `[{section}]`")[1], re.M)
        assert row, f"{setting.key} is not documented"
        assert _toml(setting.default) in row.group(0), f"{setting.key}: default {_toml(setting.default)} not shown"


def _toml(value) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "`[" + ", ".join(f'"{v}"' for v in value) + "]`"
    return f'`"{value}"`' if isinstance(value, str) else f"`{value}`"


def test_config_error_stops_the_cli_with_one_line(tmp_path):
    """A bad config makes every command exit 2 with one line naming the file and the key."""
    path = _config(tmp_path, '[feeds]\nentries_per_feed = "many"\n[seeds]\npath = "."\n')
    for command in (["list"], ["check"], ["build", "--out", str(tmp_path / "out")], ["serve", "--port", "0"]):
        result = subprocess.run([SEEDFEEDS, *command, "--config", str(path)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, command
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and "feeds.entries_per_feed" in lines[0]


def test_config_file_from_environment(tmp_path, seed_dir):
    """SEEDFEEDS_CONFIG picks the config file when --config is not given."""
    path = write_config(tmp_path / "env.toml", seed_dir, extra='[feed.from-env]\ntitle = "From env"\n')
    result = subprocess.run([SEEDFEEDS, "list"], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={"SEEDFEEDS_CONFIG": str(path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "from-env" in result.stdout
