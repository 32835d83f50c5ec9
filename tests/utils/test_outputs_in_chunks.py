"""outputs_in_chunks: every output of a function on all rows, a chunk at a time."""

import pytest
import torch

from layerib.utils.memory import outputs_in_chunks


def _two(h):
    return [h * 2.0, h.sum(dim=(1, 2), keepdim=True)]


def test_equals_one_pass_for_any_chunk_and_flattens():
    x = torch.randn(37, 3, 4, generator=torch.Generator().manual_seed(0))
    whole = [f.flatten(1) for f in _two(x)]
    for rows in (None, 1, 5, 36, 37, 100):
        got = outputs_in_chunks(_two, x, rows)
        assert [g.shape for g in got] == [(37, 12), (37, 1)]
        assert all(torch.equal(g, w) for g, w in zip(got, whole)), rows  # elementwise: exact


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="at least one row"):
        outputs_in_chunks(_two, torch.empty(0, 3))
    calls = iter([2, 3])
    with pytest.raises(ValueError, match="returned 3 outputs for rows 4.., 2 for the first"):
        outputs_in_chunks(lambda h: [h] * next(calls), torch.zeros(8, 2), 4)
