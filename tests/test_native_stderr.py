"""Lines C libraries write straight to fd 2 (TensorFlow's start-up, PortAudio's and ALSA's
about a microphone that went away) are hidden by the command line's stderr filter unless
--verbose; Python's own lines, the demo's one line about the device included, always pass."""

import os
import subprocess
import sys

from edgeaffect.logs import without_noise

# As `make soak` printed them while its microphone was unplugged (one retry's worth).
AUDIO_NOISE = [
    "Expression 'alsa_snd_pcm_poll_descriptors_revents( self->pcm, pfds, self->nfds, &revents )' failed in "
    "'src/hostapi/alsa/pa_linux_alsa.c', line: 3665",
    "ALSA lib pcm_pulse.c:758:(pulse_prepare) PulseAudio: Unable to create stream: No such entity",
    "",
    "Expression 'r' failed in 'src/hostapi/alsa/pa_linux_alsa.c', line: 2097",
    "Expression 'PaAlsaStream_Configure( stream, inputParameters, outputParameters, sampleRate, framesPerBuffer, "
    "&inputLatency, &outputLatency, &hostBufferSizeMode )' failed in 'src/hostapi/alsa/pa_linux_alsa.c', line: 2842",
]
DEMO_LINE = "demo: microphone (default) stopped (unplugged?): continuing with silence, retrying every 0.5 s"


def test_portaudio_and_alsa_lines_are_noise_and_the_demos_line_is_not():
    lines = [line.encode() for line in [DEMO_LINE, "", *AUDIO_NOISE, "soak:     9.0 s  microphone unplugged"]]
    kept, dropped = without_noise(lines)
    # The blank line ALSA ends its message with goes with it; one after a kept line stays.
    assert kept == [DEMO_LINE.encode(), b"", b"soak:     9.0 s  microphone unplugged"] and not dropped
    assert without_noise([b"Expression 'x' failed in 'src/hostapi/alsa/pa_linux_alsa.c', line: 1"]) == ([], True)
    assert without_noise([b""], dropped=True) == ([], True)  # across the pipe's reads too
    kept = [b"Expression 'x' failed in my_script.py", b"ALSA lib is great", b"error: no microphone"]
    assert without_noise(kept) == (kept, False)


# A child that writes as the C libraries do (straight to fd 2, from another thread, as
# PortAudio's capture thread does) around a line of Python's own.
CHILD = f"""
import os, sys, threading
from edgeaffect.logs import filter_native_stderr
filter_native_stderr()
noise = {[line.encode() for line in AUDIO_NOISE]!r}
os.write(2, b"\\n".join(noise) + b"\\n")
print({DEMO_LINE!r}, file=sys.stderr, flush=True)
t = threading.Thread(target=os.write, args=(2, noise[0] + b"\\n"))
t.start(); t.join()
"""


def _child_stderr(code: str, verbose: bool = False) -> list[str]:
    env = {**os.environ, "EDGEAFFECT_VERBOSE": "1" if verbose else "0"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stderr.splitlines()


def test_the_audio_librarys_lines_are_hidden_by_default_and_shown_when_verbose():
    assert _child_stderr(CHILD) == [DEMO_LINE]
    assert _child_stderr(CHILD, verbose=True) == [*AUDIO_NOISE, DEMO_LINE, AUDIO_NOISE[0]]


def test_a_c_line_written_while_python_writes_its_own_cannot_split_it():
    """print() writes its text and its newline apart: a C line from another thread in between
    once took the demo's line with it ("soak: ... unpluggedExpression ... failed ...")."""
    head, tail, noise = DEMO_LINE[:20], DEMO_LINE[20:] + "\n", AUDIO_NOISE[0].encode() + b"\n"
    code = f"""
import os, sys
from edgeaffect.logs import filter_native_stderr
filter_native_stderr()
sys.stderr.write({head!r})
os.write(2, {noise!r})
sys.stderr.write({tail!r})
"""
    assert _child_stderr(code) == [DEMO_LINE]
