"""The layering rule, kept by an ``ast`` walk over ``src/layerib`` (no import is executed).

1. The core (``mi``, ``ib``, ``models``, ``data``, ``rows``, ``utils``, ``config``, ``errors``,
   ``_types``) never imports the application layer (``runs``, ``cli``, ``experiments``,
   ``sweep``, ``report``, ``plotting``, ``analysis``, and ``api`` and the package's own
   ``__init__``, which import ``runs``), neither at module level nor inside a function.
2. The core imports nothing inside functions, except optional dependencies
   (:data:`OPTIONAL`): an import hidden in a function hides a dependency from the reader
   and from this test.
3. No import cycles between layerib modules. Imports inside functions count too (that is
   how the cycles hid: ``sweep.runner`` and ``sweep.table`` imported each other inside
   functions); imports under ``if TYPE_CHECKING:`` do not (they never run).

Violations known when the rule was written sit in :data:`KNOWN`, which the lead empties as
the refactor lands; any other violation fails, and so does a ``KNOWN`` entry that is gone.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "layerib"

CORE = {"mi", "ib", "models", "data", "rows", "utils", "config", "errors", "_types"}
APP = {"runs", "cli", "experiments", "sweep", "report", "plotting", "analysis", "api"}

#: Top-level packages the core may import inside a function: the optional dependencies
#: only, loaded where used so that layerib imports without them. Ray runs sweeps
#: (``pip install 'layerib[ray]'``); TensorBoard backs the optional logging callback
#: (``torch.utils.tensorboard`` needs the ``tensorboard`` package, which torch does not
#: require). Everything else the core uses is a required dependency (torch, numpy, tqdm,
#: pyyaml, pillow, matplotlib, scikit-learn, scipy) or the standard library, imported at
#: the top of the module.
OPTIONAL = {"ray", "tensorboard", "torch.utils.tensorboard"}

#: (file under src/layerib, imported module): violations of rules 1 and 2 known when this
#: test was written, in files being refactored in parallel (issue 30). The lead removes an
#: entry once its file is fixed; the test fails on an entry that no longer occurs.
KNOWN: set[tuple[str, str]] = set()  # emptied: every violation known when the rule was written is fixed


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, root: Path = SRC) -> list[tuple[str, bool, bool]]:
    """``(imported module, inside a function, under TYPE_CHECKING)`` for every import in
    ``path``; ``from a.b import c`` gives ``a.b.c`` (``c`` may be a name, not a module:
    :func:`graph` resolves it), relative imports are made absolute."""
    package = _module_name(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    out = []

    def visit(node: ast.AST, in_function: bool, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                out.extend((a.name, in_function, typing_only) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    pkg = package
                    for _ in range(child.level - 1):
                        pkg = pkg.rpartition(".")[0]
                    base = f"{pkg}.{base}" if base else pkg
                out.extend((f"{base}.{a.name}", in_function, typing_only) for a in child.names)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)),
                  typing_only or _is_type_checking(child))

    visit(ast.parse(path.read_text(), filename=str(path)), False, False)
    return out


def _layer(module: str) -> str | None:
    """``"mi"`` for ``layerib.mi.bounds``, ``"config"`` for ``layerib.config.X``,
    ``""`` for the package itself, None outside layerib."""
    parts = module.split(".")
    if parts[0] != "layerib":
        return None
    return parts[1] if len(parts) > 1 else ""


def violations(root: Path = SRC) -> set[tuple[str, str]]:
    """Rules 1 and 2: ``(file under root, imported module)`` of every offending import (a
    layerib module as the deepest module the import names, others as written)."""
    known = _modules(root)
    found = set()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.split("/")[0].removesuffix(".py") not in CORE:
            continue
        for module, in_function, _ in imports(path, root):
            layer = _layer(module)
            optional = any(module == o or module.startswith(o + ".") for o in OPTIONAL)
            if layer in APP or layer == "" or (in_function and not optional):
                found.add((rel, _resolve(module, known) if layer is not None else module))
    return found


def _modules(root: Path) -> set[str]:
    return {_module_name(p, root) for p in root.rglob("*.py")}


def _resolve(module: str, known: set[str]) -> str | None:
    """The deepest of ``known`` that ``module`` names (``a.b`` for ``a.b.name``), or None."""
    while module and module not in known:
        module = module.rpartition(".")[0]
    return module or None


def graph(root: Path = SRC) -> dict[str, set[str]]:
    """``{layerib module: layerib modules it imports}``, imports under TYPE_CHECKING left out."""
    known = _modules(root)
    g = {}
    for path in sorted(root.rglob("*.py")):
        name = _module_name(path, root)
        g[name] = {t for m, _, typing_only in imports(path, root)
                   if not typing_only and (t := _resolve(m, known)) and t != name}
    return g


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(g):
        if v not in index:
            connect(v)
    return sorted(out)


def test_the_core_imports_no_application_layer_and_nothing_inside_functions():
    found = violations()
    new = sorted(found - KNOWN)
    assert not new, ("the core imports the application layer, or imports inside a function "
                     f"(move it to the top of the module): {new}")
    gone = sorted(KNOWN - found)
    assert not gone, f"fixed, so remove them from KNOWN in tests/test_layering.py: {gone}"


def test_no_import_cycles_between_layerib_modules():
    assert cycles(graph()) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "layerib"
    for rel, text in {"__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize("text,expected", [
    ("from layerib.runs.folder import MetricsLog\n", ("mi/x.py", "layerib.runs.folder")),
    ("def f():\n    from ..plotting import curves\n", ("mi/x.py", "layerib.plotting.curves")),
    ("def f():\n    import json\n", ("mi/x.py", "json")),
    ("def f():\n    from PIL import Image\n", ("mi/x.py", "PIL.Image")),
    ("def f():\n    from layerib.mi.y import g\n", ("mi/x.py", "layerib.mi.y")),
    ("import layerib\n", ("mi/x.py", "layerib")),
])
def test_the_checker_finds_a_new_violation(tmp_path, text, expected):
    root = _tree(tmp_path, {"mi/__init__.py": "", "mi/x.py": text, "mi/y.py": "",
                            "plotting/__init__.py": "", "plotting/curves.py": "",
                            "runs/__init__.py": "", "runs/folder.py": ""})
    assert violations(root) == {expected}


def test_the_checker_allows_optional_dependencies_and_the_application_layer(tmp_path):
    root = _tree(tmp_path, {
        "mi/__init__.py": "", "runs/__init__.py": "",
        "mi/x.py": "import torch\n\ndef f():\n    import ray\n    "
                   "from torch.utils.tensorboard import SummaryWriter\n",
        "runs/folder.py": "def f():\n    from layerib.mi import x\n"})
    assert violations(root) == set()


def test_the_checker_finds_cycles_through_functions_but_not_type_checking(tmp_path):
    root = _tree(tmp_path, {
        "a.py": "def f():\n    from layerib.b import g\n",
        "b.py": "from layerib.a import f\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from layerib.a import f\n",
        "d.py": "from layerib.c import *\n"})
    assert cycles(graph(root)) == [["layerib.a", "layerib.b"]]
    root2 = _tree(tmp_path / "t", {"a.py": "from layerib.c import x\n",
                                   "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                           "    from layerib.a import y\n"})
    assert cycles(graph(root2)) == []
