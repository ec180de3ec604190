"""The demo loop: take the newest frame and the newest audio, build one sample's features
as the bundle's manifest says, run the model, smooth, draw, and log one event per result.

Inference never queues work: when it is slower than the camera it processes the newest
frame and counts the frames it skipped, so latency cannot grow without bound. Memory does
not grow with the run's length either: latency percentiles come from a fixed-size uniform
sample of all results (exact below ``LATENCY_SAMPLE`` results). A camera or microphone that
goes away is waited for and used again when it is back (see ``sources``).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from edgeaffect.contract.family import typed_value
from edgeaffect.errors import InputError
from edgeaffect.machine import limit_blas


@dataclass(frozen=True)
class DemoConfig:
    """The loop's own settings; ``live``: the family's (its adapter's ``live_settings``;
    None: their defaults)."""

    smooth: int = 5  # predictions averaged for the label on screen
    silence_rms: float = 1e-4  # below this the microphone is reported silent
    live: object = None


def with_settings(config: DemoConfig, adapter, pairs) -> DemoConfig:
    """``config`` with ``key=value`` settings applied (``--set``): a key names a field of the
    loop's settings or of the family's (``adapter.live_settings``); the value is read as that
    field's default is typed. ``live`` is always filled in."""
    live = config.live if config.live is not None else adapter.live_settings()
    loop_fields = {f.name for f in fields(config)} - {"live"}
    known = {**{k: config for k in loop_fields}, **{f.name: live for f in fields(live)}}
    changes: dict[int, dict] = {id(config): {}, id(live): {}}
    for pair in pairs or ():
        key, sep, text = str(pair).partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in known:
            raise InputError(f"--set takes key=value with a key of this model's live settings "
                             f"({', '.join(sorted(known))}), given '{pair}'")
        changes[id(known[key])][key] = typed_value(text.strip(), type(getattr(known[key], key)), key)
    return replace(config, **changes[id(config)], live=replace(live, **changes[id(live)]))


LATENCY_SAMPLE = 20000


def ms(v) -> str:
    return "-" if v is None else f"{v:.1f} ms"


def percentile(values, q):
    return float(np.percentile(values, q)) if len(values) else None


class Reservoir:
    """A uniform random sample of at most ``size`` values of a stream (Vitter's algorithm R),
    with the stream's count and mean, in an array allocated once: memory is the same after
    ten results and after ten million."""

    def __init__(self, size: int = LATENCY_SAMPLE, seed: int = 0):
        self._buf = np.empty(size, np.float64)
        self.count, self.total = 0, 0.0
        self._rng = np.random.default_rng(seed)

    def append(self, v: float) -> None:
        if self.count < self._buf.size:
            self._buf[self.count] = v
        else:
            j = int(self._rng.integers(self.count + 1))
            if j < self._buf.size:
                self._buf[j] = v
        self.count += 1
        self.total += v

    @property
    def values(self) -> np.ndarray:
        return self._buf[: min(self.count, self._buf.size)]

    def __len__(self) -> int:
        return min(self.count, self._buf.size)

    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


