#!/bin/sh
# Set up a Raspberry Pi 4 / 5 (Raspberry Pi OS bookworm, 64-bit, Python 3.11) for edgeaffect.
# Usage: sudo ./setup.sh [EDGEAFFECT_SOURCE]   (a wheel, a checkout, or "edgeaffect" from PyPI)
set -eu
SRC="${1:-edgeaffect}"
PREFIX=/opt/edgeaffect
if [ "$(uname -m)" != "aarch64" ]; then
  echo "error: this needs 64-bit Raspberry Pi OS (uname -m = $(uname -m)); ai-edge-litert has no armv7l wheels" >&2
  exit 2
fi
apt-get update
# libportaudio2: sounddevice (microphone); libgl1/libglib2.0-0: OpenCV; v4l-utils: camera checks.
apt-get install -y --no-install-recommends python3-venv python3-pip libportaudio2 libglib2.0-0 libgl1 v4l-utils
python3 -m venv "$PREFIX"
"$PREFIX/bin/pip" install --upgrade pip
"$PREFIX/bin/pip" install "$SRC[rpi,demo]"
"$PREFIX/bin/edgeaffect" --version
echo "installed in $PREFIX. Copy a bundle (edgeaffect export RUN --target rpi5 --out BUNDLE) to /opt/edgeaffect/bundle,"
echo "then: $PREFIX/bin/edgeaffect verify /opt/edgeaffect/bundle"
