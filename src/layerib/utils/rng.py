"""Random-number-generator state: what a checkpoint saves so that a resumed run is bit-identical."""

from __future__ import annotations

import torch


def rng_state(g: torch.Generator) -> dict:
    """States of the run generator ``g`` and torch's global generators (CPU, CUDA)."""
    state = {"g": g.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(g: torch.Generator, state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    g.set_state(state["g"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
