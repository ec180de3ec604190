"""What a target bundle adds to an export: the TensorRT op check, calibration data, the
engine build commands, the int8 quantization parameters, and a README for the device."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeaffect import __version__
from edgeaffect.export.targets import Target
from edgeaffect.io import atomic_write_text


def tflite_quantization(path: Path) -> dict:
    """Input / output type, scale and zero point of an int8 TFLite model (what the device needs
    to feed it and read it): float32 with scale 0 where the file quantizes inside its graph, as
    ``tflite-int8`` does."""
    from edgeaffect.runtime.litert import LiteRTRunner

    r = LiteRTRunner(path)
    q = lambda i: {"dtype": i.dtype, "scale": i.scale, "zero_point": i.zero_point}  # noqa: E731
    return {"inputs": {n: q(i) for n, i in r.inputs.items()}, "output": q(r.output)}


def _is_int8_tflite(format_name: str) -> bool:
    """An int8 file LiteRT runs: the device reads its scale and zero point from the manifest."""
    from edgeaffect.export.formats import get_format

    fmt = get_format(format_name)
    return fmt.runtime == "litert" and fmt.precision == "int8"


def time_here(paths: list[Path], runtime: str, budget_s: float = 0.3) -> float:
    """Median ms of one pass through ``paths`` in turn (a chain's stage files), batch 1, one
    thread, on this machine, with the runtime the device uses."""
    import time

    from edgeaffect.runtime import load_runner

    runners = [load_runner(p, runtime, threads=1) for p in paths]
    feeds = [{n: np.zeros(tuple(d if isinstance(d, int) and d > 0 else 1 for d in i.shape), np.float32)
              for n, i in r.inputs.items()} for r in runners]
    times = []
    for _ in range(3):
        for r, f in zip(runners, feeds):
            r.run(f)
    end = time.perf_counter() + budget_s
    while len(times) < 10 or time.perf_counter() < end:
        t0 = time.perf_counter()
        for r, f in zip(runners, feeds):
            r.run(f)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def choose_default(target: Target, candidates: dict[str, list[Path]], runtimes: dict[str, str],
                   predict=None) -> tuple[str, str]:
    """(the target's default format, why): the fastest of the formats that gate, timed here on
    the host target; elsewhere by the calibrated prediction for the target's device where
    ``predict`` (format -> an estimate from that device's published figures of the format's
    own precision, or None) has one for every format, else timed here and said so.

    A Jetson bundle's default is its TensorRT engine's ONNX, set by ``--precision``; the ONNX
    files only run on ONNX Runtime until the engine is built, so they are not raced here.
    """
    from edgeaffect.machine import machine

    names = [f for f in target.formats if f in candidates]
    if not names:
        return target.formats[0], "no format of the target gates: the target's first"
    if target.is_jetson or len(names) == 1:
        return names[0], ("the target's first format that gates (the engine's precision decides on a Jetson)"
                          if target.is_jetson else "the only format that gates")
    ms = {f: time_here(candidates[f], runtimes[f]) for f in names}
    timed = ", ".join(f"{f} {ms[f]:.3f} ms" for f in names)
    here = f"batch 1, one thread, measured on {machine()}: {timed}"
    if target.runs_here:
        return min(names, key=ms.get), f"fastest of the formats that gate, {here}"
    predicted = {f: predict(f) for f in names} if predict is not None else {}
    missing = [f for f in names if predicted.get(f) is None]
    if not missing:
        best = min(names, key=lambda f: predicted[f]["estimate_ms"])
        shown = "; ".join(f"{f} {predicted[f]['estimate_ms']:.3g} ms ({predicted[f]['note']})" for f in names)
        return best, (f"fastest of the formats that gate by the calibrated prediction for {target.device} "
                      f"(estimates, not measurements; a mixed-precision or dynamic-range int8 file is predicted "
                      f"as int8, an optimistic estimate for it): {shown}; for comparison, {here}")
    why = (f"no calibrated prediction for {', '.join(missing)} on {target.device} (no published figures of that "
           f"precision there)" if predict is not None else "no prediction asked for")
    return min(names, key=ms.get), (f"fastest of the formats that gate, {here} -- not on the device ({why}): x86 "
                                    f"timings do not predict an ARM core; `edgeaffect profile` there measures it")


def write_target_files(folder: Path, target: Target, options: dict, files: dict, manifest_inputs: dict,
                       calibration: list[dict], default: tuple[str, str] | None = None) -> dict:
    """Write the target's extra files into ``folder`` (a temp folder, renamed by the caller)
    and return the manifest's ``target`` section."""
    from edgeaffect.export.tensorrt import ONNX_FOR_PRECISION, check_onnx_for_tensorrt, trtexec_command

    section = {"key": target.key, "name": target.name, "device": target.device, "runtime": target.runtime,
               "fallback_runtime": target.fallback_runtime, "install": f"pip install 'edgeaffect[{target.extra}]'",
               "options": options, "default_format": (default or (target.formats[0], ""))[0]}
    if default:
        section["default_reason"] = default[1]
    if target.writer_options:  # what the files were written for (opset, rewritten ops)
        section["writer_options"] = dict(target.writer_options)
    for fmt, entry in files.items():
        if _is_int8_tflite(fmt):
            entry["quantization"] = tflite_quantization(folder / entry["file"])
    if target.is_jetson:
        section.update({"jetpack": target.jetpack, "tensorrt": target.tensorrt})
        for entry in files.values():  # every ONNX file the device may hand to TensorRT
            if entry["file"].endswith(".onnx"):
                check_onnx_for_tensorrt(folder / entry["file"], target.tensorrt, target.key)
        section["tensorrt_ops_checked"] = (f"every ONNX file passes TensorRT {target.tensorrt}'s parser rules "
                                           f"(edgeaffect trt-check --tensorrt {target.tensorrt})")
        # 100 preprocessed training samples: enough for entropy calibration of a small model.
        batch = {name: np.concatenate([c[name] for c in calibration[:100]]).astype(np.float32)
                 for name in calibration[0]}
        with open(folder / "calibration.npz", "wb") as f:
            np.savez(f, **batch)
        precision = options.get("precision", "int8")
        engine = f"model-{precision}.engine"
        section["engine"] = {"file": engine, "precision": precision, "onnx": files[ONNX_FOR_PRECISION[precision]]["file"],
                             "workspace_mib": int(options.get("workspace_mib", 256)),
                             "max_batch": int(options.get("max_batch", 8)),
                             "built_here": False, "note": "engines are built on the device (not portable)"}
        lines = ["#!/bin/sh", "# Build the TensorRT engine on the Jetson itself (engines are not portable).",
                 "# Same as: edgeaffect build-engine . --precision " + precision, "set -e", 'cd "$(dirname "$0")"']
        for p in ("fp16", "int8", "int8-calibrated"):
            cmd = trtexec_command(files[ONNX_FOR_PRECISION[p]]["file"], f"model-{p}.engine", p, manifest_inputs,
                                  workspace_mib=section["engine"]["workspace_mib"],
                                  max_batch=section["engine"]["max_batch"], calibration_cache="calibration.cache",
                                  tensorrt=target.tensorrt)
            lines.append(("" if p == precision else "# ") + cmd)
        if precision == "int8-calibrated":
            lines.insert(5, "# trtexec reads calibration.cache: make it first with `edgeaffect build-engine . "
                            "--precision int8-calibrated` (it runs the calibrator on calibration.npz)")
        atomic_write_text(folder / "trtexec.sh", "\n".join(lines) + "\n")
        (folder / "trtexec.sh").chmod(0o755)
    atomic_write_text(folder / "README.md", bundle_readme(target, section, files))
    return section


def bundle_readme(target: Target, section: dict, files: dict) -> str:
    rows = "\n".join(f"| `{e['file']}` | {fmt} | {e['runtime']} | {e['bytes'] / 1024:.1f} KiB |" for fmt, e in files.items())
    text = [f"# edgeaffect bundle for {target.name}", "",
            f"Made by edgeaffect {__version__}. Every file's SHA-256 is in `manifest.json`; the device runtime "
            "refuses a bundle with a missing or changed file.", "",
            "| file | format | runtime | size |", "|---|---|---|---|", rows, "",
            "## On the device", "", "```sh", section["install"],
            "edgeaffect verify .                      # checksums, manifest version",
            "edgeaffect predict CLIP.mp4 --model .    # label and probabilities",
            "edgeaffect profile . --format " + section["default_format"] + "   # latency on this device",
            "```"]
    if target.is_jetson:
        e = section["engine"]
        text += ["", f"TensorRT {target.tensorrt} comes with JetPack {target.jetpack}: never `pip install tensorrt` "
                 "on a Jetson. Build the engine on the device, then run it:", "", "```sh",
                 f"edgeaffect build-engine . --precision {e['precision']}   # or ./trtexec.sh",
                 "edgeaffect predict CLIP.mp4 --model . --format engine", "```", "",
                 "`int8` uses the symmetric int8 Q/DQ model (`onnx-int8-trt`: explicit quantization, the path "
                 "TensorRT 11 keeps). `int8-calibrated` runs TensorRT's entropy calibrator on `calibration.npz` "
                 "(deprecated since TensorRT 10.1). Until an engine exists, the bundle runs on ONNX Runtime."]
        opsets = sorted({e["onnx_opset"] for e in files.values() if "onnx_opset" in e})
        text += ["", f"The ONNX files are opset {', '.join(map(str, opsets))}, checked against TensorRT "
                 f"{target.tensorrt}'s parser table (`edgeaffect trt-check FILE --tensorrt {target.tensorrt}`)."]
    text += ["", "Latency figures for this device made on another machine are roofline predictions; only "
             "`edgeaffect profile` run on the device measures it."]
    return "\n".join(text) + "\n"
