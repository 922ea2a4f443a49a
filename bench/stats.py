"""
Statistics of repeated measurements, shared by every benchmark section.

A figure is measured in several rounds and reported as its median with the
lowest and highest round (``{"median", "min", "max", "rounds"}``), never as
the best round: the spread says how much the machine moved the figure.  A
ratio against a baseline is computed round by round (candidate and
baseline of the same round ran next to each other, under the same noise),
then summarised the same way.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

Spread = dict[str, Any]


def spread(samples: Sequence[float], scale: float = 1.0, digits: int = 1) -> Spread:
    """Median, min and max of ``samples`` divided by ``scale``, rounded to ``digits``."""
    if not samples:
        raise ValueError("no samples")
    values = [value / scale for value in samples]
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "rounds": len(values),
    }


def ratios(candidate: Sequence[float], baseline: Sequence[float], digits: int = 3) -> Spread:
    """The spread of ``candidate[i] / baseline[i]`` over rounds."""
    if len(candidate) != len(baseline):
        raise ValueError("one baseline sample per candidate sample")
    return spread([c / b for c, b in zip(candidate, baseline, strict=True)], digits=digits)


def median(value: Spread | float) -> float:
    """The median of a spread (a plain number is its own median)."""
    return float(value["median"]) if isinstance(value, dict) else float(value)


def interleaved_rates(
    candidates: dict[str, Callable[[], int]], rounds: int, min_time: float
) -> dict[str, list[float]]:
    """
    Units per second of each candidate in each of ``rounds`` rounds; within
    a round the candidates run one after the other, each at least once and
    for at least ``min_time`` seconds, so that a slow moment of the machine falls on all
    of them alike.
    """
    rates: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, run in candidates.items():
            done = 0
            start = time.perf_counter()
            while True:  # at least once
                done += run()
                elapsed = time.perf_counter() - start
                if elapsed >= min_time:
                    break
            rates[name].append(done / max(elapsed, 1e-9))
    return rates


async def repeat(rounds: int, measure: Callable[[], Awaitable[T]]) -> list[T]:
    """Run an asynchronous measurement ``rounds`` times, one after the other."""
    return [await measure() for _ in range(rounds)]
