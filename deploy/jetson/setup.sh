#!/bin/sh
# Set up a Jetson (JetPack 6.x) for edgeaffect: a venv that sees JetPack's TensorRT.
# Usage: sudo ./setup.sh [EDGEAFFECT_SOURCE]
set -eu
SRC="${1:-edgeaffect}"
PREFIX=/opt/edgeaffect
python3 -c "import tensorrt" 2>/dev/null || {
  echo "error: TensorRT's Python bindings are missing: sudo apt install nvidia-jetpack (or python3-libnvinfer);" \
       "never pip install tensorrt on a Jetson" >&2; exit 2; }
apt-get install -y --no-install-recommends python3-venv libportaudio2 v4l-utils
# --system-site-packages: the venv uses JetPack's tensorrt module instead of a pip copy.
python3 -m venv --system-site-packages "$PREFIX"
"$PREFIX/bin/pip" install --upgrade pip
"$PREFIX/bin/pip" install "$SRC[jetson,demo]" cuda-python
"$PREFIX/bin/python" -c "import tensorrt; print('TensorRT', tensorrt.__version__)"
echo "Power: sudo nvpmodel -q (mode), sudo nvpmodel -m 0 (max), sudo jetson_clocks (pin clocks) before profiling."
