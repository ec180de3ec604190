"""Capture sources. Each runs in its own thread and never blocks inference: video keeps
only the newest frame (older unread ones are counted as dropped), audio fills a ring
buffer. File sources are paced in real time so a file behaves like a live device (and
can loop). A live device that goes away (a camera unplugged, a microphone whose PulseAudio
source is unloaded) is retried every ``retry_s`` and used again when it comes back; each
loss and recovery is recorded in ``faults``."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from edgeaffect.errors import InputError, MediaError, MissingDependencyError


class AudioRing:
    """The last ``seconds`` of mono float32 audio, written by one thread, read by another."""

    def __init__(self, sample_rate: int, seconds: float = 4.0):
        self.sample_rate = sample_rate
        self._buf = np.zeros(int(sample_rate * seconds), np.float32)
        self._written = 0
        self._lock = threading.Lock()
        self.last_write = 0.0

    def write(self, block: np.ndarray) -> None:
        block = np.asarray(block, np.float32).reshape(-1)[-self._buf.size:]
        with self._lock:
            start = self._written % self._buf.size
            first = min(block.size, self._buf.size - start)
            self._buf[start:start + first] = block[:first]
            self._buf[: block.size - first] = block[first:]
            self._written += block.size
            self.last_write = time.monotonic()

    @property
    def written(self) -> int:
        """Samples written since the start (a position in the stream, for segment numbers)."""
        with self._lock:
            return self._written

    def clear(self) -> None:
        """Silence: a lost device's last audio must not be heard again."""
        with self._lock:
            self._buf[:] = 0.0

    @property
    def capacity(self) -> int:
        """Samples the ring holds."""
        return self._buf.size

    def latest(self, n: int) -> np.ndarray:
        """The newest ``n`` samples (zeros before anything was written)."""
        with self._lock:
            end = self._written % self._buf.size
            idx = (np.arange(end - n, end)) % self._buf.size
            out = self._buf[idx].copy()
            if self._written < n:
                out[: n - self._written] = 0.0
            return out


class Source(threading.Thread):
    """A capture thread with a stop flag, an end flag, its messages (faults, recoveries)
    and a record of every loss: ``faults`` holds {"lost": t, "back": t or None} in
    ``time.monotonic()`` seconds."""

    def __init__(self, name: str, retry_s: float = 0.5):
        super().__init__(name=name, daemon=True)
        self.stop_event = threading.Event()
        self.ended = threading.Event()
        self.message: str | None = None  # the newest message
        self.messages: list[str] = []
        self.faults: list[dict] = []
        self.retry_s = retry_s

    def stop(self) -> None:
        self.stop_event.set()

    def say(self, text: str) -> None:
        self.message = text
        self.messages.append(text)

    def _lost(self, text: str) -> None:
        self.faults.append({"lost": time.monotonic(), "back": None})
        self.say(text)

    def _back(self, text: str) -> None:
        if self.faults and self.faults[-1]["back"] is None:
            self.faults[-1]["back"] = time.monotonic()
            self.say(f"{text} (after {self.faults[-1]['back'] - self.faults[-1]['lost']:.1f} s)")


class VideoSource(Source):
    """A camera (index or device path) or a video file, read with OpenCV. A file ends (or,
    with ``loop``, starts again); a camera that stops delivering is reopened every
    ``retry_s`` until it is back. ``opener`` (target -> capture) replaces
    ``cv2.VideoCapture``: the soak benchmark injects a camera that fails with it."""

    def __init__(self, spec: str, *, loop: bool = False, retry_s: float = 0.5, opener=None):
        super().__init__("video", retry_s)
        import cv2

        self.cv2 = cv2
        self.spec = spec
        self.loop = loop
        self.is_file = Path(spec).is_file() and opener is None
        self.target = int(spec) if spec.isdigit() else spec
        if opener is None and not self.is_file and not spec.isdigit() and not Path(spec).exists():
            raise InputError(f"no camera or video file at '{spec}': give a camera index (0), a device path "
                             "(/dev/video0) or a video file")
        self.opener = opener or cv2.VideoCapture
        self.cap = self.opener(self.target)
        if not self.cap.isOpened():
            raise InputError(f"cannot open camera '{spec}': is it plugged in and not used by another program?")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 1 <= fps <= 240 else 30.0
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._t = 0.0
        self.seq = 0  # frames captured so far

    def _reopen(self) -> bool:
        """Retry the camera until it delivers a frame again (False: stopped meanwhile)."""
        self._lost(f"camera '{self.spec}' stopped delivering frames (unplugged?): retrying every {self.retry_s:g} s")
        self.cap.release()
        while not self.stop_event.wait(self.retry_s):
            cap = self.opener(self.target)
            if cap.isOpened():
                self.cap = cap
                self._back(f"camera '{self.spec}' is back")
                return True
            cap.release()
        return False

    def run(self) -> None:
        period = 1.0 / self.fps
        next_t = time.monotonic()
        while not self.stop_event.is_set():
            ok, frame = self.cap.read()
            if not ok and self.is_file and self.loop and self.seq:
                self.cap.release()  # start the file again (reopening works for every container)
                self.cap = self.opener(self.target)
                ok, frame = self.cap.read()
            if not ok:
                if self.is_file:
                    self.say("video file ended")
                    self.ended.set()
                    break
                if not self._reopen():
                    break
                next_t = time.monotonic()
                continue
            now = time.monotonic()
            with self._lock:
                self._frame, self._t, self.seq = frame, now, self.seq + 1
            if self.is_file:  # pace a file like a live camera
                next_t += period
                time.sleep(max(0.0, next_t - time.monotonic()))
        self.cap.release()

    def latest(self) -> tuple[np.ndarray | None, float, int]:
        with self._lock:
            return self._frame, self._t, self.seq


