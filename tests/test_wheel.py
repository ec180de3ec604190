"""The wheel a user installs, installed as a user installs it.

It is built from a clean copy of this tree: the files git tracks plus new ones not yet added
and not ignored, as they are on disk (a developer's uncommitted edits count; build outputs,
caches and exports do not). It must hold every file of the package. Installed non-editable
with ``[rpi]`` or ``[jetson]`` into a fresh venv (no TensorFlow, librosa or torch there), it
verifies and runs the device bundles, checks ONNX files against TensorRT's parser rules, and
reads the export targets. ``export --target`` itself fine-tunes (QAT) and verifies against the
Keras model, so on a device install it stops in one line naming ``edgeaffect[train]``; the slow
test runs it from the wheel beside the desktop's packages, and the device installs verify what
it wrote.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.test_cli import cli

ROOT = Path(__file__).resolve().parents[1]
# What a device install must not have: the desktop side's packages.
DESKTOP_ONLY = ("tensorflow", "tf_keras", "librosa", "tf2onnx", "torch")


def tree_files() -> list[str]:
    """The tree's files (relative, POSIX): tracked or new, never ignored, present on disk."""
    r = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"not a git checkout ({r.stderr.strip()}): the clean copy is what git tracks")
    return sorted(f for f in r.stdout.split("\0") if f and os.path.lexists(ROOT / f))


def copy_tree(dest: Path) -> Path:
    for rel in tree_files():
        src, dst = ROOT / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():  # as git keeps it (edgeaffect/roofline/data -> ../../roofline)
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
    return dest


def package_files() -> set[str]:
    """Every file under edgeaffect/ as the wheel names it; a link to a folder stands for the
    tree's files in the folder it points to."""
    files = tree_files()
    out = set()
    for rel in (f for f in files if f.startswith("edgeaffect/")):
        path = ROOT / rel
        if path.is_symlink() and path.is_dir():
            target = path.resolve().relative_to(ROOT).as_posix() + "/"
            out |= {rel + "/" + f[len(target):] for f in files if f.startswith(target)}
        else:
            out.add(rel)
    return out


