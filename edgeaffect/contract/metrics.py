"""Classification metrics: accuracy, macro and per-class precision / recall / F1, confusion
matrix, ROC AUC."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgeaffect.io import atomic_write_bytes, atomic_write_text


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def classification_report(y_true, y_pred, labels: tuple[str, ...]) -> dict:
    """The report of ``confusion_report`` for these decisions."""
    return confusion_report(confusion_matrix(y_true, y_pred, len(labels)), labels)


def confusion_report(cm: np.ndarray, labels: tuple[str, ...]) -> dict:
    """Accuracy, per-class and macro precision / recall / F1 from a confusion matrix (rows:
    true classes). Macro means are over the classes that occur (a class absent from the
    test set has no defined recall); macro F1 is the mean of the classes' F1, not the F1 of
    the macro precision and recall."""
    cm = np.asarray(cm, np.int64)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp), where=(precision + recall) > 0)
    present = support > 0
    return {
        "n": int(cm.sum()),
        "accuracy": float(tp.sum() / max(1, cm.sum())),
        "macro_precision": float(precision[present].mean()) if present.any() else 0.0,
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {lab: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                            "support": int(support[i])} for i, lab in enumerate(labels)},
        "labels": list(labels),
        "confusion_matrix": cm.tolist(),
    }


def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x``, tied values sharing the mean of the ranks they span."""
    x = np.asarray(x, np.float64).reshape(-1)
    order = np.argsort(x, kind="stable")
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    ranks = np.empty(x.size, np.float64)
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks


def roc_auc(y_true, scores) -> float | None:
    """Area under the ROC curve as the Mann-Whitney U statistic over (positive, negative)
    pairs: the share of pairs the positive scores higher, a tie counting one half (average
    ranks give exactly that). None where one class is absent: there is no curve."""
    y = np.asarray(y_true).reshape(-1).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return None
    u = average_ranks(scores)[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def save_report(report: dict, folder: Path, stem: str = "metrics", title: str = "") -> None:
    """``stem.json`` and a confusion-matrix ``stem_confusion.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / f"{stem}.json", json.dumps(report, indent=2))
    atomic_write_bytes(folder / f"{stem}_confusion.png", confusion_png(report, title))


def confusion_png(report: dict, title: str = "") -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(report["confusion_matrix"])
    labels = report["labels"]
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * len(labels), 0.8 + 0.7 * len(labels)), dpi=100)
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_title(title or f"accuracy {report['accuracy']:.3f} (n={report['n']})", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
