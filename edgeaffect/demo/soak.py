"""The demo for a long time, with its devices taken away and given back (a benchmark).

Video (for a model that takes it): the family's generated clip (``demo_video``), looped,
read through a camera that fails on schedule (every read fails and every reopen fails until
it is "plugged in" again). Audio: the microphone is a real input device, a private PulseAudio daemon's null
sink with a speech-like wav looped into it (``pacat``); it is unplugged by unloading the
null sink's module and plugged in again by loading it (``--audio file``: the wav looped
straight into the demo, no microphone faults).

Reported: RSS at the start (after a warm-up and the first labelled result) and the end and
its slope over the run, the results and labelled results per second in each bucket (a minute
by default; a staged model labels only once enough segments are in), and every loss with the
time the demo took to notice it and to use the device again once it was back. Linux only (RSS from
/proc, PulseAudio).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError, MissingDependencyError


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


class FlakyCamera:
    """A capture factory for ``VideoSource(opener=...)``: a video file looped and paced like a
    camera, that fails while ``down`` is set (reads fail, reopening fails)."""

    def __init__(self, path: Path, fps: float = 30.0):
        self.path, self.period = str(path), 1.0 / fps
        self.down = threading.Event()

    def __call__(self, target):
        return _Capture(self)


class _Capture:
    def __init__(self, cam: FlakyCamera):
        import cv2

        self.cam, self.cv2 = cam, cv2
        self.cap = None if cam.down.is_set() else cv2.VideoCapture(cam.path)
        self.next_t = time.monotonic()

    def isOpened(self) -> bool:
        return self.cap is not None and self.cap.isOpened()

    def get(self, prop):
        return self.cap.get(prop) if self.cap is not None else 0.0

    def read(self):
        if self.cap is None or self.cam.down.is_set():
            return False, None
        self.next_t += self.cam.period  # a camera delivers at its frame rate
        time.sleep(max(0.0, self.next_t - time.monotonic()))
        ok, frame = self.cap.read()
        if not ok:  # the end of the file: loop
            self.cap.release()
            self.cap = self.cv2.VideoCapture(self.cam.path)
            ok, frame = self.cap.read()
        return ok, frame

    def release(self) -> None:
        if self.cap is not None:
            self.cap.release()


class PulseMic:
    """A private PulseAudio daemon whose null sink's monitor is the default input, with a wav
    looped into the sink. ``unplug`` unloads the sink (its monitor source goes away with it),
    ``plug`` loads it again."""

    def __init__(self, wav: Path, folder: Path):
        for tool in ("pulseaudio", "pactl", "pacat"):
            if shutil.which(tool) is None:
                raise MissingDependencyError(f"{tool} is not installed: apt install pulseaudio pulseaudio-utils "
                                             "(or use --audio file)")
        from edgeaffect.media import read_audio

        y, sr = read_audio(wav)
        self.pcm, self.sr = y.astype("<f4").tobytes(), sr
        runtime = folder / "run"
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(folder)}
        self.daemon = subprocess.Popen(["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1",
                                        "--system=false", "--load=module-native-protocol-unix"], env=self.env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if self._pactl("info").returncode == 0:
                break
            time.sleep(0.1)
        else:
            self.close()
            raise MissingDependencyError("pulseaudio did not start here (or use --audio file)")
        # This process's PortAudio (ALSA's pulse plugin) talks to this daemon.
        os.environ.update({"XDG_RUNTIME_DIR": self.env["XDG_RUNTIME_DIR"], "HOME": self.env["HOME"]})
        self.module = None
        self.player = None
        self._stop = threading.Event()
        self._feeder = threading.Thread(target=self._feed, name="pulse-feeder", daemon=True)
        self.plug()
        self._feeder.start()

    def _pactl(self, *args):
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True)

    def plug(self) -> None:
        r = self._pactl("load-module", "module-null-sink", "sink_name=soaksink")
        self.module = r.stdout.strip()
        self._pactl("set-default-source", "soaksink.monitor")

    def unplug(self) -> None:
        if self.module:
            self._pactl("unload-module", self.module)
            self.module = None

    def _feed(self) -> None:
        """The wav, looped, into the sink; pacat blocks when the sink has enough, so this
        runs at the sink's pace. Restarted when an unplug ended it."""
        chunk = self.sr * 4 // 10 * 4  # 0.1 s of float32
        while not self._stop.is_set():
            if self.module is None:
                time.sleep(0.1)
                continue
            p = subprocess.Popen(["pacat", "--playback", "--raw", "--format=float32le", f"--rate={self.sr}",
                                  "--channels=1", "--device=soaksink", "--latency-msec=100"],
                                 env=self.env, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            self.player = p
            try:
                while not self._stop.is_set() and p.poll() is None:
                    for i in range(0, len(self.pcm), chunk):
                        p.stdin.write(self.pcm[i:i + chunk])
                        if self._stop.is_set():
                            break
                    p.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass
            finally:
                self._end(p)
            time.sleep(0.2)

    @staticmethod
    def _end(p) -> None:
        try:
            p.stdin.close()
        except OSError:
            pass
        if p.poll() is None:
            p.terminate()
        try:
            p.wait(timeout=2)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def close(self) -> None:
        self._stop.set()
        feeder, player = getattr(self, "_feeder", None), getattr(self, "player", None)
        if player is not None and player.poll() is None:
            player.terminate()  # unblocks a write to a full pipe
        if feeder is not None and feeder.is_alive():
            feeder.join(timeout=5)
        self.daemon.terminate()
        try:
            self.daemon.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.daemon.kill()


def fault_schedule(seconds: float, every_s: float | None, outage_s: float) -> list[tuple[float, str, str]]:
    """(time, device, "unplug" | "plug"): the microphone and then the camera taken away for
    ``outage_s`` in each cycle of ``every_s`` (default: one cycle over the whole run)."""
    every = min(every_s or seconds, seconds)
    events = []
    start = 0.0
    while start + every <= seconds + 1e-9:
        for frac, device in ((0.3, "microphone"), (0.6, "camera")):
            t = start + frac * every
            events += [(t, device, "unplug"), (t + outage_s, device, "plug")]
        start += every
    return sorted(events)


def slope_per_hour(t_s: np.ndarray, mib: np.ndarray) -> float:
    if len(t_s) < 3 or np.ptp(t_s) == 0:
        return 0.0
    return float(np.polyfit(t_s, mib, 1)[0] * 3600.0)


def soak(bundle: Path, seconds: float, *, audio: str = "pulse", fault_every_s: float | None = None,
         outage_s: float = 5.0, bucket_s: float = 60.0, warmup_s: float | None = None, threads: int = 1,
         log=sys.stderr) -> dict:
    from edgeaffect.demo.bench import make_demo_media
    from edgeaffect.demo.live import Demo
    from edgeaffect.device.predict import ExportedModel
    from edgeaffect.machine import machine

    if audio not in ("pulse", "file"):
        raise InputError(f"--audio must be 'pulse' or 'file', given '{audio}'")
    if seconds < 10:
        raise InputError(f"a soak needs at least 10 s, given {seconds:g}")
    warmup = min(30.0, 0.1 * seconds) if warmup_s is None else warmup_s
    schedule = fault_schedule(seconds, fault_every_s, outage_s)
    with tempfile.TemporaryDirectory(prefix="ea-soak-") as tmp:
        tmp = Path(tmp)
        video, wav = make_demo_media(tmp, 20.0, ExportedModel(bundle).adapter)
        cam = FlakyCamera(video) if video is not None else None
        mic = PulseMic(wav, tmp / "pulse") if audio == "pulse" else None
        try:
            demo = Demo(bundle, None if cam is None else str(video), "pulse" if mic else str(wav), duration=seconds,
                        loop=True, video_opener=cam, threads=threads, log=log)
            absent = {d for d, there in (("microphone", mic), ("camera", cam)) if there is None}
            schedule = [e for e in schedule if e[1] not in absent]
            # One row a second, allocated up front: the harness must not grow what it measures.
            samples, injected, done = np.zeros((int(seconds) + 120, 4)), [], threading.Event()
            taken = [0]
            t0 = time.monotonic()

            def monitor():
                pending = list(schedule)
                while not done.is_set():
                    t = time.monotonic() - t0
                    if taken[0] < len(samples):
                        samples[taken[0]] = (t, rss_mib(), demo.live["events"], demo.live["labels"])
                        taken[0] += 1
                    while pending and pending[0][0] <= t:
                        _, device, action = pending.pop(0)
                        if device == "camera":
                            (cam.down.set if action == "unplug" else cam.down.clear)()
                        else:
                            (mic.unplug if action == "unplug" else mic.plug)()
                        injected.append({"t_s": round(t, 3), "device": device, "action": action})
                        print(f"soak: {t:7.1f} s  {device} {action}ged", file=log, flush=True)
                    done.wait(1.0)

            watcher = threading.Thread(target=monitor, name="soak-monitor", daemon=True)
            watcher.start()
            summary = demo.run()
            done.set()
            watcher.join(timeout=5)
        finally:
            if mic is not None:
                mic.close()
    shift = demo.t_start - t0  # the demo's clock starts when run() does; the schedule's before it
    for f in summary["faults"]:
        f["lost_s"] = round(f["lost_s"] + shift, 3)
        f["back_s"] = None if f["back_s"] is None else round(f["back_s"] + shift, 3)
    return report(summary, samples[: taken[0]], injected, bucket_s, warmup, machine(), audio, video is not None)


def steady(t: np.ndarray, labels: np.ndarray, warmup_s: float) -> np.ndarray:
    """The samples RSS growth is measured over: after the warm-up and after the first labelled
    result, since a staged model runs its last stage only once enough segments are in, and that
    first run's allocations are start-up, not growth (all samples when fewer than two are left)."""
    after = (t >= warmup_s) & (labels >= 1)
    if after.sum() < 2:
        after = t >= warmup_s
    return after if after.sum() >= 2 else np.ones_like(t, bool)


def report(summary: dict, samples: list, injected: list, bucket_s: float, warmup_s: float, machine: str,
           audio: str, video: bool) -> dict:
    samples = np.asarray(samples, np.float64).reshape(-1, 4)
    t, rss, events, labels = samples[:, 0], samples[:, 1], samples[:, 2], samples[:, 3]
    after = steady(t, labels, warmup_s)
    buckets = []
    edges = np.arange(0.0, t[-1] + bucket_s, bucket_s) if len(t) else []
    for a, b in zip(edges[:-1], edges[1:]):
        inside = (t >= a) & (t <= b)
        if inside.sum() < 2:
            continue
        buckets.append({"from_s": round(float(a), 1), "to_s": round(float(min(b, t[-1])), 1),
                        "results_per_s": _rate(t[inside], events[inside]),
                        "labelled_per_s": _rate(t[inside], labels[inside]),
                        "rss_mib": round(float(rss[inside][-1]), 2)})
    # Each fault of the run matched to the injection that caused it: outage start -> lost,
    # device given back -> back (recovery: how long after it was back the demo used it again).
    recoveries = []
    faults = list(summary["faults"])
    names = {"camera": "video", "microphone": "microphone"}
    for i, inj in enumerate(injected):
        if inj["action"] != "unplug":
            continue
        plug = next((p for p in injected[i + 1:] if p["device"] == inj["device"] and p["action"] == "plug"), None)
        fault = next((f for f in faults if f["source"] == names[inj["device"]] and f["lost_s"] >= inj["t_s"] - 0.5),
                     None)
        if fault is not None:
            faults.remove(fault)
        row = {"device": inj["device"], "unplugged_s": inj["t_s"], "plugged_s": plug["t_s"] if plug else None,
               "noticed_s": fault["lost_s"] if fault else None, "back_s": fault["back_s"] if fault else None}
        row["detect_s"] = None if fault is None else round(fault["lost_s"] - inj["t_s"], 3)
        row["recover_s"] = (None if fault is None or fault["back_s"] is None or plug is None
                            else round(fault["back_s"] - plug["t_s"], 3))
        row["recovered"] = row["recover_s"] is not None
        recoveries.append(row)
    return {
        "machine": machine, "audio": audio, "video": video, "seconds": round(summary["seconds"], 1),
        "warmup_s": warmup_s, "rss_from_s": round(float(t[after][0]), 1),
        "results": summary["events"], "labels": summary["labels"],
        "results_per_s": summary["processed_per_s"],
        "latency_p50_ms": summary["latency_p50_ms"], "latency_p95_ms": summary["latency_p95_ms"],
        "rss_start_mib": round(float(rss[after][0]), 2), "rss_end_mib": round(float(rss[-1]), 2),
        "rss_max_mib": round(float(rss.max()), 2),
        "rss_growth_mib": round(float(rss[-1] - rss[after][0]), 2),
        "rss_slope_mib_per_h": round(slope_per_hour(t[after], rss[after]), 2),
        "buckets": buckets, "bucket_s": bucket_s, "recoveries": recoveries,
        "unmatched_faults": faults, "notices": summary["notices"],
    }


def _rate(t: np.ndarray, counts: np.ndarray) -> float:
    """Per second over the samples ``t`` of a running count."""
    return float((counts[-1] - counts[0]) / (t[-1] - t[0])) if t[-1] > t[0] else 0.0


def table(r: dict) -> str:
    video = "looped file through a failing camera" if r["video"] else "none (an audio-only model)"
    lines = [f"machine: {r['machine']} (measured); demo soak {r['seconds']:.0f} s, video: {video}, "
             f"audio: {'PulseAudio null sink (looped wav)' if r['audio'] == 'pulse' else 'looped wav'}",
             f"{r['results']} results ({r['results_per_s']:.2f}/s), {r['labels']} labelled; capture-to-label "
             f"p50 {r['latency_p50_ms'] or 0:.1f} ms, p95 {r['latency_p95_ms'] or 0:.1f} ms",
             f"RSS {r['rss_start_mib']:.1f} MiB at {r['rss_from_s']:.0f} s (after the warm-up and the first label) "
             f"-> {r['rss_end_mib']:.1f} MiB at the end (growth {r['rss_growth_mib']:+.1f} MiB, "
             f"slope {r['rss_slope_mib_per_h']:+.1f} MiB/h, max {r['rss_max_mib']:.1f})", "",
             "| from (s) | to (s) | results/s | labelled/s | RSS (MiB) |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {b['from_s']:.0f} | {b['to_s']:.0f} | {b['results_per_s']:.2f} | {b['labelled_per_s']:.2f} "
              f"| {b['rss_mib']:.1f} |" for b in r["buckets"]]
    lines += ["", "| device | unplugged (s) | noticed after (s) | plugged in (s) | used again after (s) |",
              "|---|---:|---:|---:|---:|"]
    for x in r["recoveries"]:
        used = "not recovered" if x["recover_s"] is None else _num(x["recover_s"], 2)
        lines.append(f"| {x['device']} | {x['unplugged_s']:.1f} | {_num(x['detect_s'], 2)} | {_num(x['plugged_s'], 1)} "
                     f"| {used} |")
    return "\n".join(lines)


def _num(v, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"
