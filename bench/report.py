"""The table bench/run.py prints: one row per figure, with its target and verdict,
and how long each stage took under what load (the machine is shared)."""

from __future__ import annotations

import os
import statistics
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

COLUMNS = ("#", "figure", "seedfeeds", "baseline / nginx", "ratio", "target", "result")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def spread(times: list[float]) -> str:
    """Median (min-max) of durations in seconds, as milliseconds."""
    return f"{statistics.median(times) * 1000:.0f} ({min(times) * 1000:.0f}-{max(times) * 1000:.0f})"


@dataclass
class Table:
    rows: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    facts: dict = field(default_factory=dict)  # figures one stage hands to a later one
    context: list[str] = field(default_factory=list)  # what was measured, under what conditions
    started: float = field(default_factory=time.monotonic)

    def add(self, figure: str, what: str, ours: str, theirs: str, ratio: str, target: str, result: str) -> None:
        self.rows.append((figure, what, ours, theirs, ratio, target, result))

    def stage(self, name: str, run: Callable[[], object]) -> None:
        """Run one stage; a failure becomes a FAIL row and the next stage still runs."""
        began, load = time.monotonic(), os.getloadavg()[0]
        print(f"stage {name} ...", flush=True)
        try:
            run()
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - report it, go on (build_time.measure exits)
            traceback.print_exc()
            self.add(name.split()[0], f"stage {name} failed", f"{type(exc).__name__}: {exc}"[:200], "", "", "",
                     "FAIL")
        took = time.monotonic() - began
        self.stages.append(f"{name}: {took / 60:.1f} min, load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
        print(f"stage {name} done in {took:.0f} s", flush=True)

    def all_passed(self) -> bool:
        return all(row[-1] != "FAIL" for row in self.rows) and not any(n.startswith("run stopped") for n in self.notes)

    def print(self, quick: bool) -> None:
        cells = [COLUMNS] + [tuple(c.replace("|", "/") for c in row) for row in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]

        def line(row: tuple[str, ...]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"

        print(f"\n## seedfeeds issue-5 benchmark ({'quick' if quick else 'full'} run, "
              f"{(time.monotonic() - self.started) / 60:.1f} min, {os.cpu_count()} CPUs; {'; '.join(self.context)})\n")
        print(line(cells[0]))
        print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        for row in cells[1:]:
            print(line(row))
        failed = [f"{row[0]} {row[1]}" for row in self.rows if row[-1] == "FAIL"]
        print(f"\ntargets: {sum(1 for r in self.rows if r[-1].startswith('PASS'))} passed, {len(failed)} failed")
        for name in failed:
            print(f"  FAIL: {name}")
        if self.notes:
            print("\nnotes:")
            for note in self.notes:
                print(f"  - {note}")
        print("\nstages:")
        for stage in self.stages:
            print(f"  - {stage}")
