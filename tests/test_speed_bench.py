"""The speed benchmarks' own logic (no timing assertions): clip -> label against the
reference preprocessing, and the live label's accuracy with and without tracking."""

from __future__ import annotations


def test_clip_to_label_ab_row(export_dir, corpus):
    from edgeaffect.measure.bench import bench_clip_to_label

    clips = sorted(corpus.rglob("*.mp4"))[:2]
    row = bench_clip_to_label(export_dir, clips, threads=1, rounds=2)
    assert row["runs_each"] == 2 and row["threads"] == 1
    assert row["p50_ms_new"] > 0 and row["p50_ms_reference"] > 0
    assert abs(row["speedup_p50"] - row["p50_ms_reference"] / row["p50_ms_new"]) < 1e-9
    assert 0.0 <= row["labels_agree"] <= 1.0
    assert "largest-first" in row["what"]
    assert bench_clip_to_label(export_dir, [], threads=1) is None


def test_live_accuracy_counts_every_frame_both_ways(export_dir, corpus):
    from edgeaffect.demo.bench import live_accuracy
    from edgeaffect.demo.live import DemoConfig
    from edgeaffect.device.predict import ExportedModel

    model = ExportedModel(export_dir, threads=1)
    family = model.family
    clips = sorted(corpus.rglob("*.mp4"))[:1]
    r = live_accuracy(model, clips, family.recording_label, DemoConfig(), (1, 6))
    assert r["clips"] == 1 and r["frames"] == 60  # 2 s at 30 fps
    one, six = r["by_detect_every"]["1"], r["by_detect_every"]["6"]
    assert one["searches"] == 60 and six["searches"] <= 60 // 6 + 2
    for v in (one, six):
        assert 0.0 <= v["accuracy"] <= 1.0
    assert 0.0 <= r["agreement"] <= 1.0
    assert family.recording_label(clips[0]) in ExportedModel(export_dir).labels
    d = r["difference"]
    assert abs(d["pp"] - (six["accuracy"] - one["accuracy"]) * 100) < 1e-9


def test_paired_difference_interval():
    """The paired bootstrap: a constant per-clip gain gives that gain with a zero-width
    interval; a gain on some clips only gives an interval around it that holds zero when
    one clip carries it all."""
    from edgeaffect.demo.bench import paired_difference

    base = [(50, 100)] * 30
    d = paired_difference(base, [(55, 100)] * 30)
    assert abs(d["pp"] - 5.0) < 1e-9 and d["ci95_pp"] == [5.0, 5.0]
    lucky = paired_difference(base, [(100, 100)] + [(50, 100)] * 29)
    assert abs(lucky["pp"] - 50 / 30) < 1e-9
    assert lucky["ci95_pp"][0] <= 0.0 < lucky["ci95_pp"][1]
    assert "30 clips" in lucky["method"]
    assert paired_difference([], []) is None


def test_bench_demo_compares_the_reference_setting_and_says_so(export_dir, corpus):
    """bench-demo's runs and lines, asked of the adapter: the default setting and the
    family's reference (the full face search on every frame), each live stage timed."""
    from edgeaffect.demo.bench import bench_demo, describe_accuracy, live_accuracy
    from edgeaffect.demo.live import DemoConfig
    from edgeaffect.device.predict import ExportedModel

    lines = []
    out = bench_demo(export_dir, 2.0, echo=lines.append)
    assert list(out["runs"]) == ["detect every 6", "detect every 1"]
    assert set(out["runs"]["detect every 1"]["stage_mean_ms"]) == {"capture", "face", "features", "inference"}
    assert "640x480 30 fps video file + 16 kHz wav" in lines[0]
    assert any(line.startswith("detect every 6 vs detect every 1 (consecutive runs)") for line in lines)
    model = ExportedModel(export_dir, threads=1)
    acc = live_accuracy(model, sorted(corpus.rglob("*.mp4"))[:1], model.family.recording_label, DemoConfig())
    acc["corpus"] = "fixture"
    text = describe_accuracy(acc, model.adapter)
    assert "a frame without a face counts as wrong" in text[0] and "detect every 1: " in text[0]
    assert "searches" in text[0] and text[1].startswith("detect every 6 minus detect every 1:")
