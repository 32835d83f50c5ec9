"""Paper reproductions: one module per artefact, found through :data:`EXPERIMENTS`.

Each entry runs one reproduction into a folder and returns what it wrote to
``<folder>/<name>.json`` (which carries ``"experiment": name`` and the paper's
numbers beside ours). Every runner takes the same keyword arguments::

    run(out, *, preset="default", data_root=None, download=None, device=None,
        seed=None, force=False, progress=False, argv=None) -> dict

(``table1`` also takes ``seeds``, the number of seeds; ``claim`` requires ``setting``,
the data setting, and takes ``workers``; ``budget`` takes ``workers``.)

``preset`` names a settings bundle of that experiment (``"quick"`` is a
seconds-long smoke test on any data; an unknown name is a ConfigError);
None for the others keeps the preset's value. Reproductions write results
first and draw their figures from the stored files only. The runners import
their modules lazily, so listing the registry costs nothing.
"""

from __future__ import annotations

from typing import Callable


def _budget(out, **kw) -> dict:
    from layerib.experiments.budget import run
    return run(out, **kw)


def _claim(out, **kw) -> dict:
    from layerib.experiments.claim import run
    return run(out, **kw)


def _fig1(out, **kw) -> dict:
    from layerib.experiments.fig1 import run
    return run(out, **kw)


def _fig3(out, **kw) -> dict:
    from layerib.experiments.fig3 import run
    return run(out, **kw)


def _infoplane(out, **kw) -> dict:
    from layerib.experiments.infoplane import run
    return run(out, **kw)


def _infoplane_study(out, **kw) -> dict:
    from layerib.experiments.infoplane_study import run
    return run(out, **kw)


def _ibcurve(out, **kw) -> dict:
    from layerib.experiments.ibcurve import run
    return run(out, **kw)


def _table1(out, **kw) -> dict:
    from layerib.experiments.table1 import run
    return run(out, **kw)


#: name -> runner (see the module doc for the shared signature).
EXPERIMENTS: dict[str, Callable[..., dict]] = {
    "budget": _budget,        # accuracy within a wall-clock budget: ib, iy and ce on the same net, per budget
    "claim": _claim,          # does the bottleneck help? ib vs iy and ce, tuned alike, per --setting
    "fig1": _fig1,            # I(X; L_3 + eps) vs noise variance: MINE, AA-MINE and the Monte-Carlo truth
    "fig3": _fig3,            # t-SNE of layer 1 at beta = 1e2 and 1e-3, with quantisation measures
    "ibcurve": _ibcurve,      # test accuracy and per-layer MI against beta (sweep over seeds), CE baseline
    "infoplane": _infoplane,  # information-plane trajectories, layer-wise IB beside end-to-end CE
    "infoplane-study": _infoplane_study,  # does a layer compress? Saxe et al.'s tanh/ReLU nets, Monte Carlo and AA-MINE
    "table1": _table1,        # Table 1: MNIST 1%, MNIST 100%, CIFAR-10 x {ce, iy, ib} x seeds
}
