"""The per-layer MI record shared by :func:`layerib.measure_layers` and :func:`layerib.train_layerwise`."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from layerib.mi.protocol import MIResult


def _mi_result(d: dict | None) -> MIResult | None:
    if d is None:
        return None
    names = {f.name for f in fields(MIResult)}
    return MIResult(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class LayerMI:
    """One layer's information (nats), never a bare number.

    For a deterministic net, I(X; L + eps) with X uniform on the measured rows is a Gaussian
    mixture's MI, which the Monte-Carlo value computes exactly up to its Monte-Carlo error
    (Elad et al. 2019, Eq. 5; :func:`~layerib.mi.ground_truth.mixture_mi`): that is the
    number to read (:attr:`i_x_nats`, printed first); the neural AA-MINE estimate ``i_x``
    is its cross-check.

    Attributes:
        name: the layer's name (``model.named_modules()``) or ``"layer<i>"``; index: 1-based.
        width: size of the flattened output; noise_var: sigma^2 of the measuring noise.
        i_x: I(X; L + eps) by AA-MINE (:class:`~layerib.mi.protocol.MIResult`: value,
            interval, B, ln B, flags): the cross-check.
        i_x_truth, i_x_truth_stderr: the Monte-Carlo I(X; L + eps) for X uniform on the
            held-out inputs and its standard error (Monte-Carlo error).
        i_y: I(Y; L) (:class:`MIResult`), or None without labels.
        output_rms: RMS of the layer's output (I(X; L + eps) depends on it relative to
            ``sqrt(noise_var)``).
        flags: ``negative``, ``exceeds_ln_batch``, ``saturated``, ``off_truth`` (more than
            10 % from a truth below ln B - 1, and the 95 % interval, widened by two of the
            truth's standard errors, misses it), ``truth_beyond_ln_batch`` (as far from a truth
            of ln B - 1 or more, which batches of B rows cannot certify), ``non_finite``, and
            those of both results (``i_y_`` prefixed); empty when none applies.
        flag_reasons: each flag's one-line reason and remedy (empty for runs written before
            the reasons were stored).

    Example:
        >>> from layerib.mi.result import MIResult
        >>> ix = MIResult(value=4.9, stderr=0.05, shuffled=None, batch_size=180, ln_batch=5.19,
        ...               n_points=180, n_batches=1, noise_var=1.0, bound="dv",
        ...               exceeds_ln_batch=False, critic="mixture")
        >>> print(LayerMI("fc", 2, 10, 1.0, ix, 5.118, 0.01))  # doctest: +NORMALIZE_WHITESPACE
        fc: I(X;L+eps) = 5.118 +- 0.010 nats (Monte Carlo over 180 rows, exact for them;
        neural check 4.900 [4.802, 4.998] (dv, mixture), B=180, ln B=5.19; noise var 1)
    """

    name: str
    index: int
    width: int
    noise_var: float
    i_x: MIResult
    i_x_truth: float
    i_x_truth_stderr: float
    i_y: MIResult | None = None
    output_rms: float | None = None
    flags: tuple[str, ...] = field(default_factory=tuple)
    flag_reasons: dict[str, str] = field(default_factory=dict)

    @property
    def i_x_nats(self) -> float:
        """I(X; L + eps) to read (nats): the Monte-Carlo value, exact on the measured rows."""
        return self.i_x_truth

    @property
    def relative_error(self) -> float:
        """``(estimate - truth) / truth`` of I(X; L + eps) (nan when the truth is 0)."""
        return (self.i_x.value - self.i_x_truth) / self.i_x_truth if self.i_x_truth else math.nan

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        iy = "" if self.i_y is None else (f", I(Y;L) = {self.i_y.value:.3f} "
                                          f"[{self.i_y.low:.3f}, {self.i_y.high:.3f}]")
        flags = f" [{', '.join(self.flags)}]" if self.flags else ""
        base = "" if self.i_x.shuffled is None else f", shuffled {self.i_x.shuffled:.3f}"
        how = f" ({self.i_x.bound}, {self.i_x.critic})" if self.i_x.critic else f" ({self.i_x.bound})"
        return (f"{self.name}: I(X;L+eps) = {self.i_x_truth:.3f} +- {self.i_x_truth_stderr:.3f} nats "
                f"(Monte Carlo over {self.i_x.n_points} rows, exact for them; neural check "
                f"{self.i_x.value:.3f} [{self.i_x.low:.3f}, {self.i_x.high:.3f}]{how}, "
                f"B={self.i_x.batch_size}, ln B={self.i_x.ln_batch:.2f}{base}; noise var "
                f"{self.noise_var:g}){iy}{flags}")


def layer_mi_from_report(r: dict, name: str | None = None) -> LayerMI:
    """A :class:`LayerMI` from one entry of a run's ``result.json`` ``layers`` list."""
    return LayerMI(name=name or r.get("name") or f"layer{r['index']}", index=r["index"],
                   width=r["width"], noise_var=r["noise_var"], i_x=_mi_result(r["i_x"]),
                   i_x_truth=r["i_x_monte_carlo_nats"], i_x_truth_stderr=r["i_x_monte_carlo_stderr"],
                   i_y=_mi_result(r.get("i_y")), output_rms=r.get("output_rms"),
                   flags=tuple(r.get("flags", ())), flag_reasons=dict(r.get("flag_reasons") or {}))
