"""Shared helpers for the civic311 benchmark scripts (not a script itself: run_all skips ``_*``).

The reporting convention every script follows, which `run_all.py` collects into the summary
table of ``bench/RESULTS.md``: one line per goal, on standard output,

    RESULT <name> <value> <goal> <met|missed|info>

* **name** - dotted, unique across scripts (``decode.json_vs_json_loads``);
* **value** - the measured figure with its unit (``2.84x``, ``131.2ms``);
* **goal** - the target with its comparison (``<=5.00x``), or ``-`` for a figure shown
  without a goal;
* **status** - ``met`` or ``missed`` against the goal, ``info`` when there is none.

Use `result` to print one. Everything else in a script's output is free text.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = [
    "Timer",
    "banner",
    "gc_paused",
    "median",
    "paired_ratio",
    "parse_args",
    "result",
    "time_call",
]

#: Every timing loop stops after this many seconds, however many repeats were asked.
DEFAULT_BUDGET = 60.0


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """The options every script takes: ``--quick`` (fewer, smaller runs) and ``--repeats``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats and smaller inputs (a smoke run)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="override the number of timed repeats"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print a profile even when every goal is met"
    )
    return parser.parse_args(argv)


def banner(title: str) -> None:
    """A header naming the script, the interpreter and the machine in one line."""
    print(f"== {title}")
    print(
        f"   python {platform.python_version()} ({platform.python_implementation()}), "
        f"{os.cpu_count()} CPUs, {platform.machine()}, pid {os.getpid()}"
    )


def median(values: list[float]) -> float:
    """The median of *values* (which must not be empty)."""
    return statistics.median(values)


def paired_ratio(ours: list[float], theirs: list[float]) -> float:
    """The median of the ratios of samples taken side by side (same round or block).

    Drift and bursts of load from other processes hit both members of a pair alike, so this is
    steadier than the ratio of the two medians on a shared machine.
    """
    return median([a / b for a, b in zip(ours, theirs, strict=True)])


def result(name: str, value: float, unit: str, goal: float | None, *, lower: bool = True) -> bool:
    """Print a ``RESULT`` line (see the module docstring) and return whether the goal is met.

    *lower* says the goal is an upper bound (``value <= goal``); otherwise a lower bound.
    """
    if goal is None:
        print(f"RESULT {name} {value:.2f}{unit} - info")
        return True
    met = value <= goal if lower else value >= goal
    op = "<=" if lower else ">="
    print(f"RESULT {name} {value:.2f}{unit} {op}{goal:.2f}{unit} {'met' if met else 'missed'}")
    return met


@contextmanager
def gc_paused() -> Iterator[None]:
    """Collect, then keep the cyclic collector off while timing (as timeit does)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def time_call(fn: Callable[[], object]) -> float:
    """Seconds one call of *fn* takes (perf_counter), the collector paused."""
    with gc_paused():
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start


class Timer:
    """Interleaved timing of several contenders: each round runs every contender once, in an
    order that rotates from round to round, so drift (thermal, other processes, a warming
    cache) hits all of them alike. Stops after *repeats* rounds or *budget* seconds."""

    def __init__(self, contenders: dict[str, Callable[[], object]]) -> None:
        self.contenders = contenders
        self.samples: dict[str, list[float]] = {name: [] for name in contenders}

    def run(self, repeats: int, *, budget: float = DEFAULT_BUDGET, warmup: int = 1) -> None:
        names = list(self.contenders)
        for _ in range(warmup):
            for name in names:
                self.contenders[name]()
        deadline = time.monotonic() + budget
        for round_ in range(repeats):
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                self.samples[name].append(time_call(self.contenders[name]))
            if time.monotonic() > deadline and round_ + 1 >= 3:
                print(f"   (time budget of {budget:.0f}s reached after {round_ + 1} rounds)")
                break

    def median(self, name: str) -> float:
        return median(self.samples[name])

    def ratio(self, ours: str, theirs: str) -> float:
        """Median over rounds of ours/theirs (see `paired_ratio`)."""
        return paired_ratio(self.samples[ours], self.samples[theirs])

    def spread(self, name: str) -> str:
        values = self.samples[name]
        return f"min {min(values) * 1e3:.1f} / max {max(values) * 1e3:.1f} ms, n={len(values)}"
