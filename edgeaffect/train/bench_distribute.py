"""Training-step speed of 2 workers (MultiWorkerMirroredStrategy, two processes on this
machine, loopback) against 1 (one process, no strategy), for one model, the recipe's global
batch, random inputs of the model's shapes (the step's cost does not depend on the values).

    python -m edgeaffect.train.bench_distribute [MODEL] [--rounds 3] [--steps 30]

Rounds alternate 1 worker and 2 workers, so both see the same machine load; the figure is
the median over rounds of (steps/s with 2 workers) / (steps/s with 1). Each process times
its steps after a warm-up epoch (TensorFlow's start-up and tracing excluded). On one machine
the two workers share its cores and one process already uses all of them, so expect about
1x or less here; the design pays off when each worker has its own GPUs or machine.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time


def _worker(model: str, steps: int, strategy: str) -> None:
    import numpy as np

    from edgeaffect.contract import get_model
    from edgeaffect.train import distribute

    with distribute.using(strategy) as dist:
        from edgeaffect.keras_backend import keras

        k, spec = keras(), get_model(model)
        batch = int(getattr(spec.config, "batch_size", 32))
        k.utils.set_random_seed(0)
        with dist.scope():
            m = spec.build_model()
            m.compile(optimizer=k.optimizers.Adam(1e-4), loss="mse")
        rng = np.random.default_rng(0)
        x = {name: rng.random((batch * steps, *shape), np.float32) for name, shape in spec.inputs.items()}
        y = rng.random((batch * steps, *m.output_shape[1:]), np.float32)
        m.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)  # warm-up: tracing, thread pools
        t0 = time.perf_counter()
        m.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
        seconds = time.perf_counter() - t0
        print(json.dumps({"chief": dist.is_chief, "steps_per_s": steps / seconds, "batch": batch,
                          "replicas": dist.replicas}), flush=True)


def free_local_ports(n: int) -> list[int]:
    """``n`` loopback ports free right now (bound, read, released) for a local TF_CONFIG."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _run(model: str, steps: int, workers: int, timeout: float = 600) -> dict:
    cmd = [sys.executable, "-m", "edgeaffect.train.bench_distribute", model, "--steps", str(steps), "--worker"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    if workers == 1:
        procs = [subprocess.Popen([*cmd, "default"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env)]
    else:
        cluster = {"worker": [f"127.0.0.1:{p}" for p in free_local_ports(workers)]}
        procs = [subprocess.Popen([*cmd, "multi-worker"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**env, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                                       "task": {"type": "worker", "index": i}})})
                 for i in range(workers)]
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outs):
        if p.returncode != 0:
            raise SystemExit(f"a benchmark process failed: {err.strip().splitlines()[-1:]}")
    return json.loads(outs[0][0].strip().splitlines()[-1])  # the chief's figure


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a registered model (make bench-distribute names one)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        _worker(a.model, a.steps, a.worker)
        return
    ratios, one, two = [], [], []
    for r in range(a.rounds):
        s1 = _run(a.model, a.steps, 1)
        s2 = _run(a.model, a.steps, 2)
        one.append(s1["steps_per_s"])
        two.append(s2["steps_per_s"])
        ratios.append(s2["steps_per_s"] / s1["steps_per_s"])
        print(f"round {r + 1}: 1 worker {s1['steps_per_s']:.2f} steps/s, 2 workers {s2['steps_per_s']:.2f} steps/s "
              f"(global batch {s1['batch']}), ratio {ratios[-1]:.2f}", flush=True)
    print(f"{a.model}: 2 workers / 1 worker training-step speed: median {statistics.median(ratios):.2f}x over "
          f"{a.rounds} rounds on this machine ({os.cpu_count()} CPUs); 1 worker median "
          f"{statistics.median(one):.2f} steps/s")


if __name__ == "__main__":
    main()
