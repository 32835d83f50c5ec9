"""The numbers the paper reports (Elad et al. 2019), to put beside ours.

Only what the paper's text states; its supplementary material (which holds
the information-plane analysis and all training details) is not available.
"""

from __future__ import annotations

#: Table 1: test accuracy in percent, by (dataset, training fraction) and method
#: (ce: end-to-end cross-entropy; iy: layer-wise I(Y;L) only, beta = 0; ib: layer-wise IB).
TABLE1 = {
    ("mnist", 0.01): {"ce": 85.78, "iy": 85.12, "ib": 86.57},
    ("mnist", 1.0): {"ce": 97.73, "iy": 97.77, "ib": 98.09},
    ("cifar10", 1.0): {"ce": 58.23, "iy": 60.59, "ib": 61.75},
}
#: training-set sizes of those rows (to tell the real data from a stand-in of the same name)
TABLE1_N_TRAIN = {("mnist", 0.01): 600, ("mnist", 1.0): 60000, ("cifar10", 1.0): 50000}


def table1_accuracy(dataset: str, train_fraction: float, method: str,
                    n_train: int | None = None) -> float | None:
    """The paper's Table 1 test accuracy (percent) for this setting, or None if it has none.

    With ``n_train``, a row matches only when the training-set size is the
    paper's too (a small stand-in data set gets None).
    """
    for (ds, frac), row in TABLE1.items():
        if ds == dataset and abs(frac - train_fraction) < 1e-9:
            if n_train is not None and n_train != TABLE1_N_TRAIN[(ds, frac)]:
                return None
            return row.get(method)
    return None
