"""Run an export on held-out data and compare it with the Keras model it came from."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgeaffect.export.formats import ExportFormat
from edgeaffect.runtime import load_runner


@dataclass
class Verification:
    format: str
    runtime: str
    n: int
    max_abs_diff: float
    top1_agreement: float
    accuracy: float
    reference_accuracy: float  # the Keras model the export came from
    float_accuracy: float  # the trained float model
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def verify(fmt: ExportFormat, path, reference_probs: np.ndarray, float_probs: np.ndarray, x: dict,
           labels: np.ndarray, batch: int = 256) -> Verification:
    runner = load_runner(path, fmt.runtime)
    n = len(labels)
    probs = np.concatenate([runner.run({k: v[i : i + batch] for k, v in x.items()}) for i in range(0, n, batch)])
    max_abs = float(np.abs(probs - reference_probs).max())
    agree = float((probs.argmax(1) == reference_probs.argmax(1)).mean())
    acc = float((probs.argmax(1) == labels).mean())
    float_acc = float((float_probs.argmax(1) == labels).mean())
    b, failures = fmt.bounds, []
    if max_abs > b.max_abs:
        failures.append(f"max |diff| {max_abs:.3g} > {b.max_abs:g}")
    if agree < b.agreement:
        failures.append(f"top-1 agreement {agree:.4f} < {b.agreement}")
    # A test set of n samples cannot resolve a drop below one sample (1/n): on small sets
    # the bound is one sample, so a single flipped near-tie is not called a regression.
    allowed = max(b.max_accuracy_drop, 1.0 / n)
    if float_acc - acc > allowed + 1e-9:
        failures.append(f"accuracy {acc:.4f} is {float_acc - acc:.4f} below float {float_acc:.4f} "
                        f"(bound {allowed:.4f}: {b.max_accuracy_drop}, or one of {n} samples)")
    ref_acc = float((reference_probs.argmax(1) == labels).mean())
    return Verification(fmt.name, runner.package if hasattr(runner, "package") else fmt.runtime, n, max_abs, agree,
                        acc, ref_acc, float_acc, failures)
