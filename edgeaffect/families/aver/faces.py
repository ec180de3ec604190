"""Face crops as the audio-visual paper makes them: Haar cascade, grayscale, 64x64.

Two ways to run the same cascade (``FaceConfig.search``):

- ``exhaustive`` (the paper's, and the reference): one ``detectMultiScale`` over the whole
  frame at every scale from the smallest face allowed up; the largest face wins.
- ``largest-first`` (the default, ours, for speed): the same cascade, searched from the
  largest faces down in size bands. Each band runs on a copy of the frame shrunk so the
  band's smallest face is ``coarse_px`` pixels (the cascade needs no more to fire); the
  first band with a face holds the largest face, so the smaller bands (where almost all
  the work of the exhaustive pass goes) are not searched. The box is mapped back to the
  frame's pixels. ``tests/test_faces_fast.py`` holds it to the exhaustive box and the
  labels to the exhaustive path's (see the model card for the tolerances and why).

``track`` finds the face near a known box only: the cascade in a window around it, for
faces of about its size, on the copy the box was found on. A clip's later frames use it
first (``track_ratio`` / ``track_margin``: faces within 1.15x, a window 0.2 face-widths
larger on each side); the live demo uses it between full detections, with the looser
settings its figures in the model card were measured with (1.33x, 0.35).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from edgeaffect._optional import require
from edgeaffect.errors import MediaError, MissingDependencyError

Box = tuple[int, int, int, int]


class NoFaceError(MediaError):
    """No face was found where one is needed."""


@dataclass(frozen=True)
class FaceConfig:
    size: int = 64
    cascade: str = "haarcascade_frontalface_default.xml"
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size_frac: float = 0.1  # smallest face side, as a fraction of the frame's shorter side
    # Speed (ours; the paper says nothing about how the cascade is run):
    search: str = "largest-first"  # or "exhaustive" (one pass over every scale: the reference)
    band_ratio: float = 2.5  # each size band spans faces from hi / band_ratio to hi
    coarse_px: int = 40  # a band's smallest face, in pixels of the copy it is searched on
    # Frames of one clip after the first: look near the previous frame's face first (``track``),
    # the full search only where it is not found. Ignored by the exhaustive search.
    track_frames: bool = True
    # How near: faces 1/track_ratio to track_ratio times the previous one, in a window
    # track_margin face-widths larger on each side. A talking face changes little between
    # frames 1/6 of a clip apart; the cascade's cost is the windows that pass its stages
    # around the face, one set per scale, so fewer scales is what makes the track cheap.
    # A face that moved further is not found there and gets the full search.
    track_ratio: float = 1.15
    track_margin: float = 0.2


@lru_cache(maxsize=4)
def _cascade(name: str):
    cv2 = require("cv2", "device", package="opencv-python-headless")
    path = cv2.data.haarcascades + name
    detector = cv2.CascadeClassifier(path)
    if detector.empty():
        raise MissingDependencyError(f"cannot load the Haar cascade {path}; reinstall 'opencv-python-headless<5'")
    return detector


def to_gray(frame: np.ndarray) -> np.ndarray:
    cv2 = require("cv2", "device", package="opencv-python-headless")
    return frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)


def _min_side(gray: np.ndarray, config: FaceConfig) -> int:
    return max(16, int(min(gray.shape[:2]) * config.min_size_frac))


def _largest(faces) -> Box | None:
    if len(faces) == 0:
        return None
    x, y, w, h = max(faces, key=lambda f: int(f[2]) * int(f[3]))
    return int(x), int(y), int(w), int(h)


def detect_exhaustive(gray: np.ndarray, config: FaceConfig = FaceConfig()) -> Box | None:
    """The paper's pass: the largest face over the whole frame at every scale, or None."""
    side = _min_side(gray, config)
    faces = _cascade(config.cascade).detectMultiScale(
        gray, scaleFactor=config.scale_factor, minNeighbors=config.min_neighbors, minSize=(side, side)
    )
    return _largest(faces)