class FileAudioSource(Source):
    """A wav (or any file with audio) played into the ring in real time, block by block."""

    def __init__(self, path: str, block_s: float = 0.02, loop: bool = False):
        super().__init__("audio-file")
        from edgeaffect.media import read_audio

        self.y, sr = read_audio(path)
        self.ring = AudioRing(sr)
        self.block = max(1, int(sr * block_s))
        self.loop = loop and self.y.size > 0

    def run(self) -> None:
        sr, t0, played = self.ring.sample_rate, time.monotonic(), 0
        while True:
            for i in range(0, self.y.size, self.block):
                if self.stop_event.is_set():
                    return
                block = self.y[i:i + self.block]
                self.ring.write(block)
                played += block.size
                time.sleep(max(0.0, t0 + played / sr - time.monotonic()))
            if not self.loop:
                break
        self.say("audio file ended: continuing with silence")
        self.ended.set()


class MicSource(Source):
    """A sounddevice input stream (a device index or name; None = the default input)."""

    def __init__(self, device: str | None, sample_rate: int = 16000, block_s: float = 0.02, retry_s: float = 0.5,
                 stall_s: float = 2.0, open_grace_s: float = 10.0):
        super().__init__("microphone", retry_s)
        try:
            import sounddevice as sd
        except ImportError:
            raise MissingDependencyError("sounddevice is not installed: pip install 'edgeaffect[demo]' "
                                         "(and apt install libportaudio2)") from None
        except OSError as exc:  # PortAudio library missing
            raise MissingDependencyError(f"PortAudio is missing ({exc}): apt install libportaudio2") from None
        self.sd = sd
        self.ring = AudioRing(sample_rate)
        self.overflows = 0
        self.name_shown = device if device is not None else "(default)"
        self.stall_s, self.open_grace_s = stall_s, open_grace_s
        self._open_args = dict(device=int(device) if device is not None and str(device).isdigit() else device,
                               channels=1, samplerate=sample_rate, dtype="float32",
                               blocksize=int(sample_rate * block_s), callback=self._callback)
        try:
            self.stream = sd.InputStream(**self._open_args)
        except Exception as exc:  # sounddevice raises PortAudioError / ValueError for a bad device
            raise MediaError(f"cannot open microphone {self.name_shown}: {str(exc).splitlines()[0]}") from None

    def _callback(self, data, frames, time_info, status) -> None:
        if status.input_overflow:
            self.overflows += 1
        self.ring.write(data[:, 0])

    def _close(self) -> None:
        try:
            self.stream.close()
        except Exception:  # a stream whose device vanished may fail to close; it is gone either way
            pass

    def _healthy(self, started: float) -> bool:
        """Active and delivering (a stream can stay "active" with no callbacks once its source is gone)."""
        if not self.stream.active:
            return False
        if self.ring.last_write < started:  # opened, nothing yet: PulseAudio can take seconds to start
            return time.monotonic() - started < self.open_grace_s
        return time.monotonic() - self.ring.last_write < self.stall_s

    def run(self) -> None:
        try:
            self.stream.start()
        except Exception:
            pass  # not delivering: handled below as a loss
        started = time.monotonic()
        while not self.stop_event.wait(0.1):
            if self._healthy(started):
                if self.faults and self.faults[-1]["back"] is None and self.ring.last_write > self.faults[-1]["lost"]:
                    self._back(f"microphone {self.name_shown} is back")
                continue
            if not self.faults or self.faults[-1]["back"] is not None:
                self._lost(f"microphone {self.name_shown} stopped (unplugged?): continuing with silence, "
                           f"retrying every {self.retry_s:g} s")
            self._close()
            self.ring.clear()
            while not self.stop_event.wait(self.retry_s):
                try:
                    self.stream = self.sd.InputStream(**self._open_args)
                except Exception:  # still gone
                    continue
                try:
                    self.stream.start()
                    break
                except Exception:
                    self._close()
            started = time.monotonic()
        self._close()
