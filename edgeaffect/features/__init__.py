"""Features: raw audio / frames -> the arrays each model takes. NumPy and OpenCV only;
the librosa reference implementations live in ``*_librosa`` modules (training side)."""