def _detect_on_copy(gray: np.ndarray, scale: float, lo: float, hi: float, config: FaceConfig,
                    window: Box | None = None) -> Box | None:
    """The largest face with side in [lo, hi] (``gray``'s pixels), searched on ``gray``
    shrunk by ``scale`` (<= 1) -- only inside ``window`` (x0, y0, x1, y1) when given, cut
    from the shrunk copy so its pixels are the full search's -- mapped back."""
    cv2 = require("cv2", "device", package="opencv-python-headless")
    s = min(scale, 1.0)
    small = gray if s >= 1.0 else cv2.resize(gray, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    ox = oy = 0
    if window is not None:
        x0, y0, x1, y1 = window
        ox, oy = int(x0 * s), int(y0 * s)
        small = small[oy:int(np.ceil(y1 * s)), ox:int(np.ceil(x1 * s))]
    win = _cascade(config.cascade).getOriginalWindowSize()
    lo_s = max(int(win[0]), int(lo * s))
    hi_s = max(lo_s + 1, int(np.ceil(hi * s)))
    if lo_s > min(small.shape[:2]):
        return None
    faces = _cascade(config.cascade).detectMultiScale(
        small, scaleFactor=config.scale_factor, minNeighbors=config.min_neighbors, minSize=(lo_s, lo_s),
        maxSize=(hi_s, hi_s))
    box = _largest(faces)
    if box is None:
        return None
    x, y, w, h = box
    return tuple(int(round(v / s)) for v in (x + ox, y + oy, w, h))


# The live tracker's look between searches (frames 1/30 s apart), with which the demo's
# figures in the model card were measured; a clip's frames use FaceConfig's track_* values.
LIVE_RATIO = 1.33
LIVE_MARGIN = 0.35


def track(gray: np.ndarray, box: Box, config: FaceConfig = FaceConfig(), margin: float = LIVE_MARGIN,
          scale: float | None = None, ratio: float = LIVE_RATIO) -> Box | None:
    """The face near ``box``: the cascade in a window ``margin`` box-widths larger on each
    side, for faces 1/ratio to ratio times the box, on the copy shrunk by ``scale`` (the
    one the box was found on; None: the one where the smallest of those faces is
    ``coarse_px`` wide). None when it is not there any more."""
    x, y, w, h = box
    H, W = gray.shape[:2]
    lo = w / ratio
    pad = int(round(margin * w))
    x0, y0, x1, y1 = max(0, x - pad), max(0, y - pad), min(W, x + w + pad), min(H, y + h + pad)
    if x1 - x0 < lo or y1 - y0 < h / ratio:
        return None
    s = scale if scale is not None else config.coarse_px / lo
    return _detect_on_copy(gray, s, lo, ratio * w, config, window=(x0, y0, x1, y1))


def _largest_first(gray: np.ndarray, config: FaceConfig, above: float = 0.0) -> tuple[Box | None, float]:
    """``detect_largest_first`` and its copy's scale; ``above``: only faces wider than that."""
    smallest = max(_min_side(gray, config), int(above))
    hi = float(min(gray.shape[:2]))
    while hi >= smallest:
        lo = max(float(smallest), hi / config.band_ratio)
        # bands overlap by one scale step so a face at a band's edge is seen whole in one of them
        scale = config.coarse_px / lo
        box = _detect_on_copy(gray, scale, lo, hi * config.scale_factor, config)
        if box is not None:
            return box, min(scale, 1.0)
        if lo <= smallest:
            break
        hi = lo
    return None, 1.0


def detect_largest_first(gray: np.ndarray, config: FaceConfig = FaceConfig()) -> Box | None:
    """The largest face, searched by size band from the largest down (module docstring)."""
    return _largest_first(gray, config)[0]


def detect_with_scale(gray: np.ndarray, config: FaceConfig = FaceConfig()) -> tuple[Box | None, float]:
    """``detect_face`` and the scale of the copy it searched (for ``track`` to use again)."""
    if config.search == "largest-first":
        return _largest_first(gray, config)
    return detect_face(gray, config), 1.0


def detect_face(gray: np.ndarray, config: FaceConfig = FaceConfig()) -> Box | None:
    """The largest face as (x, y, w, h), or None, by ``config.search``."""
    if config.search == "exhaustive":
        return detect_exhaustive(gray, config)
    if config.search == "largest-first":
        return detect_largest_first(gray, config)
    raise ValueError(f"unknown face search {config.search!r}: 'largest-first' or 'exhaustive'")


def find_faces(grays: list[np.ndarray], config: FaceConfig = FaceConfig()) -> list[Box | None]:
    """The face in each of a clip's frames (``detect_face``; with ``track_frames``, ``track``
    from the previous frame's face first)."""
    boxes: list[Box | None] = []
    prev, scale = None, 1.0
    for g in grays:
        box = None
        if prev is not None and config.track_frames and config.search != "exhaustive":
            box = track(g, prev, config, margin=config.track_margin, scale=scale, ratio=config.track_ratio)
        if box is None:
            box, scale = detect_with_scale(g, config)
        boxes.append(box)
        prev = box or prev
    return boxes


def crop_face(gray: np.ndarray, box: Box, size: int) -> np.ndarray:
    """Crop ``box`` and resize to size x size (uint8)."""
    cv2 = require("cv2", "device", package="opencv-python-headless")
    x, y, w, h = box
    return cv2.resize(gray[y : y + h, x : x + w], (size, size), interpolation=cv2.INTER_AREA)


class FaceTracker:
    """Faces in a stream of frames (the live demo): ``track`` from the last face, and on
    every ``every``-th frame a search for a face larger than the tracked one (the largest
    face wins, as in the full search); the full search when there is no face yet or the
    track is lost. All on a copy ``width`` pixels wide (the box is mapped back to the
    frame's pixels). ``every=1``: the full search on every frame, no tracking."""

    def __init__(self, config: FaceConfig = FaceConfig(), every: int = 1, width: int | None = None):
        self.config, self.every, self.width = config, max(1, int(every)), width
        self.box: Box | None = None  # on the shrunk copy
        self.scale, self.since = 1.0, 0
        self.detections = self.tracks = 0

    def __call__(self, gray: np.ndarray) -> Box | None:
        cv2 = require("cv2", "device", package="opencv-python-headless")
        f = self.width / gray.shape[1] if self.width and gray.shape[1] > self.width else 1.0
        small = cv2.resize(gray, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else gray
        box = None
        if self.box is not None and self.every > 1:
            box = track(small, self.box, self.config, scale=self.scale)
            if box is not None and self.since + 1 >= self.every:
                # The periodic search: only for a face larger than the tracked one (it would
                # be "the largest face"); the smaller bands, where the search costs, are
                # not searched while the track holds.
                bigger, s = _largest_first(small, self.config, above=LIVE_RATIO * box[2])
                self.detections += 1
                self.since = 0
                if bigger is not None:
                    box, self.scale = bigger, s
            elif box is not None:
                self.since += 1
                self.tracks += 1
        if box is None:
            box, self.scale = detect_with_scale(small, self.config)
            self.since = 0
            self.detections += 1
        self.box = box
        return None if box is None else tuple(int(round(v / f)) for v in box)