class Demo:
    def __init__(self, bundle: str | Path, camera: str | None = "0", mic: str | None = None, *,
                 show: bool = False, events: str | Path | None = None, duration: float | None = None,
                 config: DemoConfig = DemoConfig(), settings=(), threads: int | None = None, log=sys.stderr,
                 loop: bool = False, video_opener=None):
        """``settings``: ``key=value`` changes to ``config`` and the family's live settings."""
        from edgeaffect.device.predict import ExportedModel

        self.model = ExportedModel(bundle, threads=threads)
        self.threads = threads
        self.adapter = self.model.adapter
        self.cfg = with_settings(config, self.adapter, settings)
        self.show, self.duration, self.log = show, duration, log
        self.events_path = Path(events) if events else None
        self.needs_video = self.adapter.needs_video
        self.video = self.audio = None
        self.notices: list[str] = []
        self.loop, self.video_opener = loop, video_opener  # loop files; a capture factory (soak benchmark)
        self.live = {"events": 0, "labels": 0}  # read by a monitor thread while run() goes on
        self._open_sources(camera, mic)

    # --------------------------------------------------------------- sources
    def _note(self, text: str) -> None:
        self.notices.append(text)
        print(f"demo: {text}", file=self.log, flush=True)

    def _open_sources(self, camera, mic) -> None:
        from edgeaffect.demo.sources import FileAudioSource, MicSource, VideoSource
        from edgeaffect.errors import EdgeAffectError

        if self.needs_video:
            if camera is None:
                raise InputError("this model needs a camera: give --camera (an index, a device or a video)")
            # no camera: one clear error, nothing started
            self.video = VideoSource(str(camera), loop=self.loop, opener=self.video_opener)
        try:
            if mic is not None and Path(mic).is_file():
                self.audio = FileAudioSource(mic, loop=self.loop)
            else:
                self.audio = MicSource(mic)
        except EdgeAffectError as exc:
            if not self.needs_video:
                raise
            self._note(f"{exc}; continuing video-only (audio features are silence)")
            self.audio = None

    def run(self) -> dict:
        recent = deque(maxlen=self.cfg.smooth)
        stats = {"events": 0, "labels": 0, "statuses": Counter(), "dropped_frames": 0, "latency_ms": Reservoir(),
                 "stage_ms": {k: Reservoir() for k in ("capture", *self.adapter.live_stages, "inference")}}
        self.t_start = time.monotonic()
        sources = [s for s in (self.video, self.audio) if s is not None]
        for s in sources:
            s.start()
        out = open(self.events_path, "w") if self.events_path else None
        blas = limit_blas(self.threads)
        rate = self.adapter.live_rate(self.cfg.live)
        t_start, last_seq, min_gap = self.t_start, 0, 1.0 / rate
        next_slot = t_start  # results are paced by slots 1 / rate apart, not by the last pick
        silent_reported = False
        shown = {id(s): 0 for s in sources}
        try:
            while True:
                now = time.monotonic()
                if self.duration is not None and now - t_start >= self.duration:
                    break
                for s in sources:
                    for text in s.messages[shown[id(s)]:]:
                        self._note(text)
                    shown[id(s)] = len(s.messages)
                if self.video is not None and self.video.ended.is_set():
                    break  # the audio-visual model cannot go on without frames
                frame, t_cap, seq = self.video.latest() if self.video else (None, now, last_seq + 1)
                if seq == last_seq:
                    time.sleep(0.002)
                    continue
                stats["dropped_frames"] += max(0, seq - last_seq - 1)
                last_seq = seq
                t_pick = time.monotonic()
                step = self.adapter.live_input(frame, self.audio, self.cfg.live)
                status, rms = step.status, step.audio_rms
                if rms < self.cfg.silence_rms and not silent_reported and self.audio is not None:
                    self._note("the microphone is silent: check its level or mute switch")
                    silent_reported = True
                event = {"time": round(t_pick - t_start, 4), "frame": seq, "dropped_frames": stats["dropped_frames"],
                         "audio_rms": rms}
                if status != "ok":
                    stats["statuses"][status] += 1
                    event.update({"status": status, "label": None, "probabilities": None})
                    inf_ms = 0.0
                else:
                    t3 = time.perf_counter()
                    outputs = self.model.outputs(step.x)
                    inf_ms = (time.perf_counter() - t3) * 1e3
                    recent.append(self.adapter.combine(outputs))
                    pred = self.model.task.prediction(self.adapter.smooth(list(recent)), outputs, self.model.labels)
                    stats["labels"] += 1
                    self.live["labels"] += 1
                    event.update({"status": "ok", "label": pred.decision,
                                  "probabilities": {k: round(float(p), 4) for k, p in pred.values.items()}})
                total_ms = (time.monotonic() - t_cap) * 1e3
                stage = {"capture": (t_pick - t_cap) * 1e3,
                         **{k: step.stage_ms.get(k, 0.0) for k in self.adapter.live_stages}, "inference": inf_ms}
                event["latency_ms"] = {**{k: round(v, 3) for k, v in stage.items()}, "total": round(total_ms, 3)}
                stats["events"] += 1
                self.live["events"] += 1
                stats["latency_ms"].append(total_ms)
                for k, v in stage.items():
                    stats["stage_ms"][k].append(v)
                if out:
                    out.write(json.dumps(event) + "\n")
                    out.flush()
                if self.show and frame is not None:
                    from edgeaffect.demo.overlay import draw

                    if draw(frame, event, stats, self.model.labels) == ord("q"):
                        break
                # The next result may start at the next slot: a late pick does not push every
                # later one back (a camera at exactly `rate` would otherwise lose a frame each
                # time the lag built up past one frame), and idle time earns no burst.
                next_slot = max(next_slot + min_gap, t_pick)
                time.sleep(max(0.0, next_slot - time.monotonic()))
        finally:
            if blas is not None:
                blas.restore_original_limits()
            for s in sources:
                s.stop()
            for s in sources:
                s.join(timeout=1.0)
            if out:
                out.close()
            if self.show:
                import cv2

                cv2.destroyAllWindows()
        return self.summary(stats, time.monotonic() - t_start)

    def summary(self, stats: dict, elapsed: float) -> dict:
        lat = stats["latency_ms"]
        stage_means = {k: v.mean() for k, v in stats["stage_ms"].items()}
        total = sum(stage_means.values()) or 1.0
        return {"seconds": elapsed, "events": stats["events"], "labels": stats["labels"],
                "statuses": dict(stats["statuses"]),
                "dropped_frames": stats["dropped_frames"],
                "captured_frames": self.video.seq if self.video else None,
                "processed_per_s": stats["events"] / elapsed if elapsed else 0.0,
                "latency_p50_ms": percentile(lat.values, 50), "latency_p95_ms": percentile(lat.values, 95),
                "stage_mean_ms": stage_means, "stage_share": {k: v / total for k, v in stage_means.items()},
                "notices": self.notices, "faults": self.faults()}

    def closing_line(self, s: dict) -> str:
        """What ``edgeaffect demo`` prints when it stops, from ``summary``'s dict: results,
        the statuses the adapter reports (e.g. frames without a face), dropped frames when
        there is a camera, capture-to-label latency."""
        counts = [f"{s['statuses'].get(status, 0)} {words}" for status, words in self.adapter.live_reported.items()]
        if self.needs_video:
            counts.append(f"{s['dropped_frames']} frames dropped")
        counted = f"{', '.join(counts)}; " if counts else ""
        return (f"{s['events']} results in {s['seconds']:.1f} s ({s['processed_per_s']:.1f}/s), {s['labels']} labelled, "
                f"{counted}capture-to-label p50 {ms(s['latency_p50_ms'])} p95 {ms(s['latency_p95_ms'])}")

    def faults(self) -> list[dict]:
        """Every device loss so far: source, lost and back (seconds since the start; back None
        while it is still gone) and the time it took to recover."""
        t0 = getattr(self, "t_start", time.monotonic())
        rows = []
        for s in (self.video, self.audio):
            for f in (s.faults if s is not None else []):
                back = None if f["back"] is None else round(f["back"] - t0, 3)
                rows.append({"source": s.name, "lost_s": round(f["lost"] - t0, 3), "back_s": back,
                             "recovery_s": None if back is None else round(f["back"] - f["lost"], 3)})
        return sorted(rows, key=lambda r: r["lost_s"])
