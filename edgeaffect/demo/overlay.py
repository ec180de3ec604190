"""The on-screen overlay: label, probability bars, FPS, capture-to-label latency, drops."""

from __future__ import annotations

import time

import numpy as np

_last = {"t": None, "fps": 0.0}


def draw(frame: np.ndarray, event: dict, stats: dict, labels) -> int:
    import cv2

    now = time.monotonic()
    if _last["t"] is not None:
        _last["fps"] = 0.9 * _last["fps"] + 0.1 / max(now - _last["t"], 1e-6)
    _last["t"] = now
    img = frame.copy()
    cv2.rectangle(img, (0, 0), (250, 40 + 18 * len(labels)), (0, 0, 0), -1)
    title = event["label"] or event["status"]
    cv2.putText(img, title, (8, 26), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)
    for i, lab in enumerate(labels):
        p = (event["probabilities"] or {}).get(lab, 0.0)
        y = 44 + 18 * i
        cv2.rectangle(img, (90, y - 11), (90 + int(150 * p), y + 3), (0, 200, 0), -1)
        cv2.putText(img, lab, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1)
    info = (f"{_last['fps']:.1f} fps  latency {event['latency_ms']['total']:.0f} ms  "
            f"dropped {stats['dropped_frames']}")
    cv2.putText(img, info, (8, img.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1)
    cv2.imshow("edgeaffect", img)
    return cv2.waitKey(1) & 0xFF
