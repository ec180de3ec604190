"""The latency regression gate: a candidate model against a baseline measured in the same
run, interleaved, so that whatever slows the machine down slows both.

Protocol: ``pairs`` rounds; in each, a block of ``block`` invokes of one model, then a block
of the other (the order alternates AB, BA, AB, ... so neither always runs second). A
block's time is its fastest invoke (a preempted invoke is noise, never the model's cost).
By default the block is sized from the warm-up: as many invokes as fit in about 50 ms,
5 to 20. On a loaded machine the fastest of 5 often still holds a slowed invoke, and
the rounds' ratios spread; the fastest of 20 finds a clean one far more often (SpeechNet
int8, 2.9 ms an invoke, both cores loaded by a busy loop and a bursty matrix product:
the interval's half-width median 2.0 % / max 5.5 % with 5, 1.3 % / 2.2 % with 20, over 8
comparisons each, `python -m edgeaffect.measure.gate BUNDLE FORMAT --blocks 5,20`).
The statistic is each round's candidate / baseline: their median, with a confidence interval
(below; the same timings always give the same verdict).

Two runners of one file are not equally fast: for as long as they live, one is a few percent
slower than the other (their buffers' placement; 13 % on a 2-core machine under load), and
every round shares that offset. Resampling rounds then gave a 99 % interval that excluded
1.0 for a file against a copy of itself in 7 of 10 comparisons (`make bench` printed 1.039,
interval 1.032-1.046). So both runners are loaded afresh every ``SEGMENT`` rounds, and the
interval is taken over segments, not rounds: each segment's median ratio is one draw of the
pair's offset, and the interval is the distribution-free one of the draws' median
(``segment_estimate``). The draws are heavy-tailed: most pairs within 1 %, now and then one
15-25 % apart. A percentile bootstrap over 5-round segments covered 1.0 in only 4 of 6 A/A
comparisons on a slow CI machine (too narrow over few segments), and Student's t over the
draws' mean was dragged to +-4.5 % by the odd far pair; the order-statistic interval is exact
for an A/A comparison whatever the tail (simulated runners: ``tests/test_latency_gate.py``;
real ones: ``python -m edgeaffect.measure.gate EXPORT tflite-fp32 --blocks 20 --runs 10
[--one-pair]`` prints how often the interval covers 1.0 and how wide it is). A model whose
loading takes more than 5 % of the time budget keeps one pair of runners (the line says so).

Verdict: a regression when the interval's lower end exceeds ``1 + tolerance``, i.e. the
candidate is slower by more than the tolerance with that confidence. With the default
tolerance of 10 %, a 20 % slowdown fails once the interval is narrower than +-5 % (``sharp``)
(it is about +-1 % on a quiet machine and a few % on a busy one), and an identical model
passes unless noise makes one of two interleaved copies look 10 % slower at the lower end
of a 99 % interval.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

TOLERANCE = 0.10
CONFIDENCE = 0.99


@dataclass
class Comparison:
    ratio: float  # median of candidate / baseline over rounds
    low: float  # confidence interval of that median
    high: float
    pairs: int
    block: int
    baseline_ms: float  # median over rounds of the baseline's block time
    candidate_ms: float
    tolerance: float
    confidence: float
    segments: int = 0  # pairs of fresh runners the rounds ran in (0: one pair; rounds resampled)

    @property
    def regressed(self) -> bool:
        return self.low > 1 + self.tolerance

    @property
    def sharp(self) -> bool:
        """Narrow enough to catch a slowdown of twice the tolerance (20 % by default): its
        lower end then lies above ``1 + tolerance`` with room for the estimate's own error."""
        return (self.high - self.low) / 2 < self.tolerance / 2

    @property
    def line(self) -> str:
        warn = "" if self.sharp else "; interval too wide to catch a 2x-tolerance slowdown: too noisy here"
        how = f"{self.segments} pairs of fresh runners resampled" if self.segments else "one pair of runners"
        return (f"candidate / baseline = {self.ratio:.3f} ({self.confidence:.0%} interval {self.low:.3f}-"
                f"{self.high:.3f}; {self.pairs} interleaved pairs of {self.block} invokes, {how}; "
                f"{self.candidate_ms:.4f} vs {self.baseline_ms:.4f} ms{warn})")

    def to_dict(self) -> dict:
        return {**asdict(self), "regressed": self.regressed}


