"""The Keras cost reader counts a layer once per application (TimeDistributed, segments
folded into the batch), every layer's arithmetic is known, and an unknown one makes the
totals a stated lower bound (issue 27)."""

import pytest

from edgeaffect.contract import get_model, list_models
from edgeaffect.roofline.readers import analyse


def _conv1d_flops(steps_out: int, filters: int, kernel: int, channels_in: int) -> int:
    """Paper Eq. 3 for one Conv1D application: 2 x MACs + bias adds."""
    return 2 * steps_out * filters * kernel * channels_in + steps_out * filters


def test_time_distributed_conv_stack_counts_every_application():
    from edgeaffect.keras_backend import keras

    k = keras()
    segments, frames, channels = 6, 20, 3
    x = k.Input((segments, frames, channels))
    h = k.layers.TimeDistributed(k.layers.Conv1D(8, 3, padding="same"))(x)
    h = k.layers.TimeDistributed(k.layers.Conv1D(5, 3))(h)  # valid: 18 frames out
    stack = k.Sequential([k.layers.Conv1D(4, 3, padding="same"), k.layers.ReLU()])
    h = k.layers.TimeDistributed(stack)(h)
    cost = analyse(k.Model(x, h))
    per_application = (_conv1d_flops(frames, 8, 3, channels) + _conv1d_flops(frames - 2, 5, 3, 8)
                       + _conv1d_flops(frames - 2, 4, 3, 5))
    assert cost.flops == segments * per_application
    assert cost.complete and cost.uncounted == []


def test_an_unknown_layer_leaves_a_stated_lower_bound():
    from edgeaffect.keras_backend import keras

    k = keras()
    x = k.Input((10, 4))
    h = k.layers.Dense(3)(x)
    h = k.layers.Lambda(lambda t: t * t, name="square")(h)  # arithmetic the reader cannot know
    cost = analyse(k.Model(x, h))
    assert cost.flops == 2 * 10 * 4 * 3 + 10 * 3
    assert not cost.complete and cost.uncounted == ["square"]
    assert cost.to_dict(layers=False)["complete"] is False


def test_cli_says_an_incomplete_total_is_a_lower_bound(capsys):
    from edgeaffect.cli.measure import _print_cost
    from edgeaffect.keras_backend import keras

    k = keras()
    x = k.Input((10, 4))
    h = k.layers.Lambda(lambda t: t * t, name="square")(k.layers.Dense(3)(x))
    _print_cost(analyse(k.Model(x, h)), layers=False)
    out = capsys.readouterr().out
    assert "FLOPs at least 270" in out and "not counted (unknown arithmetic): square" in out


def _head(name: str):
    from edgeaffect.families.wav2vec2.model import build_head_stage

    return get_model(name).config, build_head_stage(get_model(name).config)


def test_wav2vec2_head_counts_its_conv_stack_per_segment():
    """Issue 27: the head was 170 MFLOPs while its conv stack alone is ~156 MFLOPs per
    segment; now the stack counts once per segment, and the whole head agrees with the
    analytic count (head_cost) to 0.1 %."""
    from edgeaffect.families.wav2vec2.model import head_cost

    c, head = _head("wav2vec2-daicwoz")
    cost = analyse(head)
    per_segment, ch = 0, c.hidden
    for filters in c.conv_filters:
        per_segment += _conv1d_flops(c.frames, filters, c.conv_kernel, ch)
        ch = filters
    stack = {r.name: r.flops for r in cost.layers if r.name.startswith("seg_conv")}
    assert sum(stack.values()) == c.max_segments * per_segment
    assert cost.flops > c.max_segments * per_segment
    assert cost.complete
    analytic = sum(r.flops for r in head_cost(c))
    assert cost.flops == pytest.approx(analytic, rel=1e-3)


def _one_per_family() -> set[str]:
    """The smallest registered model of each family (by its stated parameters): the same
    code builds every size, so these see every layer class; the rest run as slow."""
    smallest: dict[str, str] = {}
    for name in list_models():
        spec = get_model(name)
        if spec.family not in smallest or spec.params < get_model(smallest[spec.family]).params:
            smallest[spec.family] = name
    return set(smallest.values())


FAST = _one_per_family()
# Layers whose arithmetic is accepted as unknown, with the reason; empty: every layer of
# every registered model is counted.
ACCEPTED_UNCOUNTED: dict[str, str] = {}


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in list_models()])
def test_every_layer_of_a_registered_model_is_counted(name):
    from edgeaffect.workflows.roofline import model_parts

    for label, model in model_parts(name):
        cost = analyse(model)
        left = [n for n in cost.uncounted if n not in ACCEPTED_UNCOUNTED]
        assert left == [], label


def test_a_bound_from_an_incomplete_count_says_at_least():
    """The roofline bound of a graph with an uncounted op is a bound on a lower bound: the
    table, bounds.json and the report page say "at least"."""
    from edgeaffect.cli.roofline import bound_line
    from edgeaffect.keras_backend import keras
    from edgeaffect.roofline.devices import get_device, roofline_bound
    from edgeaffect.workflows.roofline import _count_facts

    k = keras()
    x = k.Input((10, 4))
    cost = analyse(k.Model(x, k.layers.Lambda(lambda t: t * t, name="square")(k.layers.Dense(3)(x))))
    row = {"model": "m", **roofline_bound(cost, get_device("rpi5", measure_host=False)).to_dict(),
           "measured_p50_ms": None, **_count_facts(cost)}
    assert row["complete"] is False and row["uncounted"] == ["square"]
    assert "at least" in bound_line(row) and "square" in bound_line(row)
    assert "at least" not in bound_line({**row, "complete": True, "uncounted": []})
