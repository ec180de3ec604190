"""Cost model (three readers agree), device catalog, host ceilings, roofline bound,
papers' figures, plots."""

import json
import tomllib
from pathlib import Path

import pytest

from edgeaffect.errors import InputError, UnknownNameError
from edgeaffect.roofline.devices import Device, Figure, get_device, host_ceilings, load_catalog, roofline_bound
from edgeaffect.roofline.graph import Graph, Op, model_cost, peak_activation_elements

ROOT = Path(__file__).resolve().parents[1]


def test_keras_tflite_and_onnx_costs_agree(trained_run, export_dir):
    """The same model read three ways: params, MACs, FLOPs and bytes exactly equal; peak
    activation memory within 1 % (tf2onnx's layout transposes add a buffer or two)."""
    from edgeaffect.roofline.readers import analyse

    keras = analyse(trained_run.model)
    assert keras.params == trained_run.spec.params == 66_584
    assert keras.flops == trained_run.spec.flops == 14_423_416  # the paper's Eq. 3 by hand, in edgeaffect/families/aver/model.py
    assert keras.macs == 7_162_368
    for f in sorted(export_dir.glob("*.tflite")) + sorted(export_dir.glob("*.onnx")):
        c = analyse(f)
        assert (c.params, c.macs, c.flops) == (keras.params, keras.macs, keras.flops), f.name
        assert c.bytes == keras.bytes, f.name
        assert c.uncounted == []
        assert abs(c.peak_activation_bytes["float32"] / keras.peak_activation_bytes["float32"] - 1) < 0.01, f.name


def test_speechnet_keras_and_exported_costs_agree(speech_run, speech_export):
    """SpeechNet (capsules, dynamic routing, the fused LSTM in TFLite) read three ways."""
    from tests.cost_agreement import assert_costs_agree

    assert_costs_agree(speech_run.model, speech_export)


def test_a_dense_layer_on_a_sequence_is_counted_for_every_step(tmp_path):
    """A Dense on (batch, 30, 16) is a Tensordot whose Reshape target is computed at run time:
    TFLite keeps a placeholder shape there and ONNX shape inference cannot see it, and both
    readers used to count one step of 30 (a 39 % undercount of the spectrotemporal sequence
    stage). Both now read 30 x 16 x 8 multiply-adds, like Keras."""
    from edgeaffect.export.onnx_graph import write_onnx
    from edgeaffect.keras_backend import keras, tf
    from edgeaffect.roofline.readers import analyse

    k = keras()
    inp = k.Input((30, 16), name="x")
    m = k.Model(inp, k.layers.Dense(8)(inp))
    (tmp_path / "m.tflite").write_bytes(tf().lite.TFLiteConverter.from_keras_model(m).convert())
    write_onnx(m, {"x": (30, 16)}, [], tmp_path / "m.onnx")
    for artifact in (m, tmp_path / "m.tflite", tmp_path / "m.onnx"):
        c = analyse(artifact)
        assert c.macs == 30 * 16 * 8 and c.uncounted == [], (artifact, c.macs)


def _toy_graph():
    # in(100) -> conv(out 50, 10 MACs each, bias) -> relu (fused) -> reshape (view) -> dense(out 5)
    ops = [Op("conv", "conv", ["in"], ["a"], params=11, macs=500, adds=50),
           Op("relu", "act", ["a"], ["b"]),
           Op("flat", "view", ["b"], ["c"]),
           Op("fc", "dense", ["c"], ["out"], params=255, macs=250, adds=5)]
    return Graph("toy", "hand", ops, {"in": 100, "a": 50, "b": 50, "c": 50, "out": 5}, ["in"], ["out"])


def test_cost_conventions_by_hand():
    c = model_cost(_toy_graph())
    assert c.flops == 2 * 750 + 55 and c.params == 266
    # bytes: conv (11 + 100 + 50) + relu fused (0) + view (0) + fc (255 + 50 + 5), times 4 for float32
    assert c.bytes["float32"] == (161 + 310) * 4 and c.bytes["int8"] == 471
    assert c.intensity["float32"] == pytest.approx(1555 / 1884)
    # peak: during conv, in (100) + a (50) live; relu and reshape write in place; fc: a + out
    assert peak_activation_elements(_toy_graph()) == 150
    assert [r.name for r in c.layers] == ["conv", "relu", "fc"]