def median_interval(ratios: np.ndarray, confidence: float = CONFIDENCE, resamples: int = 4000,
                    seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the median."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(ratios), (resamples, len(ratios)))
    medians = np.median(ratios[idx], axis=1)
    a = (1 - confidence) / 2
    return float(np.quantile(medians, a)), float(np.quantile(medians, 1 - a))


BLOCK_S = 0.05  # a block's target length when the block is sized automatically
BLOCK_RANGE = (5, 20)


def auto_block(invoke_s: float) -> int:
    """Invokes per block: as many as fit in ``BLOCK_S``, within ``BLOCK_RANGE``."""
    lo, hi = BLOCK_RANGE
    return int(min(hi, max(lo, round(BLOCK_S / max(invoke_s, 1e-9)))))


def median_order_interval(draws: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Distribution-free interval of a median: the k-th smallest and k-th largest draws, k the
    largest with P(Binomial(n, 1/2) < k) <= (1 - confidence) / 2. It needs no shape: two runners
    of one file are mostly within 1 % of each other, and now and then 15-25 % apart (a runner
    whose buffers landed badly), a heavy tail that a normal-theory interval is dragged wide by
    and a bootstrap over few draws is too narrow for. Too few draws for the confidence (fewer
    than 8 at 99 %): the interval is unbounded."""
    x = np.sort(np.asarray(draws, dtype=float))
    n, alpha = len(x), (1 - confidence) / 2
    k, below = 0, 0.0
    while k < n // 2 and below + math.comb(n, k) / 2 ** n <= alpha:
        below += math.comb(n, k) / 2 ** n
        k += 1
    if k == 0:
        return 0.0, float("inf")
    return float(x[k - 1]), float(x[n - k])


def segment_estimate(segments: list[np.ndarray], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Ratio and interval from rounds grouped by the pair of runners they shared: each segment's
    median ratio is one draw of what that pair's placement costs (rounds inside a segment share
    it, so they are never separate draws); the ratio is the median draw and the interval
    ``median_order_interval`` over the draws. For a file against its copy the two runners are
    exchangeable, so the draws' median is exactly 1 and the interval covers it at its confidence."""
    draws = np.array([np.median(s) for s in segments if len(s)])
    low, high = median_order_interval(draws, confidence)
    return float(np.median(draws)), low, high


def segment_interval(segments: list[np.ndarray], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The interval of ``segment_estimate``."""
    return segment_estimate(segments, confidence)[1:]


SEGMENT = 3  # rounds per pair of runners when they are renewed (``compare(renew=...)``)


def compare(run_baseline, run_candidate, *, pairs: int = 60, block: int | None = None, budget_s: float | None = None,
            min_pairs: int = 30, warmup: int = 10, tolerance: float = TOLERANCE,
            confidence: float = CONFIDENCE, extend: float = 4.0, renew=None,
            clock=time.perf_counter) -> Comparison:
    """Interleaved paired timing of two callables (see the module's docstring): ``pairs``
    rounds, or with ``budget_s`` rounds until that much time has passed (at least
    ``min_pairs``, at most 10 x ``pairs``); then, while the interval is too wide to catch
    a slowdown of twice the tolerance (``Comparison.sharp``), more rounds, up to ``extend`` x
    ``budget_s`` in all.
    ``block=None``: sized from the warm-up (``auto_block``). ``renew() -> (run_baseline,
    run_candidate)``: fresh runners every ``SEGMENT`` rounds, the interval then resampling
    segments (``segment_estimate``): a file against a copy of itself covers 1.0. ``clock``: what
    times an invoke (the tests pass a simulated one)."""
    warm = []
    for _ in range(warmup):
        t = clock()
        run_baseline()
        warm.append(clock() - t)
        run_candidate()
    if block is None:
        block = auto_block(float(np.median(warm))) if warm else BLOCK_RANGE[0]
    runners = [run_baseline, run_candidate]

    def best_of(fn) -> float:
        best = float("inf")
        for _ in range(block):
            t = clock()
            fn()
            best = min(best, clock() - t)
        return best

    base, cand = [], []

    def one_round() -> None:
        if renew is not None and base and len(base) % SEGMENT == 0:
            runners[:] = renew()
            for _ in range(3):  # a fresh runner's first invokes are not its cost
                runners[0]()
                runners[1]()
        if len(base) % 2 == 0:  # AB, BA, AB, ...
            b = best_of(runners[0])
            c = best_of(runners[1])
        else:
            c = best_of(runners[1])
            b = best_of(runners[0])
        base.append(b)
        cand.append(c)

    def estimate() -> tuple[float, float, float]:
        ratios = np.asarray(cand) / np.asarray(base)
        if renew is None:
            return (float(np.median(ratios)), *median_interval(ratios, confidence))
        return segment_estimate([ratios[i:i + SEGMENT] for i in range(0, len(ratios), SEGMENT)], confidence)

    end = clock() + budget_s if budget_s else None
    limit = pairs * 10 if budget_s else pairs
    while len(base) < limit and (len(base) < min_pairs or (end is None and len(base) < pairs)
                                 or (end is not None and clock() < end)):
        one_round()
    ratio, low, high = estimate()
    if budget_s:
        stop = end + budget_s * (extend - 1)
        while (high - low) / 2 >= tolerance / 2 and clock() < stop:
            for _ in range(10):
                one_round()
            ratio, low, high = estimate()
    base_a, cand_a = np.asarray(base), np.asarray(cand)
    return Comparison(ratio, low, high, len(base_a), block, float(np.median(base_a)) * 1e3,
                      float(np.median(cand_a)) * 1e3, tolerance, confidence,
                      -(-len(base_a) // SEGMENT) if renew is not None else 0)


# --------------------------------------------------------------------------- baselines on disk

def baseline_for(baseline_root: Path, model: str, fmt: str) -> Path | None:
    """The baseline's file for a model and format: ``<root>/<model>/`` holds a saved export."""
    import json

    folder = Path(baseline_root) / model
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return None
    entry = json.loads(manifest.read_text()).get("files", {}).get(fmt)
    if not entry or not (folder / entry["file"]).is_file():
        return None
    return folder / entry["file"]


def _model_of(export_dir: Path) -> str:
    import json

    from edgeaffect.device.bundle import export_label

    return export_label(json.loads((Path(export_dir) / "manifest.json").read_text()))


def has_baseline(baseline_root: Path, export_dir: Path) -> bool:
    return (Path(baseline_root) / _model_of(export_dir) / "manifest.json").is_file()


def save_baseline(export_dir: Path, baseline_root: Path) -> Path:
    """Copies an export folder to ``<root>/<model>/`` (replacing the previous baseline)."""
    from edgeaffect.io import atomic_dir

    dest = Path(baseline_root) / _model_of(export_dir)
    with atomic_dir(dest) as tmp:
        for f in Path(export_dir).iterdir():
            if f.is_file():
                shutil.copy2(f, tmp / f.name)
    return dest


def compare_files(baseline: Path, candidate: Path, runtime: str, *, threads: int = 1, budget_s: float = 2.0,
                  tolerance: float = TOLERANCE, block: int | None = None, renew: bool = True) -> Comparison:
    """Two model files of the same format, each in its own runner, on the same random input;
    ``renew``: both runners loaded afresh every ``SEGMENT`` rounds (see ``compare``)."""
    from edgeaffect.measure.profile import random_feeds
    from edgeaffect.runtime import load_runner

    def runners():
        rb = load_runner(baseline, runtime, threads=threads)
        rc = load_runner(candidate, runtime, threads=threads)
        fb, fc = random_feeds(rb.inputs), random_feeds(rc.inputs)
        return (lambda: rb.run(fb)), (lambda: rc.run(fc))

    runners()  # the first load also imports the runtime: not what a renewal costs
    t = time.perf_counter()
    first = runners()
    # renewing costs two loads a segment: worth it unless loading is a real share of the budget
    # (a large model; its interval then resamples rounds, and says so in the line)
    renew = renew and time.perf_counter() - t < 0.05 * budget_s
    return compare(*first, budget_s=budget_s, tolerance=tolerance, block=block, renew=runners if renew else None)


# --------------------------------------------------------------------------- block-size study

def block_study(export_dir: Path, fmt: str, blocks: list[int], runs: int = 8, budget_s: float = 2.0,
                threads: int = 1, renew: bool = True) -> dict[int, list[Comparison]]:
    """A bundle's file against a copy of itself, ``runs`` comparisons per block size (the
    sizes in turn): each comparison (its interval's half-width decides whether a 20 %
    slowdown can be caught; whether it covers 1.0 is the A/A check)."""
    import json
    import tempfile

    entry = json.loads((Path(export_dir) / "manifest.json").read_text())["files"][fmt]
    source = Path(export_dir) / entry["file"]
    out: dict[int, list[Comparison]] = {b: [] for b in blocks}
    with tempfile.TemporaryDirectory(prefix="ea-gate-") as tmp:
        copy = Path(tmp) / ("baseline" + source.suffix)
        shutil.copy(source, copy)
        for _ in range(runs):
            for b in blocks:
                out[b].append(compare_files(copy, source, entry["runtime"], threads=threads, budget_s=budget_s,
                                            block=b, renew=renew))
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from edgeaffect.machine import machine

    p = argparse.ArgumentParser(prog="python -m edgeaffect.measure.gate",
                                description="The gate's interval width by block size: a file against a copy of itself.")
    p.add_argument("bundle", type=Path, help="an export folder or bundle")
    p.add_argument("format", help="a format the bundle holds, e.g. tflite-int8")
    p.add_argument("--blocks", default="5,20", help="block sizes to compare, in turn")
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--one-pair", action="store_true", help="keep one pair of runners (no renewal), as before")
    args = p.parse_args(argv)
    try:
        blocks = [int(b) for b in args.blocks.split(",")]
        study = block_study(args.bundle, args.format, blocks, args.runs, renew=not args.one_pair)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"error: cannot study {args.bundle} {args.format}: {exc!s} (give an export folder and a format "
              "its manifest lists, and blocks like 5,20)", file=sys.stderr)
        return 2
    how = "one pair of runners" if args.one_pair else f"fresh runners every {SEGMENT} rounds"
    print(f"machine: {machine()}; {args.runs} comparisons per block size, one thread, {how}")
    for b, cs in study.items():
        widths = [(c.high - c.low) / 2 for c in cs]
        covered = sum(c.low <= 1.0 <= c.high for c in cs)
        print(f"block {b:3d}: interval half-width median {np.median(widths):.1%}, max {max(widths):.1%}; "
              f"the interval covers 1.0 in {covered} of {len(cs)} (a file against its copy)")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
