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
