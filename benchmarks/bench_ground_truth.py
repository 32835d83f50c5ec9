"""Time the Monte-Carlo MI reference and the KDE bounds at N = 10000 points, d = 1000.

Run: ``PYTHONPATH=src python benchmarks/bench_ground_truth.py [--threads 2]``.
Features are those of a random two-layer tanh MLP on Gaussian inputs, so the
values are typical of a real layer; the figures printed are wall-clock seconds.
"""

from __future__ import annotations

import argparse
import time

import torch

from layerib.mi.ground_truth import kde_mi_bounds, mixture_mi


def _features(n: int, d: int, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(50, d), torch.nn.Tanh(), torch.nn.Linear(d, d), torch.nn.Tanh())
    with torch.no_grad():
        return net(torch.randn(n, 50))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="number of points N")
    parser.add_argument("--d", type=int, default=1000, help="feature dimension d")
    parser.add_argument("--samples", type=int, default=2000, help="Monte-Carlo samples")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    feats = _features(args.n, args.d, seed=0)
    print(f"N={args.n} d={args.d} threads={torch.get_num_threads()} torch={torch.__version__}")
    for noise_var in (10.0, 1.0, 0.1):
        start = time.perf_counter()
        mc = mixture_mi(feats, noise_var, n_samples=args.samples, generator=torch.Generator().manual_seed(0))
        t_mc = time.perf_counter() - start
        start = time.perf_counter()
        lower, upper = kde_mi_bounds(feats, noise_var)
        t_kde = time.perf_counter() - start
        print(f"noise_var={noise_var:g}: mixture_mi {mc.value:.4f} +- {mc.stderr:.4f} nats "
              f"({args.samples} samples) in {t_mc:.2f} s; kde bounds [{lower:.4f}, {upper:.4f}] "
              f"in {t_kde:.2f} s")


if __name__ == "__main__":
    main()
