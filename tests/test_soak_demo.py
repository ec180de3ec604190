"""The demo soak benchmark, short: 30 s headless from a looped face video and a looped wav
played into a PulseAudio null sink; the microphone is unplugged (the sink's module unloaded)
and plugged in again, then the camera fails and comes back. Both must be used again without
a restart, and memory must stay flat. (`make soak` runs it for 30 minutes.)"""

import json
import shutil

import pytest

from tests.test_cli import cli

# RSS bound after the warm-up: the demo keeps no per-result history (a fixed-size latency
# sample), so 30 s of results must not add more than this (measured: well under 1 MiB).
MAX_GROWTH_MIB = 16.0


def test_short_soak_recovers_microphone_and_camera_with_flat_memory(export_dir, tmp_path):
    pulse = all(shutil.which(t) for t in ("pulseaudio", "pactl", "pacat"))
    audio = "pulse" if pulse else "file"
    out = tmp_path / "soak.json"
    r = cli("soak-demo", export_dir, "--minutes", "0.5", "--audio", audio, "--outage", "4", "--bucket", "5",
            "--max-growth-mib", MAX_GROWTH_MIB, "--json", out, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    rep = json.loads(out.read_text())
    devices = {x["device"]: x for x in rep["recoveries"]}
    assert set(devices) == ({"microphone", "camera"} if pulse else {"camera"})
    for x in devices.values():
        assert x["recovered"] and x["noticed_s"] >= x["unplugged_s"] - 0.5 and x["back_s"] >= x["plugged_s"], x
    assert rep["rss_growth_mib"] < MAX_GROWTH_MIB
    # Results before the faults and after both devices came back.
    assert rep["buckets"][0]["results_per_s"] > 0 and rep["buckets"][-1]["results_per_s"] > 0
    assert "is back" in r.stderr and "stopped" in r.stderr
    if not pulse:
        pytest.skip("pulseaudio / pulseaudio-utils not installed: the microphone part did not run")
