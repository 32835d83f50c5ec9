"""The reporting protocol: train a critic on fixed samples, then a held-out average.

A single end-of-training mini-batch value is not an MI estimate (NOTES.md
Sec. 6). :func:`heldout_estimate` averages the plain bound over many held-out
batches and gives its standard error, the batch size B, ln B and a flag when
the estimate exceeds ln B (McAllester & Stratos 2020). :func:`shuffled_baseline`
trains a fresh critic on pairs made independent by shuffling and reports its
held-out estimate, which a sound estimator keeps near 0.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from layerib.mi.estimators import MIEstimator


@dataclass(frozen=True)
class MIResult:
    """A reported MI estimate (all values in nats).

    Attributes:
        value: mean of the plain bound over held-out batches.
        stderr: standard error of that mean (std over batches / sqrt(n_batches)).
        shuffled: held-out estimate of a critic trained on shuffled (independent)
            pairs (:func:`shuffled_baseline`), about 0; None when not computed.
        batch_size: B; ln_batch: ln B, the ceiling a batch estimate can reach.
        n_points: number of held-out samples N used; n_batches: batches averaged.
        noise_var: sigma^2 of the noise added to v, or None.
        bound: name of the bound; exceeds_ln_batch: value > ln B (flagged, not hidden).
    """

    value: float
    stderr: float
    shuffled: float | None
    batch_size: int
    ln_batch: float
    n_points: int
    n_batches: int
    noise_var: float | None
    bound: str
    exceeds_ln_batch: bool

    def to_dict(self) -> dict:
        return asdict(self)


def _noisy(v: torch.Tensor, noise_var: float | None, g: torch.Generator | None) -> torch.Tensor:
    if noise_var is None:
        return v
    eps = torch.randn(v.shape, generator=g, device=v.device, dtype=v.dtype)
    return v + math.sqrt(noise_var) * eps


def _batch_values(est: MIEstimator, u, v, batch_size, noise_var, g) -> torch.Tensor:
    n = (len(u) // batch_size) * batch_size
    out = []
    for s in range(0, n, batch_size):
        out.append(est.value(u[s:s + batch_size], _noisy(v[s:s + batch_size], noise_var, g)))
    return torch.stack(out)


@torch.inference_mode()
def heldout_estimate(est: MIEstimator, u: torch.Tensor, v: torch.Tensor, batch_size: int,
                     noise_var: float | None = None, seed: int = 0) -> MIResult:
    """Average the plain bound over consecutive held-out batches.

    Args:
        est: a trained estimator (its critic is not changed).
        u: ``(N, ...)`` first variable; v: ``(N, ...)`` second variable
            (labels ``(N,)`` for a label critic).
        batch_size: B; ``N // B`` full batches are averaged.
        noise_var: when set, ``v + N(0, noise_var I)`` is used (AA-MINE's L + eps).
        seed: seeds the noise.

    Raises:
        ValueError: fewer than 2 full batches of held-out samples.
    """
    n_batches = len(u) // batch_size
    if n_batches < 2:
        raise ValueError(f"{len(u)} held-out samples give fewer than 2 batches of {batch_size}; "
                         "use a smaller batch size or more samples")
    g = torch.Generator(device=u.device).manual_seed(seed)
    was_training = est.training
    est.eval()
    vals = _batch_values(est, u, v, batch_size, noise_var, g)
    est.train(was_training)
    value = float(vals.mean())
    return MIResult(value=value, stderr=float(vals.std() / math.sqrt(n_batches)),
                    shuffled=None, batch_size=batch_size,
                    ln_batch=math.log(batch_size), n_points=n_batches * batch_size,
                    n_batches=n_batches, noise_var=noise_var, bound=est.bound,
                    exceeds_ln_batch=value > math.log(batch_size))


def train_estimator(est: MIEstimator, u: torch.Tensor, v: torch.Tensor, *, epochs: int,
                    batch_size: int, lr: float = 1e-3, noise_var: float | None = None,
                    seed: int = 0, grad_clip: float | None = None) -> list[float]:
    """Fit the estimator's critic on fixed samples by maximising its training objective.

    Args:
        est: the estimator to train (in place).
        u, v: ``(N, ...)`` training samples of the two variables.
        epochs: passes over the samples in random order, batches of ``batch_size``.
        noise_var: when set, fresh noise ``N(0, noise_var I)`` is added to v each batch.

    Returns:
        The plain bound of every training batch (nats): the training curve.
    """
    g = torch.Generator(device=u.device).manual_seed(seed)
    opt = torch.optim.Adam(est.parameters(), lr=lr)
    history = []
    n = len(u)
    bs = min(batch_size, n)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g, device=u.device)
        for s in range(0, n - bs + 1, bs):
            idx = perm[s:s + bs]
            surrogate, value = est.objective(u[idx], _noisy(v[idx], noise_var, g))
            opt.zero_grad(set_to_none=True)
            (-surrogate).backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(est.parameters(), grad_clip)
            opt.step()
            history.append(float(value.detach()))
    return history
