"""The detection task's report: macro and positive-class precision / recall / F1, and ROC AUC."""

import numpy as np
import pytest

from edgeaffect.contract import DetectionTask
from edgeaffect.contract.metrics import average_ranks, roc_auc

TASK = DetectionTask("depressed", "not depressed")


def outputs_from_counts(tp: int, fn: int, fp: int, tn: int):
    """Targets and probabilities whose decisions give exactly this confusion matrix."""
    y = np.array([1] * (tp + fn) + [0] * (fp + tn))
    p = np.array([0.9] * tp + [0.1] * fn + [0.9] * fp + [0.1] * tn, np.float32)
    return y, p.reshape(-1, 1)


def test_paper_table_1_row_is_the_macro_average_of_its_confusion_matrix():
    # DAIC-WOZ dev: 12 depressed, 23 not; TP 7, FN 5, FP 1, TN 22.
    r = TASK.report(*outputs_from_counts(tp=7, fn=5, fp=1, tn=22), ())
    assert r["n"] == 35 and r["confusion_matrix"] == [[22, 1], [5, 7]]
    # Table 1, "Ours, wav2vec 2.0": 84.49 / 76.99 / 79.00, exactly (to the paper's two decimals)
    assert [round(100 * r[k], 2) for k in ("macro_precision", "macro_recall", "macro_f1")] == [84.49, 76.99, 79.00]
    # the depressed class alone: 7/8, 7/12, 14/20
    assert [round(100 * r[k], 1) for k in ("precision", "recall", "f1")] == [87.5, 58.3, 70.0]
    assert r["f1"] == TASK.metric(*outputs_from_counts(7, 5, 1, 22)[::-1])


def test_depressed_class_figures_by_hand():
    y = np.array([1, 1, 1, 0, 0, 0, 0])
    p = np.array([0.8, 0.5, 0.2, 0.6, 0.1, 0.3, 0.45]).reshape(-1, 1)  # p = 0.5 decides "depressed"
    r = TASK.report(y, p, ())
    # decisions 1 1 0 1 0 0 0: TP 2, FN 1, FP 1, TN 3
    assert (r["precision"], r["recall"], r["f1"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert (r["macro_precision"], r["macro_recall"]) == pytest.approx(((2 / 3 + 3 / 4) / 2, (2 / 3 + 3 / 4) / 2))
    assert r["macro_f1"] == pytest.approx((2 / 3 + 3 / 4) / 2)  # not-depressed F1: 2*3 / (2*3 + 1 + 1)
    assert r["accuracy"] == pytest.approx(5 / 7)
    # AUC: 0.8 beats all 4 not-depressed scores, 0.5 beats 3, 0.2 beats 1: 8 of the 12 pairs
    assert r["auc"] == pytest.approx(8 / 12)


def test_auc_counts_a_tie_as_one_half():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.4])
    # positives 0.35 (beats 0.1), 0.8 (beats all three), 0.4 (beats 0.1, ties two 0.4s): 1 + 3 + 2 = 6 of 9
    assert roc_auc(y, s) == pytest.approx(6 / 9)
    assert average_ranks(s).tolist() == [1.0, 4.0, 2.0, 6.0, 4.0, 4.0]
    assert roc_auc(y, np.full(6, 0.5)) == 0.5  # no information
    assert roc_auc(y, 0.7 * y) == 1.0  # separated
    assert roc_auc(np.ones(3), [0.1, 0.2, 0.3]) is None  # one class: no curve


def test_auc_agrees_with_counting_every_pair():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.random(200), 1)  # many ties
    pos, neg = s[y == 1], s[y == 0]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert roc_auc(y, s) == pytest.approx(pairs / (pos.size * neg.size))


