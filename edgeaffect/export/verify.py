"""Run an export on held-out data and judge it against the Keras model it came from, the
way the model's task says (``edgeaffect.contract.tasks``): decisions, the task's metric,
and element-wise differences stated so that they hold on any CPU."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from edgeaffect.errors import VerificationError
from edgeaffect.export.formats import ExportFormat


@dataclass
class Verification:
    format: str
    runtime: str
    kernels: str  # which kernel set ran it (LiteRT: xnnpack or reference)
    task: str
    n: int
    max_abs_diff: float
    p95_abs_diff: float
    max_diff_steps: float | None  # max |diff| in the int8 output's quantization steps, when it has one
    agreement: float  # decisions (class, band, yes / no) equal to the reference's
    metric_name: str
    metric: float
    reference_metric: float  # the Keras model the export came from (the QAT model for int8)
    float_metric: float  # the trained float model
    bounds: str
    failures: list[str] = field(default_factory=list)
    # False where a kernel set is recorded but does not decide (see ``gates``).
    gating: bool = True

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        d = {**asdict(self), "passed": self.passed, self.metric_name: self.metric}
        if self.task == "classification":
            d["top1_agreement"] = self.agreement
        return d


def run_batched(runner, x: dict, batch: int = 256) -> np.ndarray:
    n = len(next(iter(x.values())))
    return np.concatenate([runner.run({k: v[i : i + batch] for k, v in x.items()}) for i in range(0, n, batch)])


def judge(task, fmt: ExportFormat, outputs: np.ndarray, reference: np.ndarray, float_outputs: np.ndarray,
          targets: np.ndarray, *, runtime: str, kernels: str = "default", output_scale: float = 0.0) -> Verification:
    """Compare ``outputs`` of an export with the Keras ``reference`` it was made from (the part
    the task judges: ``task.judged``)."""
    outputs, reference, float_outputs = (task.judged(o) for o in (outputs, reference, float_outputs))
    n = len(targets)
    diff = np.abs(np.asarray(outputs, np.float64) - np.asarray(reference, np.float64)).reshape(n, -1)
    max_abs, p95 = float(diff.max()), float(np.percentile(diff, 95))
    agree = float((task.decisions(outputs) == task.decisions(reference)).mean())
    value, ref_value, float_value = (task.metric(o, targets) for o in (outputs, reference, float_outputs))
    b = task.bounds(fmt.precision)
    failures = []
    if b.max_abs is not None and max_abs > b.max_abs:
        failures.append(f"max |diff| {max_abs:.3g} > {b.max_abs:g}")
    if b.p95_abs is not None and p95 > b.p95_abs:
        failures.append(f"p95 |diff| {p95:.3g} > {b.p95_abs:g}")
    # A test set of n samples cannot resolve less than one sample: on small sets one
    # flipped near-tie is allowed, so it is not called a regression.
    if b.agreement is not None and agree < min(b.agreement, 1.0 - 1.0 / n) - 1e-9:
        failures.append(f"decisions agree {agree:.4f} < {b.agreement} (or all but one of {n})")
    checks = [("its source model", ref_value, b.max_metric_drop, reference)]
    if b.max_quantization_drop is not None:
        checks.append(("the float model", float_value, b.max_quantization_drop, float_outputs))
    for what, against, bound, their_outputs in checks:
        one_sample = task.metric_resolution(n, their_outputs, targets)
        drop, allowed = task.metric_drop(value, against), max(bound, one_sample)
        if drop > allowed + 1e-9:
            failures.append(f"{task.metric_name} {value:.4f} is {drop:.4f} worse than {what} ({against:.4f}; "
                            f"bound {allowed:.4g})")
    steps = max_abs / output_scale if output_scale else None
    return Verification(fmt.name, runtime, kernels, task.kind, n, max_abs, p95, steps, agree, task.metric_name, value,
                        ref_value, float_value, b.describe(), failures)


def gates(fmt: ExportFormat, kernels: str) -> bool:
    """Whether a kernel set's verdict decides the export. LiteRT's reference kernels decide
    for float formats; for int8 they are recorded only: their int8 SUM is wrong (SpeechNet's
    capsule routing: the optimised kernels give the exact requantized sum, the reference one
    -1 for every output, so decisions agree on 14 %; the one-op file that shows it is built in
    tests/test_litert_reference_kernels.py), and elsewhere they round differently by a step
    or two, which an int8 layer norm amplifies. They would judge the reference implementation,
    not the export. A device runs XNNPACK or the built-in kernels."""
    return not (kernels == "reference" and fmt.precision == "int8")


def refuse_failed(results, what: str = "") -> None:
    """Nothing is written when a gating verification failed: the error names each bound."""
    failed = [v for v in results if v.gating and not v.passed]
    if failed:
        where = f" ({what})" if what else ""
        raise VerificationError(f"export verification failed{where}, nothing written: " + "; ".join(
            f"{v.format} ({v.kernels} kernels): {', '.join(v.failures)}" for v in failed))
