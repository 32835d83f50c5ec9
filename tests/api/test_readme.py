"""The README's Python examples run as written (in a temporary working folder)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_blocks() -> list[str]:
    """Every ```python block of the README, in order (the Python API section's come first)."""
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_examples_run(tmp_path, monkeypatch, capsys):
    blocks = _python_blocks()
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    for block in blocks:  # one session: later examples use the earlier ones' names
        exec(compile(block, str(README), "exec"), scope)
    out = capsys.readouterr().out
    assert "test accuracy" in out and "truth" in out and "ln B" in out
    assert scope["res"].test_accuracy > 0.9
    assert (tmp_path / "runs" / "digits-plane" / "metrics.jsonl").exists()
