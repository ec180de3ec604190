"""Measuring on the user's own device over SSH (issue 28), against a real OpenSSH server on
127.0.0.1 (throwaway host and user keys, only loopback) serving a "device": a fresh venv with
the wheel's [rpi] extra, installed by `edgeaffect device setup`. add / check / setup; bench,
profile and predict `--on`; the measurement kept and used by the budgets; each fault (an
unknown host key, an unreachable device, a link dropped mid-copy, a device without the runtime,
a command that hangs, a full disk) is one line and exit 2 with nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.loopback_device import Relay, Sshd, free_port, why_not

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("edgeaffect-home")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = Sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def device_root(tmp_path_factory):
    # Shell metacharacters in the device's folder: every remote command must quote it.
    return str(tmp_path_factory.mktemp("device") / "lab;$(touch PWNED)")


def ea(home, *args, timeout=600, cwd=None):
    env = {**os.environ, "EDGEAFFECT_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "edgeaffect.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)


def one_line_error(r, *fragments) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-3000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    for f in fragments:
        assert f in line, line
    return line


def add(home, sshd, name, root, *extra, port=None):
    return ea(home, "device", "add", name, "--ssh", f"{sshd.user}@127.0.0.1:{port or sshd.port}", "--kind", "rpi5",
              "--identity", sshd.user_key, "--root", root, *extra)


@pytest.fixture(scope="module")
def lab(home, sshd, device_root, wheel):
    """The device added with its host key pinned by fingerprint, then set up from the wheel."""
    r = add(home, sshd, "lab", device_root, "--host-key-fingerprint", sshd.fingerprint())
    assert r.returncode == 0, r.stderr
    r = ea(home, "device", "setup", "lab", "--wheel", wheel, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ai-edge-litert" in r.stdout, r.stdout
    return "lab"


# --------------------------------------------------------------------------- registering

def test_an_unknown_host_key_is_refused_until_the_user_accepts_it(home, sshd, device_root, tmp_path):
    fresh = tmp_path / "home"
    r = add(fresh, sshd, "lab", device_root)
    line = one_line_error(r, "host key", "not known", sshd.fingerprint(), "--accept-host-key")
    assert not (fresh / "devices.toml").exists(), line
    one_line_error(add(fresh, sshd, "lab", device_root, "--host-key-fingerprint", "SHA256:" + "A" * 43),
                   "refusing it")
    r = add(fresh, sshd, "lab", device_root, "--accept-host-key")
    assert r.returncode == 0, r.stderr
    assert "127.0.0.1" in (fresh / "known_hosts").read_text()
    assert "password" not in (fresh / "devices.toml").read_text().lower().replace("no passwords", "")
    listed = ea(fresh, "device", "list").stdout
    assert "lab" in listed and "rpi5" in listed and str(sshd.port) in listed


@pytest.mark.parametrize("args, fragment", [
    (("a;b", "--ssh", "pi@host", "--kind", "rpi5"), "device name 'a;b'"),
    (("x", "--ssh", "nohost", "--kind", "rpi5"), "expected USER@HOST"),
    (("x", "--ssh", "pi@-oProxyCommand=x", "--kind", "rpi5"), "not a host name"),
    (("x", "--ssh", "pi@host:99999", "--kind", "rpi5"), "port must be"),
    (("x", "--ssh", "pi@host", "--kind", "rpi6"), "did you mean 'rpi5'"),
])
def test_bad_names_addresses_and_kinds_get_one_line(tmp_path, args, fragment):
    one_line_error(ea(tmp_path, "device", "add", *args), fragment)
    assert not (tmp_path / "devices.toml").exists()


def test_an_unreachable_device_is_one_line(home, sshd):
    dead = free_port()
    one_line_error(ea(home, "device", "add", "dead", "--ssh", f"root@127.0.0.1:{dead}", "--kind", "rpi5",
                      "--accept-host-key"), "cannot reach")
    # registered while it was up, now gone: every command says so
    from edgeaffect.remote.registry import Device, load_devices, save_devices

    os.environ["EDGEAFFECT_HOME"] = str(home)
    try:
        devices = load_devices()
        devices["gone"] = Device("gone", sshd.user, "127.0.0.1", dead, "rpi5", identity=str(sshd.user_key))
        save_devices(devices)
    finally:
        del os.environ["EDGEAFFECT_HOME"]
    one_line_error(ea(home, "device", "check", "gone"), "cannot reach gone")
    one_line_error(ea(home, "bench", ROOT, "--on", "gone"), "")  # not an export: checked before any connection
    one_line_error(ea(home, "device", "check", "nosuch"), "no device named 'nosuch'")


# --------------------------------------------------------------------------- check / setup

def test_check_reports_the_device_and_what_it_lacks(home, sshd, device_root):
    add(home, sshd, "fresh", device_root + "-fresh", "--host-key-fingerprint", sshd.fingerprint())
    r = ea(home, "device", "check", "fresh")
    assert r.returncode == 0, r.stderr
    for field in ("reachable", "cpu", "python", "governor", "throttled", "free space"):
        assert field in r.stdout
    assert "edgeaffect   not installed" in r.stdout
    if os.uname().machine not in ("aarch64", "arm64"):
        assert "registered as rpi5" in r.stdout  # an x86 machine called a Pi 5: said, not hidden
    one_line_error(ea(home, "bench", ROOT / "none", "--on", "fresh"), "not an export folder")


def test_setup_installs_the_wheel_and_the_runtime_there(home, lab, device_root):
    r = ea(home, "device", "check", lab, "--json")
    facts = json.loads(r.stdout)["facts"]
    from edgeaffect import __version__

    assert facts["edgeaffect"] == __version__
    assert "ai-edge-litert" in facts["runtimes"]
    assert "tensorflow" not in facts["runtimes"]
    assert Path(device_root, "venv", "bin", "edgeaffect").is_file()
    assert not list(Path(device_root).parent.glob("PWNED")) and not Path.home().joinpath("PWNED").exists()


@pytest.mark.slow
def test_an_offline_device_gets_every_wheel_pushed(home, sshd, wheel, tmp_path):
    """``setup --offline``: the wheels for the device's platform and Python are downloaded here,
    copied there and installed with ``--no-index`` (the device never reaches an index)."""
    root = tmp_path / "offline"
    add(home, sshd, "offline", str(root), "--host-key-fingerprint", sshd.fingerprint())
    r = ea(home, "device", "setup", "offline", "--wheel", wheel, "--offline", timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "downloading the wheels for" in r.stdout and "ai-edge-litert" in r.stdout, r.stdout
    pushed = {p.name.split("-")[0].lower() for p in root.glob("bundles/*/wheels/*.whl")}
    assert {"numpy", "ai_edge_litert", "edgeaffect"} <= pushed, pushed


# --------------------------------------------------------------------------- measuring there

BUDGETS = """
[host.aver-ravdess.tflite-int8]
p50_ms = 50.0
[host.aver-ravdess.onnx-fp32]
p50_ms = 50.0
[rpi5.aver-ravdess.tflite-int8]
p50_ms = {p50}
size_kib = 1000
"""


def test_bench_on_the_device_measures_and_checks_the_budgets(home, lab, export_dir, tmp_path):
    budgets = tmp_path / "budgets.toml"
    budgets.write_text(BUDGETS.format(p50=50.0))
    r = ea(home, "bench", export_dir, "--on", lab, "--budgets", budgets, "--budget", "0.3", "--json", home / "bench.json")
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    assert "measured on lab (" in r.stdout and "4 thread(s)" in r.stdout  # rpi5 deploys with 4 threads
    report = json.loads((home / "bench.json").read_text())
    assert report["measured_on"]["name"] == "lab"
    rows = {x["format"]: x for x in report["rows"]}
    assert rows["tflite-int8"]["p50_ms"] > 0 and Path(rows["tflite-int8"]["path"]).is_relative_to(export_dir)
    lines = {c["budget"] + " " + c["metric"]: c for c in report["budgets"]}
    p50 = lines["rpi5.aver-ravdess.tflite-int8 p50_ms"]
    assert p50["kind"].startswith("measured on lab") and p50["value"] == pytest.approx(rows["tflite-int8"]["p50_ms"],
                                                                                     rel=0.5)
    host = [c for c in report["budgets"] if c["budget"].startswith("host.") and c["metric"] != "size_kib"]
    assert host and all(c["passed"] and ("not this host" in c["detail"] or "not its budget" in c["detail"]) for c in host)
    stored = list((home / "measurements").glob("*.json"))
    assert stored, "the run is kept in the measurement store"
    record = json.loads(stored[-1].read_text())
    assert record["device"]["name"] == "lab" and record["threads"] == 4
    assert {x["sha256"] for x in record["rows"]} >= {rows["tflite-int8"]["sha256"]}
    # the estimate of another model on that kind of device now comes from that device
    def rpi5_int8(where):
        ea(where, "calibrate", "--model", "speechnet-emodb", "--json", where / "cal.json")
        ests = json.loads((where / "cal.json").read_text())["estimates"]
        return [e for e in ests if (e["device"], e["runtime"], e["precision"]) == ("rpi5", "litert", "int8")]

    before = rpi5_int8(tmp_path)
    after = rpi5_int8(home)
    assert not before and len(after) == 1 and "of your own" in after[0]["note"], after
    # a budget the device cannot meet fails the run, on the device's measurement
    budgets.write_text(BUDGETS.format(p50=0.0001))
    r = ea(home, "bench", export_dir, "--on", lab, "--budgets", budgets, "--budget", "0.2")
    assert r.returncode == 1 and "budget exceeded: rpi5.aver-ravdess.tflite-int8 p50_ms" in r.stderr, r.stderr[-2000:]
    assert "measured on lab (" in r.stderr


def test_profile_and_predict_on_the_device(home, lab, export_dir, corpus):
    r = ea(home, "profile", export_dir / "aver-ravdess-tflite-int8.tflite", "--on", lab, "--budget", "0.3")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "measured on lab (" in r.stdout and "p50" in r.stdout
    clip = sorted(corpus.rglob("01-01-03-02-*.mp4"))[0]
    here = ea(home, "predict", clip, "--model", export_dir, "--json")
    there = ea(home, "predict", clip, "--model", export_dir, "--json", "--on", lab)
    assert there.returncode == 0, there.stderr[-3000:]
    a, b = json.loads(here.stdout), json.loads(there.stdout.strip().splitlines()[-1])
    assert a["label"] == b["label"]


# --------------------------------------------------------------------------- faults

def test_a_link_dropped_mid_copy_keeps_nothing_and_the_next_run_starts_clean(home, sshd, lab, device_root,
                                                                             export_dir, tmp_path):
    relay = Relay(sshd.port)
    try:
        r = add(home, sshd, "flaky", device_root, "--host-key-fingerprint", sshd.fingerprint(), port=relay.port)
        assert r.returncode == 0, r.stderr
        copy = tmp_path / "export-copy"  # content the device has not seen: it must be sent
        import shutil

        shutil.copytree(export_dir, copy)
        (copy / "notes.txt").write_text("x" * 300_000)
        before = set(Path(device_root, "bundles").glob("*"))
        relay.cut_after = 150_000  # the probe's connection sends a few kB; the copy's far more
        one_line_error(ea(home, "bench", copy, "--on", "flaky", "--budget", "0.1"), "flaky", "copying")
        assert set(Path(device_root, "bundles").glob("*")) == before, "a cut copy never reaches bundles/"
        relay.cut_after = None
        r = ea(home, "bench", copy, "--on", "flaky", "--budget", "0.1")
        assert r.returncode == 0, r.stderr[-3000:]
        assert not list(Path(device_root, "incoming").glob("*"))
        assert len(set(Path(device_root, "bundles").glob("*")) - before) == 1
    finally:
        relay.close()


def test_a_device_without_the_runtime_refuses_before_copying(home, sshd, wheel, tmp_path, export_dir):
    root = tmp_path / "bare2"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(root / "venv" / "bin" / "python"), "install", "-q",
                    "--no-deps", str(wheel)], check=True, capture_output=True)
    add(home, sshd, "bare2", str(root), "--host-key-fingerprint", sshd.fingerprint())
    one_line_error(ea(home, "bench", export_dir, "--on", "bare2"), "bare2 has none of the runtimes",
                   "ai-edge-litert", "device setup bare2")
    assert not (root / "bundles").exists() or not list((root / "bundles").iterdir())


def test_a_command_that_hangs_is_stopped_there_too(home, lab, export_dir, device_root):
    t0 = time.time()
    one_line_error(ea(home, "bench", export_dir, "--on", lab, "--budget", "60", "--timeout", "4"),
                   "did not finish", "--timeout")
    assert time.time() - t0 < 60
    time.sleep(1)
    ps = subprocess.run(["pgrep", "-f", f"{device_root}/venv/bin/edgeaffect"], capture_output=True, text=True)
    assert ps.stdout.strip() == "", "the remote command was left running"
    assert not list(Path(device_root, "runs").glob("*/bench.json"))


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/proc/mounts").is_file(), reason="a small tmpfs needs root")
def test_a_full_disk_is_one_line_and_nothing_is_left(home, sshd, lab, device_root, export_dir, tmp_path):
    root = tmp_path / "tiny"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(root)], check=True)
    try:
        (root / "venv").symlink_to(Path(device_root) / "venv")  # edgeaffect there, no space for bundles
        add(home, sshd, "tiny", str(root), "--host-key-fingerprint", sshd.fingerprint())
        one_line_error(ea(home, "bench", export_dir, "--on", "tiny"), "tiny has", "MiB free", "free space there")
        assert not list((root / "bundles").glob("*")) if (root / "bundles").exists() else True
    finally:
        subprocess.run(["umount", str(root)], check=False)


# --------------------------------------------------------------------------- the CI example

def ci_script(home, tmp_path, exports, budgets_text, **env):
    """deploy/ci/bench-on-device.sh as a CI job runs it (its own baseline and output folders)."""
    budgets = tmp_path / "ci-budgets.toml"
    budgets.write_text(budgets_text)
    env = {**os.environ, "EDGEAFFECT_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3", "BUDGETS": str(budgets),
           "BASELINE": str(tmp_path / "baseline"), "OUT": str(tmp_path / "out"), "BENCH_SECONDS": "0.2",
           "EDGEAFFECT": f"{sys.executable} -m edgeaffect.cli", **env}
    return subprocess.run(["bash", str(ROOT / "deploy" / "ci" / "bench-on-device.sh"), str(exports)],
                          capture_output=True, text=True, timeout=900, env=env)


@pytest.mark.slow
def test_the_ci_example_gates_on_the_device(home, lab, export_dir, tmp_path):
    r = ci_script(home, tmp_path, export_dir, BUDGETS.format(p50=50.0), DEVICE=lab, DEVICE_SETUP="0")
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    assert list((tmp_path / "baseline").glob("*/manifest.json")), "the first run saves the baseline"
    report = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert report["measured_on"]["name"] == lab
    assert "<testsuite" in (tmp_path / "out" / "bench.xml").read_text()
    assert "rpi5.aver-ravdess.tflite-int8" in (tmp_path / "out" / "bench.md").read_text()
    # the next run: compared with the baseline there, and a budget the device cannot meet fails the job
    r = ci_script(home, tmp_path, export_dir, BUDGETS.format(p50=0.0001), DEVICE=lab, DEVICE_SETUP="0")
    assert r.returncode == 1, (r.stdout[-2000:], r.stderr[-2000:])
    report = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert any(c["metric"] == "latency_vs_baseline" and c["budget"].startswith(f"{lab}.") for c in report["budgets"])
    assert 'failures="0"' not in (tmp_path / "out" / "bench.xml").read_text()


def test_the_ci_example_on_a_runner_that_is_the_device(home, export_dir, tmp_path):
    r = ci_script(home, tmp_path, export_dir, BUDGETS.format(p50=50.0), DEVICE_KIND="rpi5")
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    lines = {c["budget"] + " " + c["metric"]: c for c in json.loads((tmp_path / "out" / "bench.json").read_text())["budgets"]}
    assert lines["rpi5.aver-ravdess.tflite-int8 p50_ms"]["kind"].startswith("measured on ")
    r = ci_script(home, tmp_path, export_dir, BUDGETS.format(p50=50.0), DEVICE_KIND="rpi55")
    one_line_error(r, "unknown device kind 'rpi55'", "did you mean 'rpi5'")
