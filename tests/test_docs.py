"""The user docs run and stay a guide: every ```python block of README.md and docs/**/*.md runs as
written, a ```text block right after one shows what it prints, and the pages keep their rules.

Blocks of one page run in order in one namespace (later blocks use earlier names), in a
temporary working folder. A block that names ``LAYERIB_DATA_ROOT`` needs the real data sets and
is skipped when that variable is unset (it must not be needed by the blocks after it).
A printed listing is compared line by line with every number masked (numbers move with the
thread count and the torch build; the words, flags and layout must not).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = ["README.md", "CHANGELOG.md", "LICENSE", "docs/user-guide.md", "docs/guide/cli.md",
            "docs/architecture.md", "docs/design.md", "docs/performance.md", "docs/results/README.md"]
PAGES = [p for p in (ROOT / "README.md", ROOT / "CHANGELOG.md") if p.exists()] + sorted(
    (ROOT / "docs").rglob("*.md"))
#: pages written for users: no dates of our work, no issue numbers, no "this main"
#: (docs/results/ may say when a table was measured)
USER_PAGES = [p for p in PAGES if "results" not in p.relative_to(ROOT).parts]
README_MAX_LINES = 250

FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
BANNED = [re.compile(p, re.I) for p in (r"issue\s*#", r"\bissue \d", r"\bthis main\b",
                                         r"\bearlier main\b", r"\b20\d\d-\d\d(-\d\d)?\b")]


def _blocks(page: Path) -> list[tuple[str, str, int, int]]:
    """``(language, code, first line, end offset)`` of every fenced block of ``page``."""
    text = page.read_text()
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1, m.end())
            for m in FENCE.finditer(text)]


def _examples(page: Path) -> list[tuple[str, int, str | None]]:
    """``(code, line, listing)`` per ```python block; ``listing`` is the ```text block that
    follows it with nothing but blank lines between (None if there is none)."""
    text, blocks = page.read_text(), _blocks(page)
    out = []
    for i, (lang, code, line, end) in enumerate(blocks):
        if lang != "python":
            continue
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        start_next = text.find("```", end) if nxt else -1
        adjacent = nxt is not None and nxt[0] == "text" and not text[end:start_next].strip()
        out.append((code, line, nxt[1] if adjacent else None))
    return out


def _masked(text: str) -> list[str]:
    """Non-empty lines, numbers as ``#``, runs of spaces as one."""
    return [re.sub(r"\s+", " ", NUMBER.sub("#", ln)).strip() for ln in text.splitlines()
            if ln.strip()]


PAGES_WITH_CODE = [p for p in PAGES if _examples(p)]


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run_and_print_their_listing(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scope: dict = {"__name__": "__docs__"}
    skipped = []
    for code, line, listing in _examples(page):
        where = f"{page.relative_to(ROOT)}:{line}"
        if "LAYERIB_DATA_ROOT" in code and not os.environ.get("LAYERIB_DATA_ROOT"):
            skipped.append(where)
            continue
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(code, where, "exec"), scope)
        if listing is not None:
            assert _masked(buf.getvalue()) == _masked(listing), (
                f"{where}: printed output differs from the ```text listing after it "
                f"(numbers masked); it printed:\n{buf.getvalue()}")
    if skipped:
        pytest.skip(f"blocks at {', '.join(skipped)} need LAYERIB_DATA_ROOT (the rest ran)")


def test_every_page_with_python_is_found():
    names = {str(p.relative_to(ROOT)) for p in PAGES_WITH_CODE}
    assert {"README.md", "docs/user-guide.md", "docs/architecture.md"} <= names


def test_the_documentation_set_is_complete():
    missing = [name for name in REQUIRED if not (ROOT / name).exists()]
    assert not missing, f"missing pages: {missing}"
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_readme_is_short():
    n = len((ROOT / "README.md").read_text().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; move detail to docs/ (limit {README_MAX_LINES})"


def test_readme_keeps_the_two_commands_on_top():
    first = _blocks(ROOT / "README.md")[0]
    lines = first[1].splitlines()
    assert first[0] == "bash" and len(lines) == 2
    assert lines[0].endswith("layerib train --dataset mnist --method ib --out runs/mnist-ib")
    assert lines[1].endswith('python3 -m pytest -q -p no:cacheprovider')


@pytest.mark.parametrize("page", USER_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_user_pages_carry_no_session_talk(page):
    hits = [f"line {i}: {m.group(0)!r}" for i, ln in enumerate(page.read_text().splitlines(), 1)
            for rx in BANNED for m in [rx.search(ln)] if m]
    assert not hits, f"{page.relative_to(ROOT)}: {'; '.join(hits)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_files(page):
    text = FENCE.sub("", page.read_text())
    missing = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.exists():
            missing.append(target)
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_masking_compares_words_not_numbers():
    assert _masked("I = 2.556 nats [2.404, 2.709], B = 600\n\n") == ["I = # nats [#, #], B = #"]
    assert _masked("x 1e-3") != _masked("y 1e-3")
