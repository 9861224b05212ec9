"""After a swap the serving side hands a dropped snapshot's memory back to the system."""

from __future__ import annotations

import os

from web.heap import return_free_memory


def rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def test_freed_memory_between_live_objects_goes_back_to_the_system():
    """Like a replaced snapshot: 200 MiB of documents dropped, a few kept, so the free
    space sits between live blocks where glibc's own trimming (top of heap only) cannot
    reach it. return_free_memory() gives it back."""
    documents = [bytes([n % 251]) * 40_000 for n in range(5_000)]  # 40 kB each: malloc's heap, not mmap
    kept = documents[::50]
    del documents
    held = rss_mib()
    return_free_memory()
    assert held - rss_mib() > 100, (held, rss_mib())
    assert all(len(doc) == 40_000 for doc in kept)
