"""The least any cold build can take, for figure 1's two targets to be read against.

    python bench/floor.py CONFIG one   # one process reads every seed
    python bench/floor.py CONFIG two   # this process and a fork read half each
    python bench/floor.py CONFIG two-serializing   # the same, and each entry serialized

Both modes only read: each seed file is parsed, checked and sanitized into an
entry (`feeds.builder.read_entry`, what every build does first), and the entry
is dropped at once. Nothing is kept, ledgered, laid out, rendered or written.

- `one`: the wall time of reading alone in one process. A single-process build
  cannot be faster than this, whatever its rendering costs.
- `two`: the memory of reading alone on both cores, in its most frugal form:
  everything the reading imports (bleach included) is loaded, warmed on the
  first seeds and frozen before the fork, so both processes share it until
  they write to it. A build that
  reads on both cores holds at least this much, plus its entries, at once.

- `two-serializing`: as `two`, and each entry is also serialized once in each
  feed format (the Atom entry, RSS item and JSON Feed item every build must
  write at least once), then dropped. Nothing is kept, no document assembled:
  the least a build on both cores holds while doing the work no build skips.

run.py times `one` and samples the anonymous memory of the two-process modes,
beside the baseline, in the same run as the builds.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

from feeds.atom_rss import entry_xml
from feeds.builder import read_entry
from feeds.config import load_config
from feeds.jsonfeed import item_json
from feeds.records import scan_folder
from feeds.sanitize import clean_html

MODES = ("one", "two", "two-serializing")
WARM_UP = 32  # seeds read before the fork (and again after it)


def read_all(seeds: list, config: object, serialize: bool = False) -> int:
    """Read each seed (and serialize its entry in each format), keeping nothing;
    how many gave an entry."""
    count = 0
    for seed in seeds:
        entry = read_entry(seed, config)[0]
        if entry is None:
            continue
        count += 1
        if serialize:
            entry_xml(entry, "atom", "https://example.com/feeds/topics/")
            entry_xml(entry, "rss", "https://example.com/feeds/topics/")
            item_json(entry)
    return count


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in MODES:
        sys.exit(__doc__)
    config = load_config(Path(argv[0]))
    seeds, _ = scan_folder(config.seeds_path, config.globs)
    if argv[1] == "one":
        print(f"one process: {read_all(seeds, config)} entries read from {len(seeds)} files")
        return 0
    serialize = argv[1] == "two-serializing"
    # Before the fork: the parsers and serializers loaded, and the caches they fill
    # on their first inputs, so both processes share them. Warmed with one seed only
    # (which may have no HTML to clean: bleach is imported on first use), the two
    # processes held 58 MiB at 10k seeds; with these, 50.
    read_all(seeds[:WARM_UP], config, serialize)
    clean_html('<p><a href="/x">x</a></p>', base_url="https://example.com/")
    gc.collect()
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            read_all(seeds[0::2], config, serialize)
            status = 0
        finally:
            os._exit(status)
    count = read_all(seeds[1::2], config, serialize)
    _, status = os.waitpid(pid, 0)
    print(f"two processes: {count} entries read here from {len(seeds[1::2])} files, the rest in {pid}")
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
