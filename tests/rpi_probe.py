"""Run a bundle on fixed inputs with the device runtime only; print JSON. Used on the host
and inside the emulated Raspberry Pi, so both sides run exactly the same code."""

import json
import sys
import time

import numpy as np

from edgeaffect.device.predict import ExportedModel
from edgeaffect.runtime.litert_ops import output_step

bundle, inputs_npz, clip = sys.argv[1:4]
with np.load(inputs_npz) as z:
    x = {k: z[k] for k in z.files}
out = {}
for fmt in ("tflite-int8", "tflite-fp32"):
    m = ExportedModel(bundle, fmt, threads=1)
    t0 = time.perf_counter()
    raw = m.runner.run(x)
    t1 = time.perf_counter()
    pred = m.predict(clip)  # decode, then faces + MFCC (AVER) or the fusion features (SpeechNet): the whole device path
    t2 = time.perf_counter()
    out[fmt] = {"raw": raw.tolist(), "label": pred.label, "probabilities": pred.probabilities,
                "inference_s": t1 - t0, "clip_s": t2 - t1,
                "output_scale": output_step(m.runner.path)}
loaded = [name for name in ("tensorflow", "tf_keras", "librosa", "tf2onnx") if name in sys.modules]
out["desktop_modules_loaded"] = loaded
print(json.dumps(out))
