"""The information-plane study's figure: Monte Carlo and AA-MINE side by side, in bits."""

from __future__ import annotations

import math

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

LN2 = math.log(2.0)
_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
            "tab:pink", "tab:gray", "tab:olive", "tab:cyan")


def plot_study(res: dict) -> Figure:
    """One row per method and activation, one column per noise variance and estimator.

    Each panel: every run's (seed's) trajectory of every layer, (I(X; L + eps), I(Y; L))
    in bits, coloured by layer, the last point enlarged. Monte-Carlo columns have every
    snapshot; AA-MINE columns the snapshots it was run at, with its 95 % interval as a
    horizontal bar. Dotted lines: log2 N (the ceiling of X uniform on N test rows) and
    log2 10 (H(Y) of ten balanced classes).

    Args:
        res: what :func:`layerib.experiments.infoplane_study.run` stored (MI in nats).

    Returns:
        The figure (nothing is shown or saved).

    Raises:
        ValueError: a study without runs.
    """
    runs = res.get("runs") or []
    if not runs:
        raise ValueError("the study holds no finished run yet")
    groups = list(dict.fromkeys(f"{r['method']}/{r['activation']}" for r in runs))
    nvs = [f"{v:g}" for v in res["noise_vars"]]
    cols = [(nv, est) for nv in nvs for est in ("mc", "aa")]
    fig = Figure(figsize=(2.9 * len(cols) + 0.4, 2.6 * len(groups) + 0.6), layout="constrained")
    axes = fig.subplots(len(groups), len(cols), squeeze=False, sharey=True)
    titles = {"ce": "CE", "ib": "layer-wise IB"}
    ceiling = res["ln_n_test"] / LN2
    layers_seen: set[int] = set()
    for row, group in zip(axes, groups):
        for ax, (nv, est) in zip(row, cols):
            for r in (r for r in runs if f"{r['method']}/{r['activation']}" == group):
                for k, traj in r["layers"].items():
                    layers_seen.add(int(k))
                    _draw(ax, traj, nv, est, _COLOURS[(int(k) - 1) % len(_COLOURS)])
            ax.axvline(ceiling, color="0.5", ls=":", lw=0.8)
            ax.axhline(math.log2(10), color="0.5", ls=":", lw=0.8)
            method, act = group.split("/")
            name = "Monte Carlo" if est == "mc" else "AA-MINE"
            ax.set_title(f"{titles.get(method, method)}, {act}: {name}, $\\sigma^2$={nv}",
                         fontsize=8)
            ax.set_xlabel(r"$I(X;\,L+\varepsilon)$ [bits]", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        row[0].set_ylabel(r"$I(Y;\,L)$ [bits]", fontsize=8)
    handles = [Line2D([], [], color=_COLOURS[(k - 1) % len(_COLOURS)], marker="o", label=f"layer {k}")
               for k in sorted(layers_seen)]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=8)
    return fig


def _draw(ax, traj: list[dict], nv: str, est: str, colour: str) -> None:
    xs, ys, hs = [], [], []
    for pt in traj:
        x = pt["i_x"][nv]
        if est == "mc":
            xs.append(x["mc_nats"] / LN2)
            hs.append(0.0)
        elif "aa" in x:
            lo, hi = x["aa"]["interval"]
            xs.append(x["aa"]["nats"] / LN2)
            hs.append((hi - lo) / 2 / LN2)
        else:
            continue
        ys.append(pt["i_y"]["nats"] / LN2)
    if not xs:
        return
    ax.plot(xs, ys, "-o", color=colour, lw=0.8, ms=2.5, alpha=0.7)
    if est == "aa":
        ax.errorbar(xs, ys, xerr=hs, fmt="none", ecolor=colour, elinewidth=0.7, alpha=0.7)
    ax.plot(xs[-1:], ys[-1:], "o", color=colour, ms=5, mec="k", mew=0.5)
