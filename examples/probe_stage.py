"""Probe one or two layer stages of IB training step by step (issue 15, item 3).

Re-runs :func:`layerib.ib.layerwise.train_layer`'s two update schemes on MNIST (default 1 %)
for layers 1..K of the 784-512-512-10 MLP, and every ``--every`` steps prints the layer's
output statistics on the batch (``mean``: RMS of the batch-mean vector, i.e. the shared
offset; ``std``: RMS over units of the per-unit std; ``dead``: units zero on the whole
batch) and the gradient norms, w.r.t. the layer's weights, of the two terms of the
Lagrangian (``|dIy|`` and ``|b dIx|``), with ``off``: the share of ``dIy/dL`` along the
batch-mean direction of L (what makes the offset grow).

    OMP_NUM_THREADS=1 LAYERIB_DATA_ROOT=/work/shared/data PYTHONPATH=$PWD/src \\
        python3 examples/probe_stage.py --beta 1e-2 --update alternating --layers 2 [--y-input-norm rms]
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from layerib.config import TrainConfig
from layerib.ib.layerwise import forward_cached
from layerib.ib.objective import IBObjective
from layerib.runs.training import build_net
from layerib.runs.training import load_data
from layerib.utils.optim import adam


def _stats(l: torch.Tensor) -> dict:
    m = l.mean(0)
    return {"mean": float(m.pow(2).mean().sqrt()), "std": float(l.var(0).mean().sqrt()),
            "dead": float((l.abs().amax(0) == 0).float().mean())}


def probe(cfg: TrainConfig, update: str, layers: int, every: int, steps: int, **obj_kw):
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    train, _ = load_data(cfg)
    x, y = train.images, train.labels
    net = build_net(cfg, tuple(x.shape[1:]))
    prior = torch.bincount(y, minlength=train.num_classes).float() / len(y)
    h = x
    for i, layer in enumerate(net.layers[:layers], start=1):
        obj = IBObjective(net.feature_dims[i - 1], prior, cfg.beta, cfg.noise_var,
                          cfg.critic_hidden, cfg.ema_rate, cfg.x_critic, cfg.x_marginal,
                          cfg.x_bound, cfg.y_bound, cfg.y_critic, **obj_kw)
        opt_c, opt_l = adam(obj.critic_parameters(), cfg.lr_critic), adam(layer.parameters(), cfg.lr_layer)
        params = list(layer.parameters())
        bs, perm, start = cfg.batch_size, None, 0
        for step in range(1, steps + 1):
            if perm is None or start + bs > len(h):
                perm, start = torch.randperm(len(h), generator=g), 0
            idx = perm[start:start + bs]
            start += bs
            hb, yb = h[idx], y[idx]
            l = layer(hb).flatten(1)
            z = l + obj.sample_noise(l, g)
            if update == "alternating":
                sy, _, _ = obj.critic_objective(l, yb, z)
                opt_c.zero_grad()
                (-sy).backward()
                opt_c.step()
                obj.requires_grad_(False)
            iy = obj.i_y.value(l, yb)
            ix = obj.i_x_value(l, z)
            if step % every == 0 or step == 1:
                gy = torch.autograd.grad(iy, [l] + params, retain_graph=True)
                gx = torch.autograd.grad(cfg.beta * ix, params, retain_graph=True)
                dl, mdir = gy[0], l.detach().mean(0)
                mdir = mdir / mdir.norm().clamp_min(1e-30)
                off = float((dl.sum(0) @ mdir).abs() / dl.sum(0).norm().clamp_min(1e-30))
                ny = float(torch.cat([t.flatten() for t in gy[1:]]).norm())
                nx = float(torch.cat([t.flatten() for t in gx]).norm())
                s = _stats(l.detach())
                print(f"L{i} step {step:4d} update={update} Iy {float(iy.detach()):.3f} Ix {float(ix.detach()):.4f} "
                      f"mean {s['mean']:.3g} std {s['std']:.3g} dead {s['dead']:.2f} "
                      f"|dIy| {ny:.3g} |b dIx| {nx:.3g} off {off:.2f}", flush=True)
            lag = iy - cfg.beta * ix
            opt_l.zero_grad()
            if update == "joint":
                opt_c.zero_grad()
            (-lag).backward()
            opt_l.step()
            if update == "joint":
                opt_c.step()
            obj.requires_grad_(True)
        h = forward_cached(layer, h)
        layer.requires_grad_(False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--beta", type=float, default=1e-2)
    ap.add_argument("--update", choices=("joint", "alternating"), default="alternating")
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fraction", type=float, default=0.01)
    ap.add_argument("--y-input-norm", default="none", help="none, rms or standard (LabelCritic)")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = dataclasses.replace(TrainConfig(train_fraction=a.fraction), beta=a.beta, seed=a.seed)
    probe(cfg, a.update, a.layers, a.every, a.steps, y_input_norm=a.y_input_norm)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
