"""Latency measurement: warm-up, then as many runs as a time budget allows, percentiles."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Timing:
    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    first_ms: float

    def to_dict(self) -> dict:
        return asdict(self)


def measure(fn, *, warmup: int = 10, budget_s: float = 2.0, min_runs: int = 20, max_runs: int = 100_000) -> Timing:
    t0 = time.perf_counter()
    fn()
    first = (time.perf_counter() - t0) * 1e3
    for _ in range(warmup):
        fn()
    samples = []
    end = time.perf_counter() + budget_s
    while (len(samples) < min_runs or time.perf_counter() < end) and len(samples) < max_runs:
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
    a = np.asarray(samples)
    return Timing(len(a), float(np.percentile(a, 50)), float(np.percentile(a, 90)), float(np.percentile(a, 99)),
                  float(a.mean()), float(a.std()), first)


def interleaved(calls: dict, rounds: int, *, warmup: int = 2, seed: int = 0) -> dict[str, list[float]]:
    """Seconds per call of each named callable, ``rounds`` rounds, every callable once per
    round in a new (seeded) random order, so whatever slows the machine during a round slows
    them all and ratios taken round by round hold. ``warmup`` untimed calls of each first
    (tracing, weight packing, first allocations)."""
    import random

    for fn in calls.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    order, rng = list(calls), random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            t0 = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - t0)
    return times
