"""RAVDESS by its real layout: ``Actor_XX/MM-VV-EE-II-SS-RR-AA.(mp4|wav)``.

MM modality (01 audio-video, 02 video-only, 03 audio-only), VV vocal channel
(01 speech, 02 song), EE emotion (01..08), II intensity, SS statement, RR repetition,
AA actor (odd male, even female). A clip is either one 01 mp4 (audio inside), or a
02 mp4 plus the 03 wav of the same utterance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from edgeaffect.errors import InputError

EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
MODALITY = {"01": "audio-video", "02": "video-only", "03": "audio-only"}
_NAME = re.compile(r"^(0[1-3])-(0[12])-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d\d)\.(mp4|wav)$", re.IGNORECASE)


@dataclass(frozen=True)
class RavdessName:
    modality: str
    vocal_channel: str
    emotion: int  # 0-based index into EMOTIONS
    intensity: int
    statement: int
    repetition: int
    actor: int

    @property
    def utterance_key(self) -> tuple:
        return (self.vocal_channel, self.emotion, self.intensity, self.statement, self.repetition, self.actor)

    def filename(self, ext: str) -> str:
        return (f"{self.modality}-{self.vocal_channel}-{self.emotion + 1:02d}-{self.intensity:02d}-"
                f"{self.statement:02d}-{self.repetition:02d}-{self.actor:02d}.{ext}")


def parse_name(name: str) -> RavdessName | None:
    m = _NAME.match(name)
    if not m:
        return None
    mm, vv, ee, ii, ss, rr, aa, _ = m.groups()
    return RavdessName(mm, vv, int(ee) - 1, int(ii), int(ss), int(rr), int(aa))


@dataclass(frozen=True)
class Clip:
    video: Path
    audio: Path  # the same mp4 for modality 01
    label: int
    speaker: str
    name: RavdessName


def find_clips(root: str | Path, vocal_channel: str = "01") -> list[Clip]:
    """All usable clips under ``root`` (recursively), sorted by file name."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset folder not found: {root} (expected RAVDESS 'Actor_XX/' folders)")
    by_key: dict[tuple, dict[str, Path]] = {}
    for path in sorted(root.rglob("*")):
        parsed = parse_name(path.name)
        if parsed is None or parsed.vocal_channel != vocal_channel:
            continue
        by_key.setdefault(parsed.utterance_key, {})[parsed.modality + path.suffix.lower()] = path
    clips = []
    for files in by_key.values():
        if "01.mp4" in files:
            video = audio = files["01.mp4"]
        elif "02.mp4" in files and "03.wav" in files:
            video, audio = files["02.mp4"], files["03.wav"]
        else:
            continue  # audio-only or video-only utterance: AVER needs both
        n = parse_name(video.name)
        clips.append(Clip(video, audio, n.emotion, f"Actor_{n.actor:02d}", n))
    if not clips:
        raise InputError(
            f"no RAVDESS audio-visual clips under {root}: expected Actor_XX/01-01-EE-II-SS-RR-AA.mp4, "
            "or 02-...mp4 with the matching 03-...wav"
        )
    return sorted(clips, key=lambda c: c.video.name)
