"""Where a flat list of layers is cut into layer-wise units, and how a unit is described.

Layer-wise training (Elad et al. 2019, Sec. 4) trains and freezes one unit at a time, so
where the units fall changes what is learnt: a unit that ends at a bare convolution hands
the next unit its un-normalised, un-activated output. The rule, for an ``nn.Sequential``
or a list of modules given as the net:

* a parametric layer (``Linear``, ``ConvNd``, or any other module with parameters that is
  not listed below, such as a user's own block or an ``nn.Sequential``) starts a unit;
* normalisation (``BatchNorm*``, ``InstanceNorm*``, ``LayerNorm``, ``GroupNorm``,
  ``RMSNorm``, ``LocalResponseNorm``), activations (``ReLU``, ``PReLU``, ...), pooling,
  dropout, ``Flatten`` / ``Unflatten`` and every other module without parameters join the
  unit before them (those before the first parametric layer join the first unit).

So ``Conv2d, BatchNorm2d, ReLU, MaxPool2d, Conv2d, ...`` gives one unit per block and
``Linear, ReLU, Linear`` gives two.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules import activation, pooling

#: normalisation layers: they join the unit before them even though they have parameters
NORMALISATION: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm1d/2d/3d, SyncBatchNorm, InstanceNorm1d/2d/3d
    nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.LocalResponseNorm)

#: every module type that joins the unit before it (parameters or not)
JOINS_PREVIOUS: tuple[type[nn.Module], ...] = (
    *NORMALISATION,
    *(getattr(activation, n) for n in activation.__all__ if n != "MultiheadAttention"),
    *(getattr(pooling, n) for n in pooling.__all__),
    nn.modules.dropout._DropoutNd,  # Dropout, Dropout1d/2d/3d, AlphaDropout, FeatureAlphaDropout
    nn.Flatten, nn.Unflatten)


def starts_unit(module: nn.Module) -> bool:
    """True when ``module`` starts a new layer-wise unit: it has parameters and is not one of
    :data:`JOINS_PREVIOUS` (a normalisation layer, an activation, pooling, dropout, flatten).

    Example:
        >>> starts_unit(nn.Conv2d(1, 8, 3)), starts_unit(nn.BatchNorm2d(8)), starts_unit(nn.ReLU())
        (True, False, False)
    """
    return not isinstance(module, JOINS_PREVIOUS) and any(True for _ in module.parameters())


def group_units(modules: list[nn.Module]) -> list[nn.Module]:
    """Cut a flat list of modules into layer-wise units by the rule in this module's docstring.

    Args:
        modules: the net's modules in order.

    Returns:
        One module per unit: the module itself when it is alone, else an ``nn.Sequential``
        of the unit's modules (the same objects, not copies).

    Raises:
        ValueError: no module starts a unit (nothing to train).

    Example:
        >>> units = group_units([nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)])
        >>> [describe_unit(u) for u in units]
        ['Linear(4, 8) + ReLU', 'Linear(8, 2)']
    """
    groups: list[list[nn.Module]] = []
    pending: list[nn.Module] = []
    for m in modules:
        if starts_unit(m):
            groups.append(pending + [m])
            pending = []
        elif groups:
            groups[-1].append(m)
        else:
            pending.append(m)
    if not groups:
        raise ValueError("no layer starts a layer-wise unit (a Linear, a ConvNd or another module "
                         "with parameters, not a normalisation layer): there is nothing to train")
    return [g[0] if len(g) == 1 else nn.Sequential(*g) for g in groups]


def _size(k) -> str:
    k = tuple(k) if isinstance(k, (tuple, list)) else (k,)
    return str(k[0]) if len(set(k)) == 1 else str(k)


def describe_unit(module: nn.Module) -> str:
    """A unit in one line: its modules joined by `` + ``, a linear or convolution layer with
    its sizes (``Linear(in, out)``, ``Conv2d(in, out, kernel)``), the others by class name;
    nested ``nn.Sequential`` s are opened.

    Example:
        >>> describe_unit(nn.Sequential(nn.Conv2d(1, 16, 3), nn.BatchNorm2d(16), nn.ReLU(),
        ...                             nn.MaxPool2d(2)))
        'Conv2d(1, 16, 3) + BatchNorm2d + ReLU + MaxPool2d'
    """
    if isinstance(module, nn.Sequential):
        return " + ".join(describe_unit(m) for m in module)
    name = type(module).__name__
    if isinstance(module, nn.Linear):
        return f"{name}({module.in_features}, {module.out_features})"
    if isinstance(module, nn.modules.conv._ConvNd):
        return f"{name}({module.in_channels}, {module.out_channels}, {_size(module.kernel_size)})"
    return name