def test_report_reads_the_probability_column_only():
    # a family's extra columns (segment weights) after p change neither decisions nor AUC
    y, p = outputs_from_counts(3, 1, 2, 4)
    extra = np.hstack([p, np.random.default_rng(1).random((len(p), 5))])
    assert TASK.report(y, extra, ()) == TASK.report(y, p, ())
    assert set(TASK.summary_keys()) <= set(TASK.report(y, p, ()))


# The one confusion matrix (TP, FN, FP, TN) on DAIC-WOZ dev (12 depressed, 23 not) whose macro
# figures are each wav2vec 2.0 paper row (Zhang, Zhang, Chen, Li, Yu, Sci. Rep. 2024); found
# by trying every matrix: no matrix gives any of these rows as the depressed class's figures.
PAPER_MATRICES = {"wav2vec2-large-daicwoz": (7, 5, 1, 22),  # Tables 1 and 3, fine-tuned, all layers
                  "wav2vec2-daicwoz": (5, 7, 0, 23)}  # Table 3, base, fine-tuned, all layers


@pytest.mark.parametrize("model", sorted(PAPER_MATRICES))
def test_paper_toml_figures_are_macro_as_it_says(model):
    from edgeaffect.contract import get_model

    figures = get_model(model).paper_figures
    assert figures["convention"].startswith("macro over the two classes")
    r = TASK.report(*outputs_from_counts(*PAPER_MATRICES[model]), ())
    assert [round(100 * r[k], 2) for k in ("macro_precision", "macro_recall", "macro_f1")] == \
        [figures[k] for k in ("macro_precision", "macro_recall", "macro_f1")]


def test_reproduce_recipe_sets_the_paper_beside_the_macro_figures():
    from edgeaffect.workflows.reproduce import get_recipe

    for proto in get_recipe("wav2vec2-depression").corpora[0]["protocol"]:
        beside = {m["metric"] for m in proto["metrics"] if "paper" in m}
        assert beside <= {"macro_precision", "macro_recall", "macro_f1"}
        assert all("macro" in m["paper_row"] or "no paper figure" in m["paper_row"] or "no AUC" in m["paper_row"]
                   for m in proto["metrics"])
        assert {m["metric"] for m in proto["metrics"]} <= set(TASK.summary_keys())


def test_one_flipped_decision_bounds_f1_by_what_it_moves_on_this_set():
    """On 4 participants (TP 1, FP 1, TN 2) one flip takes F1 from 2/3 to 0: the verification
    allows that one near-tie, as it allows one of n decisions to disagree; a second flip fails."""
    from edgeaffect.export.formats import get_format
    from edgeaffect.export.verify import judge

    task = DetectionTask("depressed", "not depressed")
    targets = np.array([1, 0, 0, 0])
    reference = np.array([[0.52], [0.9], [0.1], [0.2]])  # TP, FP, TN, TN
    assert task.metric(reference, targets) == pytest.approx(2 / 3)
    assert task.metric_resolution(4, reference, targets) == pytest.approx(2 / 3)
    assert task.metric_resolution(4) == pytest.approx(0.5)  # without the set: about 2/n
    # exact by brute force on a larger random set
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 40), rng.uniform(0, 1, (40, 1))
    base = task.metric(p, y)
    flipped = [task.metric(np.where(np.arange(40)[:, None] == i, 1 - p, p), y) for i in range(40)]
    assert task.metric_resolution(40, p, y) == pytest.approx(max(abs(f - base) for f in flipped))
    fmt = get_format("tflite-int8")
    one = np.array([[0.48], [0.9], [0.1], [0.2]])  # the near-tie flipped: F1 0
    v = judge(task, fmt, one, reference, reference, targets, runtime="litert")
    assert not [f for f in v.failures if f.startswith("f1")], v.failures
    two = np.array([[0.48], [0.9], [0.6], [0.2]])  # and a second decision: agreement fails too
    v = judge(task, fmt, two, reference, reference, targets, runtime="litert")
    assert any(f.startswith("decisions agree") for f in v.failures), v.failures
