"""Progress bars that stay quiet where nobody watches: off unless stderr is a terminal.

tqdm redraws its bar with carriage returns; written into a log file or a pipe (a batch job,
``layerib train ... 2> log``) that is about 100 KB of ``\\r`` lines for one run. Every bar in
layerib is made here, so the rule lives in one place.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from tqdm.auto import tqdm


def _notebook() -> bool:
    """True when ``tqdm.auto`` picked the notebook widget (Jupyter): it draws a widget, not ``\\r``."""
    return any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)


def stderr_is_terminal() -> bool:
    """True when ``sys.stderr`` is an interactive terminal (``isatty()``); False for files,
    pipes, captured streams and a missing stderr (``None``, as under ``pythonw``)."""
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # a closed stream
        return False


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None,
                 desc: str | None = None, enabled: bool = True, **kwargs) -> tqdm:
    """A ``tqdm.auto.tqdm`` bar that is disabled unless it has a terminal to draw on.

    The bar is live only when ``enabled`` is True and ``sys.stderr`` is a terminal
    (``isatty()``) or a Jupyter notebook, where ``tqdm.auto`` draws a widget instead. A
    disabled bar writes nothing at all but keeps the whole interface (``update``, ``close``,
    ``with``, iteration, ``desc``, ``set_description``, ``reset``), so callers never branch
    on it. ``leave`` defaults to False (the bar disappears when done); ``dynamic_ncols``
    to True.

    Args:
        iterable: optional iterable to wrap (as ``tqdm(iterable)``).
        total: the number of steps (``len(iterable)`` when omitted and available).
        desc: the label before the bar.
        enabled: the caller's switch (e.g. a ``progress`` argument or ``--no-progress``).
        **kwargs: passed on to tqdm (``initial``, ``unit``, ``leave``, ...).

    Returns:
        the tqdm bar, live or disabled.

    Example:
        >>> with progress_bar(total=3, desc="demo", enabled=False) as bar:
        ...     for _ in range(3):
        ...         bar.update()
        >>> bar.disable
        True
        >>> [x for x in progress_bar(range(3), enabled=False)]
        [0, 1, 2]
    """
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    live = enabled and (stderr_is_terminal() or _notebook())
    bar = tqdm(iterable, total=total, desc=desc, disable=not live, **kwargs)
    if not live:  # tqdm leaves ``desc`` unset on a disabled bar; callers read it back
        bar.desc = desc or ""
    return bar
