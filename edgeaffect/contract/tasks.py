"""Task kinds: what a model's output means, how it is scored, how an export of it is
judged, and what a prediction prints. NumPy only (the device side uses it too).

A family names its task; shared code (training reports, export verification, ``predict``,
the demo) asks the task and never the family's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Bounds:
    """What an export must meet against the Keras model it came from, on held-out data.

    max_abs: every output element within this (float formats; the kernels differ only by
        rounding, so a raw maximum is stable);
    p95_abs: the 95th percentile of |difference| (quantized formats: a near-tie can move one
        output by many quantization steps on one CPU's kernels and not on another's, so a
        raw maximum would judge the CPU, not the export; the maximum is still recorded);
    agreement: fraction of samples with the same decision (class, band, yes / no);
    max_metric_drop: how far the task's metric may fall below the Keras model the file was
        converted from (the float model, or the QAT model for int8), in the metric's own
        units (accuracy, F1, or score points for a regressor's MAE): the conversion's cost;
    max_quantization_drop: int8 only: how far it may fall below the *float* model: what
        quantization (QAT included) costs the user, a looser bound that catches a broken QAT.
    Each metric bound is at least what one sample can move (``Task.metric_resolution``).
    """

    max_abs: float | None = None
    p95_abs: float | None = None
    agreement: float | None = None
    max_metric_drop: float = 0.0
    max_quantization_drop: float | None = None

    def describe(self) -> str:
        parts = []
        if self.max_abs is not None:
            parts.append(f"max |diff| <= {self.max_abs:g}")
        if self.p95_abs is not None:
            parts.append(f"p95 |diff| <= {self.p95_abs:g}")
        if self.agreement is not None:
            parts.append(f"decisions agree >= {self.agreement:g}")
        parts.append(f"metric drop vs its source <= {self.max_metric_drop:g}")
        if self.max_quantization_drop is not None:
            parts.append(f"vs float <= {self.max_quantization_drop:g}")
        return ", ".join(parts)


@dataclass
class Prediction:
    """One recording's result: the decision shown to a person, the values behind it, and
    the per-segment outputs it was combined from."""

    decision: str
    values: dict[str, float]
    per_segment: np.ndarray
    kind: str = "classification"
    value_name: str = "probabilities"
    extra: dict = field(default_factory=dict)

    # The names the classifiers' callers have always used.
    @property
    def label(self) -> str:
        return self.decision

    @property
    def probabilities(self) -> dict[str, float]:
        return self.values

    def to_dict(self) -> dict:
        return {"kind": self.kind, "decision": self.decision, "label": self.decision, self.value_name: self.values,
                "per_segment": np.round(np.asarray(self.per_segment, np.float64), 6).tolist(), **self.extra}


class Task:
    """Base: subclasses say how outputs become decisions and a metric."""

    kind = "task"
    metric_name = "metric"
    higher_is_better = True
    loss = "mse"
    # (low, high) the model's output must be able to reach, whatever the calibration samples
    # gave (a score scale's ends); None: the calibration decides
    output_range: tuple[float, float] | None = None
    table_figures: tuple[str, ...] = ()  # the figures a table of runs shows (an ablation's), per run

    def __init__(self, bounds: dict[str, Bounds]):
        self._bounds = bounds

    # ----------------------------------------------------------------- decisions and metrics
    def decisions(self, outputs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def metric(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        raise NotImplementedError

    def report(self, targets: np.ndarray, outputs: np.ndarray, labels: tuple[str, ...]) -> dict:
        """Training / evaluation report: the metric and its companions."""
        raise NotImplementedError

    def summary_keys(self) -> tuple[str, ...]:
        """The report's keys a run keeps in ``run.json`` under ``test``."""
        raise NotImplementedError

    def judged(self, outputs: np.ndarray) -> np.ndarray:
        """The part of the model's outputs an export's verification compares (all of it)."""
        return np.asarray(outputs)

    def training_targets(self, targets: np.ndarray, n_outputs: int) -> np.ndarray:
        """What the Keras loss is fed for these targets."""
        return np.asarray(targets, np.float32).reshape(len(targets), -1)

    def metric_resolution(self, n: int, outputs=None, targets=None) -> float:
        """What one sample can move the metric (0 for a continuous metric): a bound tighter
        than that would call one flipped near-tie a regression. With ``outputs`` and
        ``targets``, a task whose metric depends on the counts (F1) says it for this set."""
        return 0.0

    # ----------------------------------------------------------------- verification
    def bounds(self, precision: str) -> Bounds:
        if precision not in self._bounds:
            raise KeyError(f"{self.kind} has no verification bounds for precision '{precision}'")
        return self._bounds[precision]

    def metric_drop(self, value: float, float_value: float) -> float:
        """How much worse ``value`` is than the float model's (positive: worse)."""
        return float_value - value if self.higher_is_better else value - float_value

    # ----------------------------------------------------------------- one recording
    def combine(self, outputs: np.ndarray) -> np.ndarray:
        """A recording's output from its segments' outputs: their mean."""
        return np.asarray(outputs, np.float32).mean(axis=0)

    def prediction(self, combined: np.ndarray, per_segment: np.ndarray, labels) -> Prediction:
        raise NotImplementedError

    def describe(self, p: Prediction) -> list[str]:
        """Lines ``edgeaffect predict`` prints."""
        raise NotImplementedError


class ClassificationTask(Task):
    """One score per class; the decision is the highest. Metric: accuracy."""

    kind = "classification"
    metric_name = "accuracy"
    loss = "categorical_crossentropy"
    # what a table of runs shows (ablations): macro means over the classes, as the papers' tables
    table_figures = ("accuracy", "macro_precision", "macro_recall", "macro_f1")

    def __init__(self, output_name: str = "probabilities", bounds: dict[str, Bounds] | None = None):
        super().__init__(bounds or CLASSIFIER_BOUNDS)
        self.output_name = output_name

    def decisions(self, outputs):
        return np.asarray(outputs).argmax(axis=1)

    def metric(self, outputs, targets):
        return float((self.decisions(outputs) == np.asarray(targets)).mean())

    def report(self, targets, outputs, labels):
        from edgeaffect.contract.metrics import classification_report

        return classification_report(np.asarray(targets), self.decisions(outputs), tuple(labels))

    def summary_keys(self):
        return ("n", "accuracy", "macro_precision", "macro_recall", "macro_f1")

    def training_targets(self, targets, n_outputs):
        return np.eye(n_outputs, dtype=np.float32)[np.asarray(targets)]

    def metric_resolution(self, n, outputs=None, targets=None):
        return 1.0 / max(1, n)

    def prediction(self, combined, per_segment, labels):
        values = dict(zip(labels, map(float, combined)))
        return Prediction(labels[int(np.argmax(combined))], values, per_segment, self.kind, self.output_name)

    def describe(self, p):
        lines = [p.decision]
        for lab, v in sorted(p.values.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {lab:10s} {v:.3f} {'#' * int(round(v * 40))}")
        return lines


class RegressionTask(Task):
    """One score in [low, high]; the decision is the band it falls in. Metric: MAE, in the
    score's own units (lower is better)."""

    kind = "regression"
    metric_name = "mae"
    higher_is_better = False
    table_figures = ("mae", "rmse")  # errors in the score's own units
    loss = "mse"

    def __init__(self, score_name: str, low: float, high: float, bands: tuple[tuple[str, float], ...] = (),
                 bounds: dict[str, Bounds] | None = None):
        """``bands``: (name, lowest score of the band) in increasing order."""
        span = float(high - low)
        super().__init__(bounds or regression_bounds(span))
        self.score_name, self.low, self.high, self.bands = score_name, float(low), float(high), tuple(bands)
        self.output_name = score_name
        self.output_range = (self.low, self.high)

    def band_index(self, scores: np.ndarray) -> np.ndarray:
        if not self.bands:
            return np.zeros(len(scores), np.int64)
        edges = np.asarray([b[1] for b in self.bands[1:]], np.float64)
        return np.searchsorted(edges, np.asarray(scores, np.float64).reshape(-1), side="right")

    def decisions(self, outputs):
        return self.band_index(np.asarray(outputs).reshape(len(outputs), -1)[:, 0])

    def metric(self, outputs, targets):
        return float(np.abs(np.asarray(outputs).reshape(-1) - np.asarray(targets).reshape(-1)).mean())

    def report(self, targets, outputs, labels):
        y = np.asarray(targets, np.float64).reshape(-1)
        p = np.asarray(outputs, np.float64).reshape(-1)
        err = p - y
        mean_baseline = float(np.abs(y - y.mean()).mean())
        return {"n": int(y.size), "mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
                "bias": float(err.mean()), "band_agreement": float((self.band_index(p) == self.band_index(y)).mean()),
                "mae_of_predicting_the_test_mean": mean_baseline, "score": self.score_name}

    def summary_keys(self):
        return ("n", "mae", "rmse", "bias", "band_agreement")

    def band_name(self, score: float) -> str:
        return self.bands[int(self.band_index(np.asarray([score]))[0])][0] if self.bands else ""

    def prediction(self, combined, per_segment, labels):
        score = float(np.clip(np.asarray(combined).reshape(-1)[0], self.low, self.high))
        band = self.band_name(score)
        return Prediction(band or f"{score:.1f}", {self.score_name: score}, per_segment, self.kind, "score",
                          {"band": band})

    def describe(self, p):
        score = p.values[self.score_name]
        lines = [f"{self.score_name} {score:.1f} ({self.low:g}-{self.high:g})" + (f": {p.extra['band']}"
                                                                                if p.extra.get("band") else "")]
        segs = np.asarray(p.per_segment).reshape(-1)
        lines.append(f"  per sequence: {', '.join(f'{s:.1f}' for s in segs[:12])}{' ...' if segs.size > 12 else ''}")
        return lines


class DetectionTask(Task):
    """A probability of the positive class; the decision is ``p >= threshold``. Metric: F1
    of the positive class. The report gives precision / recall / F1 both of the positive
    class (``precision``, ``recall``, ``f1``) and macro over the two classes (``macro_*``:
    what papers that print one figure per metric for a binary task often mean), and the
    ROC AUC of the probabilities."""

    kind = "detection"
    metric_name = "f1"
    loss = "binary_crossentropy"
    # macro over the two classes, the papers' convention (the positive class's stay in the run)
    table_figures = ("accuracy", "macro_precision", "macro_recall", "macro_f1")

    def __init__(self, positive: str, negative: str, threshold: float = 0.5, bounds: dict[str, Bounds] | None = None):
        super().__init__(bounds or DETECTOR_BOUNDS)
        self.positive, self.negative, self.threshold = positive, negative, float(threshold)
        self.output_name = "probability"

    def decisions(self, outputs):
        return (self.judged(outputs)[:, 0] >= self.threshold).astype(np.int64)

    def judged(self, outputs):
        """The probability (the first column): what follows it is a family's extra (e.g. the
        segment weights), which would water down the bounds on the probability."""
        return np.asarray(outputs).reshape(len(outputs), -1)[:, :1]

    def metric(self, outputs, targets):
        return self.report(targets, outputs, ())["f1"]

    def report(self, targets, outputs, labels):
        from edgeaffect.contract.metrics import confusion_matrix, confusion_report, roc_auc

        y = np.asarray(targets).reshape(-1).astype(np.int64)
        r = confusion_report(confusion_matrix(y, self.decisions(outputs), 2), (self.negative, self.positive))
        positive = r["per_class"][self.positive]
        return {"n": r["n"], "precision": positive["precision"], "recall": positive["recall"], "f1": positive["f1"],
                "macro_precision": r["macro_precision"], "macro_recall": r["macro_recall"], "macro_f1": r["macro_f1"],
                "auc": roc_auc(y, self.judged(outputs)[:, 0]), "accuracy": r["accuracy"], "positive": self.positive,
                "labels": r["labels"], "confusion_matrix": r["confusion_matrix"]}

    def summary_keys(self):
        return ("n", "precision", "recall", "f1", "macro_precision", "macro_recall", "macro_f1", "auc", "accuracy")

    def metric_resolution(self, n, outputs=None, targets=None):
        """The most one flipped decision of ``outputs`` moves F1 on ``targets``; without them
        about 2/n. F1 = 2TP / (2TP + FP + FN) counts positives only, so on a small set one flip
        moves it far more than 2/n: 4 participants with TP 1, FP 1 give F1 2/3, and the true
        positive flipped gives 0 (the wav2vec 2.0 detector's tiny test split)."""
        if outputs is None or targets is None:
            return 2.0 / max(1, n)
        y, d = np.asarray(targets).reshape(-1).astype(np.int64), self.decisions(outputs)
        tp, fp, fn = int(((y == 1) & (d == 1)).sum()), int(((y == 0) & (d == 1)).sum()), int(((y == 1) & (d == 0)).sum())
        tn = len(y) - tp - fp - fn
        # flipping one decision of each kind present: TP->FN, FN->TP, FP->TN, TN->FP
        flips = [(tp - 1, fp, fn + 1, tp), (tp + 1, fp, fn - 1, fn), (tp, fp - 1, fn, fp), (tp, fp + 1, fn, tn)]
        base = _f1(tp, fp, fn)
        return max([abs(_f1(a, b, c) - base) for a, b, c, present in flips if present > 0], default=0.0)

    def prediction(self, combined, per_segment, labels):
        p = float(np.asarray(combined).reshape(-1)[0])
        decision = self.positive if p >= self.threshold else self.negative
        return Prediction(decision, {self.positive: p}, per_segment, self.kind, "probability")

    def describe(self, p):
        return [f"{p.decision} (p({self.positive}) = {p.values[self.positive]:.3f}, threshold {self.threshold:g})"]


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


# Classifier outputs are probabilities or capsule lengths in [0, 1].
CLASSIFIER_BOUNDS = {
    "float32": Bounds(max_abs=1e-5, agreement=0.995, max_metric_drop=0.005),
    "float16": Bounds(max_abs=5e-3, agreement=0.99, max_metric_drop=0.01),
    # int8: decisions and the metric are what a user sees. Against the QAT model it was
    # converted from: 3 points (or one sample). Against float: 10 points. On the 42-utterance
    # test set of `make demo-speech` the QAT model is 2 utterances (4.8 points) below float and
    # its int8 file a third one (7.1 points) on LiteRT's built-in kernels (a near-tie).
    "int8": Bounds(p95_abs=0.05, agreement=0.95, max_metric_drop=0.03, max_quantization_drop=0.10),
}
DETECTOR_BOUNDS = CLASSIFIER_BOUNDS


def regression_bounds(span: float) -> dict[str, Bounds]:
    """Bounds in score units, as fractions of the score's range (63 points for BDI-II)."""
    return {
        "float32": Bounds(max_abs=1e-5 * span, agreement=0.995, max_metric_drop=1e-4 * span),
        "float16": Bounds(max_abs=5e-3 * span, agreement=0.95, max_metric_drop=5e-3 * span),
        "int8": Bounds(p95_abs=0.05 * span, agreement=0.8, max_metric_drop=0.03 * span,
                       max_quantization_drop=0.06 * span),
    }
