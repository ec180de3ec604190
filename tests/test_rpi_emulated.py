"""A Raspberry Pi without a Pi: the device install and the rpi bundles on an emulated
bookworm arm64 user-land (qemu-user), as a Pi 4 (Cortex-A72) and a Pi 5 (Cortex-A76).
Time under emulation is printed as such: it says nothing about speed on a real Pi."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.rpi_emulation import ROOT, VENV, elf_load_alignments, run, userland

PAGE_16K = 16384
# Whole-clip predictions also go through mp4 decoding (PyAV / FFmpeg) and OpenCV (Haar,
# resize), whose arm64 and x86 builds take different SIMD paths: the features differ
# slightly. Measured here: 3.8e-4 on a probability. Labels must agree exactly.
CLIP_TOL = 0.02
NO_NETWORK = ("NewConnectionError", "Temporary failure in name resolution", "Could not fetch URL",
              "ConnectTimeoutError", "Network is unreachable")


def test_not_root_is_a_clean_one_line_skip():
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root (to drop to nobody) and setpriv")
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh",
                        str(ROOT / "scripts" / "rpi-userland.sh")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 77 and r.stderr.strip() == "skip: not root (debootstrap, binfmt_misc and chroot need root)"


@pytest.fixture(scope="module")
def rootfs():
    path, why = userland()
    if path is None:
        pytest.skip(why)
    return path


def install_in_userland(rootfs, work_rel: str, wheel: str) -> None:
    """The same install a user types on a Pi: pip install 'edgeaffect[rpi]' (here from this
    checkout's wheel), then this checkout's code over whatever version was there."""
    if not (rootfs / VENV.lstrip("/") / "bin" / "python").exists():
        r = run(rootfs, "rpi4", ["/usr/bin/python3", "-m", "venv", VENV])
        assert r.returncode == 0, r.stderr[-2000:]
    r = run(rootfs, "rpi4", [f"{VENV}/bin/pip", "install", "-q", f"/{work_rel}/{wheel}[rpi]"], timeout=900)
    if r.returncode != 0 and any(m in r.stderr for m in NO_NETWORK):
        pytest.skip("no network to the package index from the emulated Pi: cannot pip install edgeaffect[rpi]")
    assert r.returncode == 0, r.stderr[-2000:]
    r = run(rootfs, "rpi4", [f"{VENV}/bin/pip", "install", "-q", "--force-reinstall", "--no-deps",
                             f"/{work_rel}/{wheel}"])
    assert r.returncode == 0, r.stderr[-2000:]


def build_wheel(work) -> str:
    from tests.test_wheel import build_wheel as clean_wheel  # the wheel of a clean copy of the tree

    return clean_wheel(work).name


def probe_on_pi_and_host(rootfs, work_rel: str, dev: str, clip: str) -> tuple[dict, dict, str]:
    """``probe.py`` on bundle ``dev`` inside the emulated Pi and on this machine: both
    results, and the Pi's stderr (runtime messages)."""
    args = [f"/{work_rel}/{dev}", f"/{work_rel}/inputs.npz", f"/{work_rel}/{clip}"]
    pi = run(rootfs, dev, [f"{VENV}/bin/python", f"/{work_rel}/probe.py", *args])
    assert pi.returncode == 0, pi.stderr[-3000:]
    host = subprocess.run([sys.executable, str(rootfs / work_rel / "probe.py"), *[str(rootfs) + a for a in args]],
                          capture_output=True, text=True, timeout=600)
    assert host.returncode == 0, host.stderr[-3000:]
    return json.loads(pi.stdout), json.loads(host.stdout), pi.stderr


@pytest.mark.slow
def test_rpi_bundles_give_the_same_answers_on_an_emulated_pi(rootfs, trained_run, dataset, corpus, tmp_path):
    from edgeaffect.export.exporter import export_run
    from edgeaffect.export.targets import get_target
    from edgeaffect.train.runs import split_inputs

    work_rel = f"work/edgeaffect-{os.getpid()}"
    work = rootfs / work_rel
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        wheel = build_wheel(work)
        for dev in ("rpi4", "rpi5"):
            export_run(trained_run, dataset, work / dev, target=get_target(dev), qat_epochs=3)
        x, _ = split_inputs(trained_run, dataset, "test")
        np.savez(work / "inputs.npz", **{k: v[:24] for k, v in x.items()})
        clip = sorted(corpus.rglob("01-01-03-02-*.mp4"))[0]
        shutil.copy(clip, work / "clip.mp4")
        shutil.copy(ROOT / "tests" / "rpi_probe.py", work / "probe.py")
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/host-ca.crt")

        install_in_userland(rootfs, work_rel, wheel)

        for dev in ("rpi4", "rpi5"):
            p, h, pi_log = probe_on_pi_and_host(rootfs, work_rel, dev, "clip.mp4")
            assert "XNNPACK delegate" in pi_log, f"{dev}: XNNPACK was not used under emulation: {pi_log[-500:]}"
            assert p["desktop_modules_loaded"] == []
            for fmt in ("tflite-int8", "tflite-fp32"):
                a, b = np.asarray(p[fmt]["raw"]), np.asarray(h[fmt]["raw"])
                # int8: XNNPACK on both sides, same kernels -> identical; allow one output step for
                # kernel-selection differences between x86 and the emulated Arm core. fp32: 1e-5.
                tol = p[fmt]["output_scale"] * 1.0001 if fmt == "tflite-int8" else 1e-5
                assert np.abs(a - b).max() <= tol, f"{dev} {fmt}: max |diff| {np.abs(a - b).max()}"
                assert p[fmt]["label"] == h[fmt]["label"] == "happy"
                clip_diff = max(abs(p[fmt]["probabilities"][k] - v) for k, v in h[fmt]["probabilities"].items())
                assert clip_diff <= CLIP_TOL, f"{dev} {fmt}: whole-clip probabilities differ by {clip_diff}"
                print(f"{dev} {fmt}: same answers as the host (raw max |diff| {np.abs(a - b).max():.2e}, "
                      f"whole clip {clip_diff:.2e}); "
                      f"time UNDER QEMU EMULATION (not a Pi's speed): inference {p[fmt]['inference_s']:.3f} s, "
                      f"clip {p[fmt]['clip_s']:.2f} s")

        site = next((rootfs / VENV.lstrip("/") / "lib").glob("python3*/site-packages"))
        sos = sorted(site.rglob("*.so*"))
        misaligned = {str(s.relative_to(site)): min(al) for s in sos if (al := elf_load_alignments(s)) and min(al) < PAGE_16K}
        litert = [s for s in misaligned if s.startswith("ai_edge_litert")]
        print(f"16 KiB page alignment (Pi 5 kernel): {len(sos) - len(misaligned)} of {len(sos)} .so files aligned; "
              f"not aligned: {sorted(misaligned)[:10]}")
        assert not litert, f"LiteRT libraries would not load on a 16 KiB-page Pi 5 kernel: {litert}"
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.slow
def test_speechnet_rpi_bundle_gives_the_same_answers_on_an_emulated_pi(rootfs, speech_run, speech_dataset,
                                                                       speech_corpus):
    """SpeechNet's fused LSTM, attention and routing through XNNPACK on an emulated Pi 5,
    and its NumPy fusion features from a wav, against the same bundle on this machine."""
    from edgeaffect.export.exporter import export_run
    from edgeaffect.export.targets import get_target

    work_rel = f"work/edgeaffect-speech-{os.getpid()}"
    work = rootfs / work_rel
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        wheel = build_wheel(work)
        export_run(speech_run, speech_dataset, work / "rpi5", target=get_target("rpi5"), qat_epochs=3)
        x, _ = speech_run.split_inputs(speech_dataset, "test")
        np.savez(work / "inputs.npz", **{k: v[:8] for k, v in x.items()})
        shutil.copy(speech_corpus / "wav" / "03a01Wa.wav", work / "clip.wav")
        shutil.copy(ROOT / "tests" / "rpi_probe.py", work / "probe.py")
        install_in_userland(rootfs, work_rel, wheel)
        p, h, _ = probe_on_pi_and_host(rootfs, work_rel, "rpi5", "clip.wav")
        assert p["desktop_modules_loaded"] == []
        for fmt in ("tflite-int8", "tflite-fp32"):
            a, b = np.asarray(p[fmt]["raw"]), np.asarray(h[fmt]["raw"])
            # int8: XNNPACK has no int8 LSTM, so TFLite's own integer LSTM kernel runs, with NEON
            # on Arm and SSE on x86 paths that round differently: measured 3 output steps (0.0096)
            # on a score of 0.71; allowed 5. fp32: 1e-4 (96 LSTM steps, another summation order).
            tol = p[fmt]["output_scale"] * 5.0001 if fmt == "tflite-int8" else 1e-4
            assert np.abs(a - b).max() <= tol, f"rpi5 {fmt}: max |diff| {np.abs(a - b).max()}"
            assert p[fmt]["label"] == h[fmt]["label"]
            wav_diff = max(abs(p[fmt]["probabilities"][k] - v) for k, v in h[fmt]["probabilities"].items())
            assert wav_diff <= max(tol, 1e-3), f"rpi5 {fmt}: whole-utterance scores differ by {wav_diff}"
            print(f"speechnet rpi5 {fmt}: same answers as the host (raw max |diff| {np.abs(a - b).max():.2e}, "
                  f"whole utterance {wav_diff:.2e}, label {p[fmt]['label']}); time UNDER QEMU EMULATION: "
                  f"inference {p[fmt]['inference_s']:.3f} s for 8 utterances, wav {p[fmt]['clip_s']:.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
