"""Plot functions: one per figure; each takes stored results and returns a matplotlib Figure.

Figures are built with :class:`matplotlib.figure.Figure` directly, never
through ``pyplot``: no GUI backend is touched, nothing is shown, and saving
uses the Agg canvas, so everything runs headless. Nothing here trains or
estimates; callers read run folders (:mod:`layerib.analysis.runs`) and pass
the values in.
"""

from layerib.plotting.curves import plot_training_curves
from layerib.plotting.fig3 import plot_tsne_panels
from layerib.plotting.ibcurve import plot_ib_curve
from layerib.plotting.infoplane import plot_information_plane

__all__ = ["plot_ib_curve", "plot_information_plane", "plot_training_curves", "plot_tsne_panels"]
