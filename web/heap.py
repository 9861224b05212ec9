"""What the serving side does with its heap after a new snapshot comes in.

A snapshot lives until the next change and is then dropped whole: two things
about CPython and glibc matter for a process that holds one.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc


def out_of_collector_sight() -> None:
    """Move every object alive now out of the cyclic collector's sight (`gc.freeze`).

    With 10,000 entries a full collection over a snapshot holds the GIL for
    ~100 ms: every request waits. Snapshots hold no reference cycles, so
    refcounting still frees each one when it is replaced; the collector keeps
    watching only what is allocated after."""
    gc.freeze()


def _malloc_trim() -> ctypes._CFuncPtr | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None


_TRIM = _malloc_trim()


def return_free_memory() -> None:
    """Hand the pages of a dropped snapshot back to the system (glibc's `malloc_trim`).

    glibc keeps freed memory for reuse, so after a full rebuild the process
    would go on holding both the old and the new snapshot's worth: at 10,000
    seeds, 865 MiB instead of 484. Trimming takes ~25 ms then, with the GIL
    released (ctypes releases it for the call); a no-op where there is no glibc."""
    if _TRIM is not None:
        _TRIM(0)


def release_in_slices(doomed: list, size: int = 256) -> None:
    """Drop the objects in `doomed` (a list nothing else refers to), `size` at a time
    from its end, so that freeing a whole snapshot never holds the GIL for long.

    Freeing is C code that keeps the GIL until the last object it reaches is gone:
    dropping a replaced snapshot of 10,000 entries in one go held it 14-25 ms, and
    every request waited. Between two slices, another thread can take the GIL. The
    caller puts what holds other objects last in the list (freed first), and drops
    its own references before the call."""
    while doomed:
        del doomed[-size:]