def test_catalog_every_figure_has_a_source_and_a_basis():
    raw = tomllib.loads((ROOT / "roofline" / "devices.toml").read_text())
    devices = load_catalog()
    for key in ("rpi4", "rpi5", "jetson-nano", "jetson-orin-nano-4gb", "jetson-orin-nano", "jetson-orin-nano-super",
                "jetson-orin-nx-16gb", "jetson-agx-orin-64gb", "jetson-xavier-nx", "host"):
        assert key in devices
    for key, dev in devices.items():
        if raw[key].get("measure"):
            continue
        assert "float32" in dev.peaks and "theoretical" in dev.bandwidths, key
        for fig in [*dev.peaks.values(), *dev.bandwidths.values()]:
            assert fig.basis in {"datasheet", "measured", "derived", "recalled"} and fig.value > 0, key
            assert len(fig.source) > 10, key
            if fig.basis == "derived":
                assert any(ch in fig.source for ch in "x/="), f"{key}: a derived figure must show its formula"
    assert devices["rpi4"].bandwidth.basis == "measured"  # the roof prefers a measured ceiling
    with pytest.raises(UnknownNameError, match="did you mean 'rpi4'|Did you mean 'rpi4'"):
        get_device("rpi-4")


def test_catalog_rejects_a_figure_without_source():
    with pytest.raises(InputError, match="value, basis and source"):
        load_catalog('[x]\nname = "x"\npeak_gflops.float32 = { value = 1.0 }\n')


def test_host_ceilings_are_measured_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = host_ceilings(1, gemm_n=256, copy_mib=16)
    again = host_ceilings(1, gemm_n=256, copy_mib=16)
    assert first["cached"] is False and again["cached"] is True
    assert first["gemm_gflops"] == again["gemm_gflops"] > 0.5  # any CPU of this decade does > 0.5 GFLOP/s
    assert first["copy_gbs"] > 0.1
    assert json.loads((tmp_path / "edgeaffect" / "host-ceilings.json").read_text())


def test_roofline_bound_by_hand():
    dev = Device("d", "d", "cpu", "", [], {"float32": Figure(100.0, "derived", "1 x 100")},
                 {"theoretical": Figure(10.0, "derived", "1 x 10")})
    c = model_cost(_toy_graph())
    b = roofline_bound(c, dev, "float32")
    # compute: 1555 / 100e9 s; memory: 1884 / 10e9 s -> memory-bound
    assert b.limited_by == "memory" and b.latency_ms == pytest.approx(1884 / 10e9 * 1e3)
    assert b.attainable_gflops == pytest.approx(1555 / 1884 * 10)
    assert "lower bound" in b.note and "prediction" in b.note
    int8 = roofline_bound(c, dev, "int8")
    assert int8.roof_precision == "float32" and "not a strict bound" in int8.note


@pytest.mark.slow
def test_papers_contradictions_and_not_built():
    from edgeaffect.roofline.papers import contradictions, load_figures, report

    _, figures = load_figures()
    speechnet = next(f for f in figures if f["paper"] == "speechnet")
    assert any("16.6 M FLOPs" in c for c in contradictions(speechnet))
    proposed = next(f for f in figures if f.get("model") == "aver-ravdess")
    assert contradictions(proposed) == []
    text = report({"aver-ravdess": {"p50_ms": 0.2, "how": "p50 of tflite-fp32 measured on a test machine"}})
    assert "/ not built" not in text and "Cannot all hold" in text  # all four papers' models are built
    spectro = next(ln for ln in text.splitlines() if ln.startswith("| Dual-stream spectrotemporal network |"))
    assert "15.1 / 14.9965 / 0.99x" in spectro  # the B3 variant's parameters beside the paper's
    assert "0.06 / 0.0666 / 1.11x" in text  # params: paper / ours / ratio
    assert "200 / 0.200" in text and "measured on a test machine" in text


