"""Per-batch data augmentation for image training (CE, and layer-wise training of the first unit)."""

from __future__ import annotations

import torch


def crop_flip(x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random ``pad``-pixel-padded crop and horizontal flip of each image of ``x`` (B, C, H, W).

    The standard CIFAR-10 augmentation (He et al. 2016, Sec. 4.2), zero padding
    (the mean after standardisation); offsets and flips come from ``g``.
    """
    b, _, h, w = x.shape
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b, 1), generator=g, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (b, 1), generator=g, device=x.device)
    rows = (dy + torch.arange(h, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = dx + torch.arange(w, device=x.device)                       # (B, W)
    flip = torch.rand(b, generator=g, device=x.device) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]  # (B, 1, 1, W)
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return xp[bi, ci, rows, cols]


#: augmentation name -> function ``(x (B, C, H, W), g) -> x`` (``TrainConfig.augment``)
AUGMENTATIONS = {"none": None, "crop_flip": crop_flip}
