import numpy as np
import pytest

from edgeaffect.errors import UnknownNameError
from edgeaffect.contract import get_model, list_models
from edgeaffect.contract.metrics import classification_report


def test_registry_lists_and_suggests():
    assert {"aver-ravdess", "aver-savee", "aver-mead"} <= set(list_models())
    with pytest.raises(UnknownNameError, match="Did you mean 'aver-ravdess'"):
        get_model("aver-ravdes")


def test_aver_parameter_count_and_eq3_flops_are_pinned():
    # Hand count with valid padding and a max-pool after each of the three face convs.
    ravdess = get_model("aver-ravdess")
    assert ravdess.params == 66_584
    assert ravdess.flops == 14_423_416  # Eq. 3, dense as 1x1 conv: 0.014 G as Table V
    assert get_model("aver-savee").params == 61_495
    assert abs(ravdess.params / 1e6 - ravdess.paper_figures["params_m"]) < 0.01  # Table V rounds 0.0666 down
    assert round(ravdess.flops / 1e9, 3) == ravdess.paper_figures["gflops"]


@pytest.mark.parametrize("name", ["aver-ravdess", "aver-savee"])
def test_analytic_cost_matches_keras(name):
    spec = get_model(name)
    model = spec.build_model()
    assert model.count_params() == spec.params
    for row in spec.cost(spec.config):
        layer = model.get_layer(row.name)
        assert layer.count_params() == row.params
        assert tuple(layer.output_shape[1:]) == row.out_shape


def test_keras_forward_shape_and_softmax():
    model = get_model("aver-savee").build_model()
    out = model({"face": np.zeros((3, 64, 64, 1), np.float32), "mfcc": np.zeros((3, 40, 1), np.float32)})
    assert out.shape == (3, 7)
    np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1.0, atol=1e-6)


def test_classification_report_by_hand():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    r = classification_report(y_true, y_pred, ("a", "b", "c"))
    assert r["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert r["accuracy"] == pytest.approx(4 / 6)
    # precision a=2/2, b=1/2, c=1/2; recall a=2/3, b=1/2, c=1/1
    assert r["macro_precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert r["macro_recall"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    f1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 0.5, 2 * 0.5 / 1.5]
    assert r["macro_f1"] == pytest.approx(np.mean(f1))
