"""Critics T(u, v) -> R for the variational MI bounds.

Every critic offers ``scores(u, v)`` on aligned pairs, shape ``(batch,)``, and
``pair_scores(u, v)`` on all pairs, shape ``(batch_u, batch_v)`` with entry
``[k, j] = T(u_k, v_j)``; the diagonal of a square one holds the joint pairs.

* :class:`ConcatCritic`: an MLP on ``[u, v]`` (MINE's critic, Belghazi et al.
  2018). Its first layer is split as ``W_u u + W_v v``, so all pairs cost one
  broadcast add, not ``batch^2`` MLP inputs (still ``batch^2 * hidden`` work).
* :class:`SeparableCritic`: ``g(u) . h(v)`` (Poole et al. 2019, Sec. 2).
* :class:`GaussianNoiseCritic`: ``s (u . v - ||u||^2 / 2)`` plus learnt terms,
  the form of the optimal critic when ``v = u + eps``; all pairs by matmuls.
* :class:`LabelCritic`: :class:`ConcatCritic` on ``(l, onehot(y))`` with
  ``class_scores(l)`` giving T(l, c) for every class, for I(Y; L_i).
"""

from __future__ import annotations


import torch
from torch import nn


def _mlp(dims: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class ConcatCritic(nn.Module):
    """MLP critic ``T(u, v) = MLP([u, v])`` (Belghazi et al. 2018).

    Args:
        dim_u, dim_v: feature sizes of u ``(batch, dim_u)`` and v ``(batch, dim_v)``.
        hidden: width of the hidden layers.
        depth: number of hidden layers (>= 1).
    """

    def __init__(self, dim_u: int, dim_v: int, hidden: int = 256, depth: int = 1):
        super().__init__()
        self.in_u = nn.Linear(dim_u, hidden)
        self.in_v = nn.Linear(dim_v, hidden, bias=False)
        self.head = _mlp([hidden] * depth + [1])


    def scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Scores on aligned pairs ``(u_k, v_k)``: shape ``(batch,)``."""
        return self.head(torch.relu(self.in_u(u) + self.in_v(v))).squeeze(-1)

    def pair_scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Scores on all pairs: ``(batch_u, batch_v)``, entry ``[k, j] = T(u_k, v_j)``."""
        h = torch.relu(self.in_u(u).unsqueeze(1) + self.in_v(v).unsqueeze(0))
        return self.head(h).squeeze(-1)


class SeparableCritic(nn.Module):
    """Separable critic ``T(u, v) = g(u) . h(v)`` with MLPs g, h (Poole et al. 2019).

    Args:
        dim_u, dim_v: feature sizes; hidden: MLP width; embed: output size of g and h.
        energy: also feed g and h the row's log energy ``log(mean_i a_i^2 + 1e-3)``: a
            shared scale (Student-t pairs) is then one input, not a function the MLP must
            find from few samples (0.50 instead of 0.11 nats against 0.71 on a 10-d pair, N = 5000).
    """

    def __init__(self, dim_u: int, dim_v: int, hidden: int = 256, embed: int = 32,
                 energy: bool = False):
        super().__init__()
        self.energy = energy
        self.g = _mlp([dim_u + energy, hidden, embed])
        self.h = _mlp([dim_v + energy, hidden, embed])

    def _in(self, a: torch.Tensor) -> torch.Tensor:
        if not self.energy:
            return a
        return torch.cat([a, torch.log(a.pow(2).mean(-1, keepdim=True) + 1e-3)], -1)

    def scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Scores on aligned pairs: ``(batch,)``."""
        return (self.g(self._in(u)) * self.h(self._in(v))).sum(-1)

    def pair_scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Scores on all pairs: ``(batch_u, batch_v)``."""
        return self.g(self._in(u)) @ self.h(self._in(v)).T


class GaussianNoiseCritic(nn.Module):
    """Critic for ``I(U; U + eps)``, ``eps ~ N(0, sigma^2 I)`` with known sigma^2.

    ``T(u, v) = (u . v - ||u||^2 / 2) / sigma^2 + q(v)``,
    ``q(v) = -sum_k P_k v_k^2 / 2 + b . v + f(v)``

    with learnable ``0 <= P_k <= 1 / sigma^2``, ``b`` and an MLP f. The optimal
    DV critic for this pair is ``log p(v | u) - log p(v) + c``, which is exactly
    the first term plus a function of v alone, ``-||v||^2 / (2 sigma^2) - log p(v)``:
    q learns it. Were p(v) Gaussian with diagonal covariance C and mean m, q
    would be ``-sum_k (1/sigma^2 - 1/C_k) v_k^2 / 2 - (m_k / C_k) v_k``; P and b
    start there, from the first training batch's statistics (never an evaluation batch).

    Why this form (our choice; the paper's AA-MINE critic is an MLP,
    :class:`ConcatCritic`): the noise is ours, so its law is known; the only
    unknown is the density of v. All ``batch^2`` pairs cost one matrix
    product. And when a layer is trained to *minimise* the estimate, u enters
    only through the exact Gaussian term, so the layer cannot drive the bound
    to -inf by exploiting a fixed critic's behaviour in u (it can only make
    ``F_i(x)`` of different x closer, i.e. compress).

    Args:
        dim: size of u and v ``(batch, dim)``.
        noise_var: sigma^2 (> 0).
        hidden: width of the MLP f.
        standardize_f: feed f ``(v - mean) / std`` of the first training batch instead of
            the raw v, whose scale is sigma (False: the trainer's pinned behaviour).
    """

    def __init__(self, dim: int, noise_var: float = 1.0, hidden: int = 256,
                 standardize_f: bool = False):
        super().__init__()
        self.register_buffer("scale", torch.tensor(1.0 / noise_var))
        self.quad_logit = nn.Parameter(torch.zeros(dim))
        self.lin = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialised", torch.tensor(False))
        self.standardize_f = standardize_f
        self.register_buffer("f_shift", torch.zeros(dim), persistent=False)
        self.register_buffer("f_scale", torch.ones(dim), persistent=False)
        self.f = _mlp([dim, hidden, 1])

    @torch.no_grad()
    def initialise(self, v: torch.Tensor) -> None:
        """Start P and b at the Gaussian fit of ``v`` ``(batch, dim)`` (a training batch).

        Called by :meth:`v_term` on the first *training* batch (module in train mode, grad
        enabled); an evaluation batch never initialises, so evaluating before training
        leaves the training unchanged. With ``standardize_f`` the MLP f also sees
        ``(v - mean) / std`` of this batch (its input is then of scale 1 whatever sigma is).
        """
        s = float(self.scale)
        var = v.var(0).clamp_min(1e-12) if len(v) > 1 else torch.full_like(v[0], 1.0 / s)
        frac = (1.0 - 1.0 / (s * var)).clamp(0.01, 0.99)
        self.quad_logit.copy_(torch.log(frac / (1 - frac)))
        self.lin.copy_(-v.mean(0) / var)
        if self.standardize_f:
            self.f_shift.copy_(v.mean(0))
            self.f_scale.copy_(var.sqrt())
        self.initialised.fill_(True)

    def v_term(self, v: torch.Tensor) -> torch.Tensor:
        """q(v): the part of the score that depends on v alone, ``(batch,)``."""
        if (not bool(self.initialised) and self.training and torch.is_grad_enabled()
                and not torch.is_inference_mode_enabled()):
            self.initialise(v.detach())
        p = self.scale * torch.sigmoid(self.quad_logit)
        f_in = (v - self.f_shift) / self.f_scale if self.standardize_f else v
        return -0.5 * (v.pow(2) * p).sum(-1) + v @ self.lin + self.f(f_in).squeeze(-1)

    def scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Scores on aligned pairs: ``(batch,)``."""
        return self.scale * ((u * v).sum(-1) - 0.5 * u.pow(2).sum(-1)) + self.v_term(v)

    def gauss_pair_scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The exact Gaussian part of the scores on all pairs, without q(v): ``(batch_u, batch_v)``.

        ``(u_k . v_j - ||u_k||^2 / 2) / sigma^2``. Normalising each column ``j`` over
        ``k`` (InfoNCE over u) gives the same bound as :meth:`pair_scores`, since
        q(v_j) is constant in each column; it skips the MLP.
        """
        return self.scale * (u @ v.T - 0.5 * u.pow(2).sum(-1, keepdim=True))

    def pair_scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Scores on all pairs: ``(batch_u, batch_v)``."""
        return self.gauss_pair_scores(u, v) + self.v_term(v).unsqueeze(0)


#: How a label critic reads L (``LabelCritic(input_norm=...)``): as it is, divided by the
#: batch's RMS, or batch-centred and divided by its RMS spread.
INPUT_NORMS = ("none", "rms", "standard")


def normalise_batch(l: torch.Tensor, mode: str = "rms", eps: float = 1e-12) -> torch.Tensor:
    """``l`` ``(batch, dim)`` over the batch: ``"rms"``: ``l / sqrt(mean ||l_k||^2)``;
    ``"standard"``: ``(l - mean) / sqrt(mean ||l_k - mean||^2)``; ``"none"``: ``l``.

    Differentiable (the statistics are not detached), so a critic reading it is invariant to
    a rescaling of all of ``l`` (and, for ``"standard"``, to a shift): a layer can neither
    raise I(Y; L) by growing its output nor lose it by shrinking it. All-zero rows stay zero.
    """
    if mode == "none":
        return l
    if mode == "standard":
        l = l - l.mean(0, keepdim=True)
    elif mode != "rms":
        raise ValueError(f"input_norm must be one of {', '.join(INPUT_NORMS)}, got {mode!r}")
    return l / (l.pow(2).sum(-1).mean() + eps).sqrt()


class MapPool(nn.Module):
    """A label critic's view of a conv layer's output: each channel averaged over a grid.

    Reads flattened maps ``(batch, C * H * W)`` as ``(batch, C, H, W)`` and averages each
    channel over ``min(k, H) x min(k, W)`` cells (``torch.nn.functional.adaptive_avg_pool2d``),
    giving ``(batch, C * min(k, H) * min(k, W))`` (:attr:`out_dim`). A critic that reads the
    view bounds I(Y; view(L)) <= I(Y; L) (data processing), so its estimate stays a lower bound
    on I(Y; L); the pooling is differentiable, and the layer is trained through it. Our
    addition (the paper's critics read the flattened output; the auxiliary heads of greedy
    layer-wise training, Belilovsky et al. 2019 and Nokland & Eidnes 2019, read pooled maps).

    Args:
        shape: ``(C, H, W)``, one row's map shape; k: grid cells per side (>= 1).

    Raises:
        ValueError: ``shape`` is not three positive sizes, or ``k < 1``.
    """

    def __init__(self, shape: tuple[int, ...], k: int):
        super().__init__()
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3 or min(shape) < 1 or int(k) < 1:
            raise ValueError(f"MapPool needs a (C, H, W) map shape and k >= 1, got {shape} and {k}")
        self.shape, self.grid = shape, (min(int(k), shape[1]), min(int(k), shape[2]))
        self.out_dim = shape[0] * self.grid[0] * self.grid[1]

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        """``(batch, C * H * W)`` -> ``(batch, out_dim)``."""
        return torch.nn.functional.adaptive_avg_pool2d(l.reshape(-1, *self.shape),
                                                       self.grid).flatten(1)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, grid={self.grid}"


def label_view(shape: tuple[int, ...], pool: int) -> MapPool | None:
    """The view a label critic reads for layer outputs of ``shape`` (one row, unflattened):
    :class:`MapPool` when ``pool >= 1`` and the output is a ``(C, H, W)`` map, else None
    (the flattened output; vector outputs are always read as they are)."""
    return MapPool(shape, pool) if pool >= 1 and len(shape) == 3 else None


class LabelCritic(ConcatCritic):
    """Concatenation critic on ``(l, onehot(y))`` for I(Y; L_i) with ``num_classes`` classes.

    ``input_norm`` (:func:`normalise_batch`): ``"none"`` (the paper's critic), ``"rms"`` or
    ``"standard"``: the critic reads l divided by the batch's RMS (and centred), so the
    I(Y; L) estimate and its gradient are invariant to the scale of the layer's output
    (issue 15: read as it is, the layer raises the bound by growing its output, ~30x under
    the alternating update at beta <= 0.1, and the next layer's ReLUs die on that input).
    ``view``: a module applied to l first (:class:`MapPool`; None: l as it is); ``dim_l`` is
    then the size of the view's output.
    """

    def __init__(self, dim_l: int, num_classes: int, hidden: int = 256, depth: int = 1,
                 input_norm: str = "none", view: nn.Module | None = None):
        super().__init__(dim_l, num_classes, hidden, depth)
        self.num_classes = num_classes
        self.input_norm = input_norm
        self.view = view

    def class_scores(self, l: torch.Tensor) -> torch.Tensor:
        """T(l_k, c) for every class c: shape ``(batch, num_classes)``.

        Since ``W_v onehot(c)`` is column c of ``W_v``, this is one broadcast add.
        """
        l = normalise_batch(l if self.view is None else self.view(l), self.input_norm)
        h = torch.relu(self.in_u(l).unsqueeze(1) + self.in_v.weight.T.unsqueeze(0))
        return self.head(h).squeeze(-1)

    def scores(self, l: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores on aligned pairs ``(l_k, y_k)``; ``y`` is int64 ``(batch,)``."""
        return self.class_scores(l).gather(1, y.unsqueeze(1)).squeeze(1)

    def pair_scores(self, l: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores ``(batch_l, batch_y)`` for int64 labels ``y``."""
        return self.class_scores(l)[:, y]


class LabelHeadsCritic(nn.Module):
    """Critic for I(Y; L_i) with one output per class: ``T(l, c) = MLP(l)_c``.

    The optimal critic for a discrete Y is ``log p(c | l) - log p(c)`` + const, a
    function of l per class, which an MLP with ``num_classes`` outputs represents
    directly (the Barber-Agakov / classifier form). Same interface as
    :class:`LabelCritic`; all class scores cost one MLP pass, ``(batch, hidden)``
    activations instead of :class:`LabelCritic`'s ``(batch, num_classes, hidden)``
    (its broadcast add, ReLU and their gradients dominated the profile of an IB
    layer stage). Our addition; the paper's critic is the concatenation MLP.

    Args:
        dim_l: size of l ``(batch, dim_l)`` (of its view's output with ``view``);
        num_classes: C; hidden: MLP width; depth: number of hidden layers;
        input_norm, view: as :class:`LabelCritic`'s.
    """

    def __init__(self, dim_l: int, num_classes: int, hidden: int = 256, depth: int = 1,
                 input_norm: str = "none", view: nn.Module | None = None):
        super().__init__()
        self.num_classes = num_classes
        self.input_norm, self.view = input_norm, view  # as LabelCritic's
        self.net = _mlp([dim_l] + [hidden] * depth + [num_classes])

    def class_scores(self, l: torch.Tensor) -> torch.Tensor:
        """T(l_k, c) for every class c: shape ``(batch, num_classes)``."""
        return self.net(normalise_batch(l if self.view is None else self.view(l), self.input_norm))

    def scores(self, l: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores on aligned pairs ``(l_k, y_k)``; ``y`` is int64 ``(batch,)``."""
        return self.class_scores(l).gather(1, y.unsqueeze(1)).squeeze(1)

    def pair_scores(self, l: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores ``(batch_l, batch_y)`` for int64 labels ``y``."""
        return self.class_scores(l)[:, y]


#: I(Y; L) critic by name (``TrainConfig.y_critic``).
LABEL_CRITICS = {"concat": LabelCritic, "heads": LabelHeadsCritic}

