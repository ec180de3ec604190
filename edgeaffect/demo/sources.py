"""Capture sources. Each runs in its own thread and never blocks inference: video keeps
only the newest frame (older unread ones are counted as dropped), audio fills a ring
buffer. File sources are paced in real time so a file behaves like a live device."""

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
    """A capture thread with a stop flag, an end flag and one message slot for faults."""

    def __init__(self, name: str):
        super().__init__(name=name, daemon=True)
        self.stop_event = threading.Event()
        self.ended = threading.Event()
        self.message: str | None = None

    def stop(self) -> None:
        self.stop_event.set()


class VideoSource(Source):
    """A camera (index or device path) or a video file, read with OpenCV."""

    def __init__(self, spec: str):
        super().__init__("video")
        import cv2

        self.cv2 = cv2
        self.spec = spec
        self.is_file = Path(spec).is_file()
        target = int(spec) if spec.isdigit() else spec
        if not self.is_file and not spec.isdigit() and not Path(spec).exists():
            raise InputError(f"no camera or video file at '{spec}': give a camera index (0), a device path "
                             "(/dev/video0) or a video file")
        self.cap = cv2.VideoCapture(target)
        if not self.cap.isOpened():
            raise InputError(f"cannot open camera '{spec}': is it plugged in and not used by another program?")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 1 <= fps <= 240 else 30.0
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._t = 0.0
        self.seq = 0  # frames captured so far

    def run(self) -> None:
        period = 1.0 / self.fps
        next_t = time.monotonic()
        while not self.stop_event.is_set():
            ok, frame = self.cap.read()
            if not ok:
                self.message = ("video file ended" if self.is_file
                                else f"camera '{self.spec}' stopped delivering frames (unplugged?)")
                self.ended.set()
                break
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

    def __init__(self, path: str, block_s: float = 0.02):
        super().__init__("audio-file")
        from edgeaffect.media import read_audio

        self.y, sr = read_audio(path)
        self.ring = AudioRing(sr)
        self.block = max(1, int(sr * block_s))

    def run(self) -> None:
        sr, t0 = self.ring.sample_rate, time.monotonic()
        for i in range(0, self.y.size, self.block):
            if self.stop_event.is_set():
                return
            self.ring.write(self.y[i:i + self.block])
            time.sleep(max(0.0, t0 + (i + self.block) / sr - time.monotonic()))
        self.message = "audio file ended: continuing with silence"
        self.ended.set()


class MicSource(Source):
    """A sounddevice input stream (a device index or name; None = the default input)."""

    def __init__(self, device: str | None, sample_rate: int = 16000, block_s: float = 0.02):
        super().__init__("microphone")
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
        dev = int(device) if device is not None and str(device).isdigit() else device
        try:
            self.stream = sd.InputStream(device=dev, channels=1, samplerate=sample_rate, dtype="float32",
                                         blocksize=int(sample_rate * block_s), callback=self._callback)
        except Exception as exc:  # sounddevice raises PortAudioError / ValueError for a bad device
            raise MediaError(f"cannot open microphone {device if device is not None else '(default)'}: "
                             f"{str(exc).splitlines()[0]}") from None

    def _callback(self, data, frames, time_info, status) -> None:
        if status.input_overflow:
            self.overflows += 1
        self.ring.write(data[:, 0])

    def run(self) -> None:
        with self.stream:
            while not self.stop_event.wait(0.1):
                if not self.stream.active:
                    self.message = "microphone stopped (unplugged?): continuing video-only with silence"
                    self.ended.set()
                    return
