"""Wall time of one ``layerib.estimate_mi`` call on 5 000 x 25-d pairs (defaults), with the CPU.

Prints the figure, the CPU model and the threads torch used. Run:
``OMP_NUM_THREADS=1 PYTHONPATH=src python3 benchmarks/bench_estimate_speed.py``.
"""

from __future__ import annotations

import subprocess
import time

import numpy as np
import torch

import layerib


def main() -> None:
    g = np.random.default_rng(0)
    x = g.standard_normal((5000, 25))
    y = 0.6 * x + 0.8 * g.standard_normal((5000, 25))  # MI = -25/2 ln(1 - 0.36) = 5.58 nats
    layerib.estimate_mi(x[:200], y[:200], restarts=1, max_steps=10)  # warm-up (imports, kernels)
    t = time.perf_counter()
    r = layerib.estimate_mi(x, y)
    wall = time.perf_counter() - t
    cpu = next((ln.split(":", 1)[1].strip() for ln in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines()
        if ln.startswith("Model name")), "unknown CPU")
    print(f"estimate_mi on 5000 x 25-d pairs (truth 5.579 nats): {wall:.2f} s wall; {r}")
    print(f"CPU: {cpu}; torch threads: {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
