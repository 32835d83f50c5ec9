"""The heap helpers: what they ask glibc for (a stand-in C library records the calls)."""

from __future__ import annotations

import pytest

import layerib.utils.memory as memory


class _FakeLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


def test_prompt_heap_release_sets_then_fixes_the_threshold_and_trims(monkeypatch):
    lib = _FakeLibc()
    monkeypatch.setattr(memory, "_libc", lambda: lib)
    with memory.prompt_heap_release():
        assert lib.calls == [("mallopt", -3, 1 << 20)]  # M_MMAP_THRESHOLD = 1 MiB inside
    assert lib.calls[1:] == [("mallopt", -3, 32 << 20), ("malloc_trim", 0)]
    lib.calls.clear()
    with pytest.raises(KeyError):  # an error inside still leaves the threshold fixed
        with memory.prompt_heap_release(4096):
            raise KeyError("x")
    assert lib.calls == [("mallopt", -3, 4096), ("mallopt", -3, 32 << 20), ("malloc_trim", 0)]


def test_without_glibc_nothing_is_called(monkeypatch):
    monkeypatch.setattr(memory, "_libc", lambda: None)
    with memory.prompt_heap_release():
        pass
    memory.release_free_memory()


def test_the_report_releases_promptly_only_for_large_layers(monkeypatch):
    """measure_layer uses prompt_heap_release when the test features reach
    HEAP_RELEASE_BYTES (float32), and not below; the entry is the same either way."""
    import contextlib

    import torch

    import layerib.ib.report as report
    used = []

    @contextlib.contextmanager
    def recorder():
        used.append(1)
        yield

    monkeypatch.setattr(report, "prompt_heap_release", recorder)
    g = torch.Generator().manual_seed(0)
    f = torch.relu(torch.randn(300, 6, generator=g))
    y = (f[:, 0] > 0.5).long()
    kw = dict(restarts=1, baseline=False, max_steps=40, eval_every=20, eval_batch_size=50)
    small = report.measure_layer(f[:200], y[:200], f[200:], y[200:], 1.0, mc_samples=64, **kw)
    assert used == []
    monkeypatch.setattr(report, "HEAP_RELEASE_BYTES", 100 * 6 * 4)  # exactly the test rows
    big = report.measure_layer(f[:200], y[:200], f[200:], y[200:], 1.0, mc_samples=64, **kw)
    assert used == [1] and big == small