def test_roofline_plots_and_bounds_cli(export_dir, tmp_path):
    from tests.test_cli import cli

    int8 = export_dir / "aver-ravdess-tflite-int8.tflite"
    r = cli("roofline", "--device", "rpi4", "--device", "jetson-orin-nano", "--artifact", int8, "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    for dev in ("rpi4", "jetson-orin-nano"):
        assert (tmp_path / f"roofline-{dev}.png").stat().st_size > 10_000
        assert (tmp_path / f"roofline-{dev}.svg").read_text().lstrip().startswith("<?xml")
    bounds = json.loads((tmp_path / "bounds.json").read_text())
    rpi4 = next(b for b in bounds if b["device"] == "rpi4")
    # 14.42 MFLOPs at the Pi 4's 48 GFLOP/s float32 roof (no int8 figure): 0.300 ms, compute-bound
    assert rpi4["latency_ms"] == pytest.approx(14_423_416 / 48e9 * 1e3, rel=1e-6)
    assert "prediction" in rpi4["note"] and "prediction" in r.stdout


def test_tegrastats_lines_parse_to_rails_and_are_absent_here():
    from edgeaffect.measure.power import parse_tegrastats, summarise, tegrastats_power

    line = ("11-22-2026 10:00:00 RAM 2100/7620MB (lfb 4x4MB) CPU [12%@1510,8%@1510] GR3D_FREQ 45% "
            "cpu@48.5C VDD_IN 5012mW/4980mW VDD_CPU_GPU_CV 1205mW/1180mW VDD_SOC 1432mW/1430mW")
    s = parse_tegrastats(line)
    assert s == {"VDD_IN": 5012, "VDD_CPU_GPU_CV": 1205, "VDD_SOC": 1432}
    agg = summarise([s, {"VDD_IN": 4000}])
    assert agg["VDD_IN"] == {"mean_mw": 4506.0, "max_mw": 5012} and agg["VDD_SOC"]["mean_mw"] == 1432
    import shutil

    if shutil.which("tegrastats") is None:
        with tegrastats_power() as p:
            pass
        assert "not a Jetson" in p["note"]


def test_lstm_cost_by_hand_from_keras():
    from edgeaffect.keras_backend import keras
    from edgeaffect.roofline.readers import analyse

    k = keras()
    x = k.Input((10, 8), name="frames")
    model = k.Model(x, k.layers.Dense(2)(k.layers.LSTM(4)(x)))
    c = analyse(model)
    # LSTM: 10 steps x 4 gates x 4 units x (8 inputs + 4 recurrent) MACs, 10 x 16 bias adds; Dense 4 -> 2.
    assert c.macs == 10 * 4 * 4 * (8 + 4) + 4 * 2
    assert c.flops == 2 * c.macs + 10 * 16 + 2
    assert c.params == model.count_params() == 4 * 4 * (8 + 4 + 1) + 4 * 2 + 2


def test_the_legend_sits_beside_the_points_and_achieved_points_give_their_share():
    """Issue 27: the legend covered the achieved points at the lower right of the host plot."""
    import matplotlib.pyplot as plt

    from edgeaffect.keras_backend import keras
    from edgeaffect.roofline.devices import get_device, roofline_bound
    from edgeaffect.roofline.plot import roofline_figure
    from edgeaffect.roofline.readers import analyse

    k = keras()
    x = k.Input((32, 32, 8))
    cost = analyse(k.Model(x, k.layers.Conv2D(16, 3)(x)))
    device = get_device("rpi5", measure_host=False)
    roof = roofline_bound(cost, device, "float32").attainable_gflops
    fig = roofline_figure(device, [{"label": "m", "cost": cost, "precision": "float32", "achieved_gflops": roof / 4}])
    fig.canvas.draw()
    ax = fig.axes[0]
    legend, axes = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= axes.x1, (legend, axes)  # wholly right of the plotting area
    assert any(t.get_text() == "25%" for t in ax.texts)
    assert any("25% of its roof" in t.get_text() for t in ax.get_legend().get_texts())
    plt.close(fig)
