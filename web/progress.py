"""Progress bars for long commands (`build`, `check`): on stderr when it is a
terminal, and nothing at all when it is not (a pipe, a file, CI)."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

import click

from feeds.cold import QUIET, Steps

T = TypeVar("T")
REDRAWS = 200  # at most this many redraws per bar, however long: a redraw costs ~50 µs


@contextmanager
def bar(label: str, length: int) -> Iterator[Steps]:
    """A progress bar of `length` steps, advanced with `.update(n)`."""
    if not sys.stderr.isatty():
        yield QUIET
        return
    with click.progressbar(length=length, label=label, file=sys.stderr, show_pos=True,
                           show_percent=True, update_min_steps=max(1, length // REDRAWS)) as shown:
        yield shown


def track(items: Iterable[T], label: str) -> Iterator[T]:
    """The items, one by one, advancing a bar as each is taken."""
    items = list(items)
    with bar(label, len(items)) as shown:
        for item in items:
            yield item
            shown.update(1)
