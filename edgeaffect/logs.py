"""Quiet by default: what TensorFlow, tf2onnx, tfmot and the runtimes print for their own
developers (oneDNN notices, missing-CUDA errors on a CPU machine, AutoGraph and retracing
warnings) is hidden unless ``--verbose`` (or ``EDGEAFFECT_VERBOSE=1``) asks for it.

TensorFlow 2.21 logs from C++ through absl before absl is initialised, so no environment
variable silences it: the command line routes its own stderr through a filter that drops
those lines (by their exact shapes below) and passes everything else through unchanged.
The same filter keeps PortAudio's and ALSA's lines about a vanished microphone away: they are
written to fd 2 by C code, some from PortAudio's own threads, so no Python setting and no
redirection around our own calls could catch them all.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
import threading
import warnings

ENV = "EDGEAFFECT_VERBOSE"
# absl's line prefix: severity, date, time, thread, file:line]
_ABSL = r"[IW]\d{4} [\d:.]+\s+\d+ [\w.]+:\d+\]"
NOISE = re.compile(
    "|".join([
        rf"^{_ABSL}",  # absl INFO / WARNING lines (oneDNN notice, cudart stub, CPU features)
        r"^E\d{4} [\d:. ]+\d+ cuda_\w+\.cc:\d+\]",  # no GPU on this machine: not an error here
        # tf.data graphs from TensorFlow newer than the op registry they run on: harmless, once per fit()
        r"^E\d{4} [\d:. ]+\d+ node_def_util\.cc:\d+\] NodeDef mentions attribute \w+ which is not in the op",
        r"^WARNING: All log messages before absl::InitializeLog\(\) is called",
        r"^To enable the following instructions: .* rebuild TensorFlow",
        r"^INFO: Created TensorFlow Lite .*delegate",
        r"^fully_quantize: \d+, inference_type: \d+",  # the TFLite converter's settings echo
        # A microphone that goes away: PortAudio's failed assertions (printed from its own
        # capture thread too) and ALSA's plugin errors, a few lines every retry; the demo
        # says it in one line of its own.
        r"^Expression '.*' failed in '[^']*src/(hostapi|common|os)/[^']*', line: \d+$",
        r"^ALSA lib [\w./-]+:\d+:\(\w+\) ",
    ])
)
PYTHON_LOGGERS = ("tensorflow", "tf2onnx", "absl", "h5py", "onnxruntime", "numba", "matplotlib")


def verbose() -> bool:
    return os.environ.get(ENV) == "1"


def set_verbose(on: bool) -> None:
    os.environ[ENV] = "1" if on else "0"
    quiet_python()


def quiet_python() -> None:
    """Python-side noise: library loggers and warnings (again after TensorFlow is imported,
    since it sets its own logger up on import)."""
    if verbose():
        for name in PYTHON_LOGGERS:
            logging.getLogger(name).setLevel(logging.INFO)
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("AUTOGRAPH_VERBOSITY", "0")
    for name in PYTHON_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(tensorflow|tf_keras|keras|tensorflow_model_optimization|tf2onnx"
                                             r"|onnxruntime|librosa|h5py)(\.|$)")
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def without_noise(lines: list[bytes], dropped: bool = False) -> tuple[list[bytes], bool]:
    """(the lines that are not noise, whether the last line was dropped). ``dropped``: the
    line before these was. ALSA ends some messages with a newline of their own: the blank
    line right after a dropped line goes with it."""
    kept = []
    for line in lines:
        dropped = bool(NOISE.match(line.decode("utf-8", "replace"))) or (dropped and not line.strip())
        if not dropped:
            kept.append(line)
    return kept, dropped


class _StderrFilter:
    """fd 2 -> a pipe; a thread copies every line that is not noise to the real stderr."""

    def __init__(self):
        self.real = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        # On a pipe Python writes a line's text and its newline apart: a C library's line from
        # another thread (PortAudio's capture thread) could land between them and take the
        # Python line with it. Line buffering writes each line at once.
        if hasattr(sys.stderr, "reconfigure"):
            sys.stderr.reconfigure(line_buffering=True, write_through=False)
        self.thread = threading.Thread(target=self._copy, args=(read,), daemon=True, name="stderr-filter")
        self.thread.start()
        atexit.register(self.close)

    def _copy(self, read: int) -> None:
        with os.fdopen(read, "rb", buffering=0) as pipe, os.fdopen(self.real, "wb", buffering=0, closefd=False) as out:
            pending, dropped = b"", False
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                kept, dropped = without_noise(lines, dropped)
                if kept:
                    out.write(b"\n".join(kept) + b"\n")
            if pending and without_noise([pending], dropped)[0]:
                out.write(pending)

    def close(self) -> None:
        """Restore fd 2 (which closes the pipe) and let the thread write what is left."""
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self.real, 2)
        self.thread.join(timeout=2.0)


_filter: _StderrFilter | None = None


def filter_native_stderr() -> None:
    """Install the stderr filter once, unless verbose. For the command line only: a library
    user's process keeps its file descriptors as they are."""
    global _filter
    if _filter is None and not verbose():
        try:
            _filter = _StderrFilter()
        except OSError:  # no fd 2 (a daemon): nothing to filter
            _filter = None


def quiet_entry_point(verbose_flag: bool = False) -> None:
    """What a ``python -m`` tool does first, as the command line does: verbose when asked (or
    ``EDGEAFFECT_VERBOSE=1``, which the steps it starts inherit), else library noise hidden and
    stderr filtered."""
    set_verbose(verbose_flag or os.environ.get(ENV) == "1")
    filter_native_stderr()
