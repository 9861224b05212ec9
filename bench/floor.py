"""The least any cold build can take, for figure 1's two targets to be read against.

    python bench/floor.py CONFIG one   # one process reads every seed
    python bench/floor.py CONFIG two   # this process and a fork read half each

Both modes only read: each seed file is parsed, checked and sanitized into an
entry (`feeds.builder.read_entry`, what every build does first), and the entry
is dropped at once. Nothing is kept, ledgered, laid out, rendered or written.

- `one`: the wall time of reading alone in one process. A single-process build
  cannot be faster than this, whatever its rendering costs.
- `two`: the memory of reading alone on both cores, in its most frugal form:
  everything the reading imports (bleach included) is loaded and frozen before
  the fork, so both processes share it until they write to it. A build that
  reads on both cores holds at least this much, plus its entries, at once.

run.py times `one` and samples the anonymous memory of `two`'s processes, beside
the baseline, in the same run as the builds.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

from feeds.builder import read_entry
from feeds.config import load_config
from feeds.records import scan_folder


def read_all(seeds: list, config: object) -> int:
    """Read each seed, keeping nothing; how many gave an entry."""
    return sum(read_entry(seed, config)[0] is not None for seed in seeds)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("one", "two"):
        sys.exit(__doc__)
    config = load_config(Path(argv[0]))
    seeds, _ = scan_folder(config.seeds_path, config.globs)
    if argv[1] == "one":
        print(f"one process: {read_all(seeds, config)} entries read from {len(seeds)} files")
        return 0
    read_all(seeds[:1], config)  # every lazy import (bleach, the parsers) done before the fork
    gc.collect()
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            read_all(seeds[0::2], config)
            status = 0
        finally:
            os._exit(status)
    count = read_all(seeds[1::2], config)
    _, status = os.waitpid(pid, 0)
    print(f"two processes: {count} entries read here from {len(seeds[1::2])} files, the rest in {pid}")
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
