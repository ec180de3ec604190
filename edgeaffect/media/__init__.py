"""Media in: decode audio and video files into NumPy arrays (no TensorFlow, no librosa)."""

from edgeaffect.media.audio import read_audio, write_wav
from edgeaffect.media.video import read_frames_at, video_info

__all__ = ["read_audio", "write_wav", "read_frames_at", "video_info"]
