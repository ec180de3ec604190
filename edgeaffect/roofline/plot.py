"""Roofline plots (PNG and SVG) per device: the roofs, each model at its intensity with
its attainable performance, and its achieved performance where one was measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeaffect._optional import require
from edgeaffect.io import atomic_path
from edgeaffect.roofline.devices import Device, roofline_bound


def plot_roofline(device: Device, points: list[dict], out_dir: str | Path) -> list[Path]:
    """``points``: {"label", "cost" (ModelCost), "precision", optional "achieved_gflops"}."""
    import matplotlib.pyplot as plt

    fig = roofline_figure(device, points)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for ext in ("png", "svg"):
        path = out_dir / f"roofline-{device.key}.{ext}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=120)
        written.append(path)
    plt.close(fig)
    return written


def roofline_figure(device: Device, points: list[dict]):
    """The figure: roofs, references, each point's attainable and achieved performance (the
    achieved labelled with its share of the roof), the legend beside the axes."""
    require("matplotlib", "train")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bw = device.bandwidth
    fig, ax = plt.subplots(figsize=(11, 4.8))
    x = np.logspace(-2, 4, 400)
    roofs = device.runtime_peaks or {"": device.peaks}
    for j, (runtime, peaks) in enumerate(roofs.items()):
        for precision, peak in sorted(peaks.items(), key=lambda kv: kv[1].value):
            ax.loglog(x, np.minimum(peak.value, x * bw.value), lw=1.6, ls=("-", "--", "-.")[j % 3],
                      label=f"{(runtime + ' ') if runtime else ''}{precision} roof: {peak.value:.4g} "
                            f"GFLOP/s ({peak.basis})")
    for name, ref in device.references.items():
        ax.axhline(ref.value, color="grey", lw=0.8, ls=":")
        ax.text(x[0], ref.value * 1.03, f"{name}: {ref.value:.4g} ({ref.basis}; reference, not a roof)", fontsize=6,
                color="grey")
    for i, p in enumerate(points):
        b = roofline_bound(p["cost"], device, p["precision"], p.get("runtime"))
        color = f"C{(i + 3) % 10}"
        ax.scatter([b.intensity], [b.attainable_gflops], color=color, marker="o", zorder=3,
                   label=f"{p['label']} attainable (bound {b.latency_ms:.3g} ms)")
        if p.get("achieved_gflops"):
            share = p["achieved_gflops"] / b.attainable_gflops if b.attainable_gflops else float("nan")
            ax.scatter([b.intensity], [p["achieved_gflops"]], color=color, marker="x", s=60, zorder=3,
                       label=f"{p['label']} achieved (measured): {share:.0%} of its roof")
            ax.annotate(f"{share:.0%}", (b.intensity, p["achieved_gflops"]), textcoords="offset points",
                        xytext=(6, -10), fontsize=7, color=color)
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("performance (GFLOP/s)")
    ax.set_title(f"{device.name} ({device.compute[:60]}): bandwidth {bw.value:.4g} GB/s ({bw.basis})", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    # beside the axes, never over the points (the achieved ones sit low and to the right)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    return fig
