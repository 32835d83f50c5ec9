"""Progress bars: off when stderr is not a terminal, so logs get no carriage returns."""

from __future__ import annotations

import doctest
import io
import sys

import layerib.utils.progress as progress_mod
from layerib.utils.progress import progress_bar, stderr_is_terminal


class _Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        super().isatty()  # raises ValueError once closed, as a real stream does
        return self._tty


def _run_bar(**kwargs) -> None:
    with progress_bar(total=50, desc="work", mininterval=0, **kwargs) as bar:
        for _ in range(50):
            bar.update()


def test_not_a_terminal_means_disabled_and_no_bytes(monkeypatch):
    err = _Stream(tty=False)
    monkeypatch.setattr(sys, "stderr", err)
    assert not stderr_is_terminal()
    bar = progress_bar(total=5)
    assert bar.disable
    bar.close()
    _run_bar()
    assert err.getvalue() == ""


def test_a_terminal_draws_the_bar(monkeypatch):
    err = _Stream(tty=True)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(progress_mod, "_notebook", lambda: False)
    _run_bar()
    assert "work" in err.getvalue() and "\r" in err.getvalue()


def test_enabled_false_wins_over_a_terminal(monkeypatch):
    err = _Stream(tty=True)
    monkeypatch.setattr(sys, "stderr", err)
    _run_bar(enabled=False)
    assert err.getvalue() == ""


def test_missing_or_closed_stderr_counts_as_not_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", None)
    assert not stderr_is_terminal()
    closed = _Stream(tty=True)
    closed.close()  # io.StringIO.isatty on a closed stream raises ValueError
    monkeypatch.setattr(sys, "stderr", closed)
    assert not stderr_is_terminal()


def test_a_disabled_bar_keeps_the_interface_callers_use():
    bar = progress_bar(total=5, desc="layer 1/3", enabled=False)
    assert bar.desc == "layer 1/3"  # read back to name the refit phase
    bar.set_description(f"{bar.desc} refit")
    bar.reset(total=3)
    bar.update(2)
    bar.close()
    assert bar.total == 3


def test_wraps_an_iterable_and_the_docstring_example_runs():
    assert list(progress_bar(range(4), enabled=False)) == [0, 1, 2, 3]
    failed, attempted = doctest.testmod(progress_mod)[:2]
    assert attempted > 0 and failed == 0