def clean_env() -> dict:
    """This process's environment without what points Python at this tree or its venv."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}


def run(args, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    # cwd: a folder without this tree in it, so nothing is imported from the checkout.
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=clean_env(), cwd=cwd,
                          timeout=timeout)


def one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2 and "Traceback" not in r.stderr, (r.returncode, r.stderr[-2000:])
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    return line


def build_wheel(work: Path) -> Path:
    """The wheel of a clean copy of this tree (made under ``work``), in ``work``."""
    src = copy_tree(work / "clean-tree")
    # No build isolation: this venv's setuptools builds it, without reaching for an index.
    r = run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", work, src],
            cwd=work)
    assert r.returncode == 0, r.stderr[-3000:]
    shutil.rmtree(src)
    (whl,) = work.glob("edgeaffect-*.whl")
    return whl


class Install:
    """A fresh venv with the wheel installed in it (not editable)."""

    def __init__(self, venv: Path):
        self.venv = venv

    def __call__(self, *args, timeout: int = 300) -> subprocess.CompletedProcess:
        return run([self.venv / "bin" / "edgeaffect", *args], cwd=self.venv, timeout=timeout)

    def python(self, code: str) -> subprocess.CompletedProcess:
        return run([self.venv / "bin" / "python", "-c", code], cwd=self.venv)


def device_install(wheel: Path, extra: str, venv: Path) -> Install:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    r = run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", f"{wheel}[{extra}]"],
            cwd=venv.parent, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return Install(venv)


@pytest.fixture(scope="session")
def rpi_install(wheel, tmp_path_factory) -> Install:
    return device_install(wheel, "rpi", tmp_path_factory.mktemp("rpi") / "venv")


@pytest.fixture(scope="session")
def jetson_install(wheel, tmp_path_factory) -> Install:
    return device_install(wheel, "jetson", tmp_path_factory.mktemp("jetson") / "venv")


def test_the_wheel_holds_every_file_of_the_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(package_files() - names)
    assert not missing, f"not in the wheel (extend [tool.setuptools.package-data] in pyproject.toml): {missing}"
    data = {f for f in package_files() if not f.endswith(".py")}
    assert {"edgeaffect/export/targets.toml", "edgeaffect/export/tensorrt_onnx_ops.toml",
            "edgeaffect/roofline/data/devices.toml", "edgeaffect/families/aver/paper.toml"} <= data


@pytest.mark.parametrize("which", ["rpi_install", "jetson_install"])
def test_a_device_install_has_no_desktop_package_and_runs_from_the_wheel(which, request):
    install = request.getfixturevalue(which)
    check = (f"import importlib.util as u, edgeaffect; print(edgeaffect.__file__); "
             f"print([m for m in {DESKTOP_ONLY!r} if u.find_spec(m)])")
    r = install.python(check)
    where, found = r.stdout.splitlines()
    assert Path(where).is_relative_to(install.venv), where  # the wheel's copy, not this tree
    assert found == "[]", f"a device install has desktop packages: {found}"


def test_fresh_device_only_venv_runs_a_bundle(rpi_install, rpi_bundle, corpus, tmp_path):
    """The wheel with [rpi] in an empty venv (no TensorFlow, librosa, tf2onnx), then verify
    and predict with the bundle; the label matches the desktop's."""
    py = rpi_install.venv / "bin" / "python"
    env = clean_env()
    check = ("import importlib.util as u, sys; bad=[m for m in ('tensorflow','tf_keras','librosa','tf2onnx','onnx') "
             "if u.find_spec(m)]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([str(py), "-c", check], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, f"device venv has desktop packages: {r.stdout}"
    edge = rpi_install.venv / "bin" / "edgeaffect"
    assert subprocess.run([str(edge), "verify", str(rpi_bundle)], capture_output=True, env=env).returncode == 0
    clip = sorted(corpus.rglob("01-01-03-02-*.mp4"))[0]
    r = subprocess.run([str(edge), "predict", str(clip), "--model", str(rpi_bundle), "--json"], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    device = json.loads(r.stdout)
    host = json.loads(cli("predict", clip, "--model", rpi_bundle, "--json").stdout)
    assert device["label"] == host["label"] == "happy"
    for k in host["probabilities"]:  # same wheel, same kernels: identical int8 outputs
        assert abs(device["probabilities"][k] - host["probabilities"][k]) < 1e-6


def test_a_jetson_install_verifies_predicts_and_checks_onnx_for_tensorrt(jetson_install, jetson_bundle, corpus):
    r = jetson_install("verify", jetson_bundle)
    assert r.returncode == 0 and "all checksums match" in r.stdout, r.stderr[-2000:]
    clip = sorted(corpus.rglob("01-01-03-02-*.mp4"))[0]
    r = jetson_install("predict", clip, "--model", jetson_bundle, "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    device = json.loads(r.stdout)
    host = json.loads(cli("predict", clip, "--model", jetson_bundle, "--json").stdout)
    assert device["label"] == host["label"]  # ONNX Runtime (no engine built yet), as on the desktop
    for k in host["probabilities"]:
        assert abs(device["probabilities"][k] - host["probabilities"][k]) < 1e-5
    manifest = json.loads((jetson_bundle / "manifest.json").read_text())
    for entry in manifest["files"].values():  # the parser table ships in the wheel
        r = jetson_install("trt-check", jetson_bundle / entry["file"], "--tensorrt", "10.3")
        assert r.returncode == 0 and "passes TensorRT 10.3" in r.stdout, r.stdout + r.stderr[-2000:]


def test_trt_check_on_a_raspberry_pi_install_names_the_extra(rpi_install, jetson_bundle):
    onnx_file = next(jetson_bundle.glob("*.onnx"))
    assert "pip install 'edgeaffect[jetson]'" in one_line_error(rpi_install("trt-check", onnx_file))


@pytest.mark.parametrize("which", ["rpi_install", "jetson_install"])
def test_export_target_on_a_device_install_reads_the_targets_and_names_the_desktop_extra(which, request,
                                                                                       trained_run, tmp_path):
    install = request.getfixturevalue(which)
    out = tmp_path / "bundle"
    line = one_line_error(install("export", trained_run.folder, "--out", out, "--target", "rpi55"))
    assert "Did you mean 'rpi5'" in line and "jetson-orin-nano" in line  # targets.toml, from the wheel
    # QAT and the verification against the Keras model are the desktop's: one line, nothing written.
    line = one_line_error(install("export", trained_run.folder, "--out", out, "--target", "rpi5"))
    assert "'tensorflow' is not installed" in line and "pip install 'edgeaffect[train]'" in line
    assert not out.exists()


@pytest.fixture(scope="session")
def desktop_install(wheel, tmp_path_factory) -> Install:
    """The wheel alone (no dependencies) in a fresh venv that borrows this venv's packages
    through a .pth line: the desktop side from the wheel without a second TensorFlow install.
    (The line only adds the folder: this venv's editable install of the tree stays out.)"""
    venv = tmp_path_factory.mktemp("desktop") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    r = run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", "--no-deps", wheel],
            cwd=venv.parent)
    assert r.returncode == 0, r.stderr[-3000:]
    install = Install(venv)
    site = Path(install.python("import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "borrowed-desktop-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return install


@pytest.mark.slow
@pytest.mark.parametrize("target, device", [("rpi5", "rpi_install"), ("jetson-orin-nano", "jetson_install")])
def test_export_target_from_the_wheel_then_the_device_install_runs_it(target, device, desktop_install, request,
                                                                     trained_run, corpus, tmp_path):
    where = desktop_install.python("import edgeaffect; print(edgeaffect.__file__)").stdout.strip()
    assert Path(where).is_relative_to(desktop_install.venv), where
    out = tmp_path / target
    r = desktop_install("export", trained_run.folder, "--out", out, "--target", target, "--qat-epochs", "1",
                        timeout=900)
    assert r.returncode == 0 and f"bundle for {target}" in r.stdout, r.stderr[-3000:]
    install = request.getfixturevalue(device)
    r = install("verify", out)
    assert r.returncode == 0 and f"target {target}" in r.stdout, r.stderr[-2000:]
    r = install("predict", sorted(corpus.rglob("01-01-03-02-*.mp4"))[0], "--model", out, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["label"], r.stderr[-2000:]
