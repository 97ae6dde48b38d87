"""The training package's modules import one way, and each uses only what another module makes
public: the Python twin of scripts/imports.test.mjs. No module reaches itself through its
imports (an import inside a function counts: a circle is a circle to read, whenever it closes),
and no module takes a `_private` name from another training module, by `from .x import _y` or
by `x._y`. A name that several modules need is public, in the one module that owns it.

The package's modules and training/scripts/ are held to both; the tests are held to no cycles
only (a test may reach into the private helper it tests)."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

TRAINING = Path(__file__).resolve().parents[1]
PACKAGE = TRAINING.name                                         # "training"


def module_name(path: Path) -> str:
    """training/capture.py -> 'training.capture'; training/tests/__init__.py -> 'training.tests'."""
    parts = (PACKAGE, *path.relative_to(TRAINING).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def training_modules() -> dict[str, Path]:
    """Every module under training/ (the virtual environment and caches left out)."""
    files = [p for p in TRAINING.rglob("*.py")
             if not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(TRAINING).parts)]
    return {module_name(p): p for p in sorted(files)}


def _package_of(name: str, path: Path) -> str:
    """The package a module's relative imports start from."""
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _absolute(node: ast.ImportFrom, name: str, path: Path) -> str:
    if not node.level:
        return node.module or ""
    base = _package_of(name, path).split(".")
    base = base[:len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(name: str, path: Path, known: set[str]) -> tuple[set[str], list[str]]:
    """-> (the training modules `name` imports, anywhere in the file; the private names it takes
    from them, each as 'module._name')."""
    tree = ast.parse(path.read_text(), filename=str(path))
    imported: set[str] = set()
    private: list[str] = []
    aliases: dict[str, str] = {}                                # local name -> training module
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in known:
                    imported.add(a.name)
                    if a.asname:
                        aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node, name, path)
            for a in node.names:
                submodule = f"{source}.{a.name}"
                if submodule in known:                          # from . import metrics
                    imported.add(submodule)
                    aliases[a.asname or a.name] = submodule
                elif source in known:                           # from .metrics import band_index
                    imported.add(source)
                    if _is_private(a.name) and source != name:
                        private.append(f"{source}.{a.name}")
    for node in ast.walk(tree):                                 # metrics._band_index, training.metrics._band_index
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            head, _, rest = _dotted(node.value).partition(".")
            module = ".".join(filter(None, [aliases.get(head, head), rest]))
            if module in known and module != name:
                private.append(f"{module}.{node.attr}")
    imported.discard(name)
    return imported, sorted(set(private))


def _dotted(node: ast.expr) -> str:
    """`a.b.c` of a chain of names, '' for anything else (a call, a subscript)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _is_private(attr: str) -> bool:
    return attr.startswith("_") and not attr.startswith("__")


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle a depth-first walk of the graph (module -> the modules it imports) closes,
    each as the modules around it."""
    state: dict[str, int] = {}                                  # absent: unseen, 1: on the path, 2: done
    path: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                cycles.append([*path[path.index(n):], n])
            elif not state.get(n):
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if not state.get(m):
            visit(m)
    return cycles


def _graph() -> tuple[dict[str, set[str]], dict[str, list[str]]]:
    modules = training_modules()
    known = set(modules)
    graph, private = {}, {}
    for name, path in modules.items():
        graph[name], private[name] = imports_of(name, path, known)
    return graph, private


def test_training_has_no_circular_imports():
    graph, _ = _graph()
    assert len(graph) > 40, f"found only {len(graph)} modules under training/"
    assert "training.metrics" in graph["training.calibration"], "the import reader misses calibration -> metrics"
    assert "training.train" in graph["training.scripts.precision_check"], "the import reader misses a script's import"
    assert [" -> ".join(c) for c in import_cycles(graph)] == []


def test_no_private_name_crosses_modules():
    _, private = _graph()
    crossing = [f"{m} takes {n}" for m, names in private.items() if not m.startswith(f"{PACKAGE}.tests.") for n in names]
    assert crossing == []


def test_the_readers_find_a_cycle_and_a_borrowed_private_name(tmp_path, monkeypatch):
    assert import_cycles({"a": {"b", "c"}, "b": {"c", "a"}, "c": set()}) == [["a", "b", "a"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []
    pkg = tmp_path / PACKAGE
    (pkg / "scripts").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "metrics.py").write_text("def _band(x):\n    return x\n\ndef band(x):\n    return _band(x)\n")
    (pkg / "calibration.py").write_text("from . import metrics\n\ndef f(x):\n"
                                        "    from .evaluate import _logits\n    return metrics._band(x)\n")
    (pkg / "evaluate.py").write_text("from .calibration import f\n\ndef _logits():\n    return f(1)\n")
    (pkg / "scripts" / "probe.py").write_text(f"from {PACKAGE}.metrics import _band, band\n")
    (pkg / "scripts" / "dotted.py").write_text(f"import {PACKAGE}.metrics\n{PACKAGE}.metrics._band(1)\n")
    monkeypatch.setattr(sys.modules[__name__], "TRAINING", pkg)
    graph, private = _graph()
    assert import_cycles(graph) == [[f"{PACKAGE}.calibration", f"{PACKAGE}.evaluate", f"{PACKAGE}.calibration"]]
    assert private == {f"{PACKAGE}": [], f"{PACKAGE}.metrics": [], f"{PACKAGE}.evaluate": [],
                       f"{PACKAGE}.calibration": [f"{PACKAGE}.evaluate._logits", f"{PACKAGE}.metrics._band"],
                       f"{PACKAGE}.scripts.probe": [f"{PACKAGE}.metrics._band"],
                       f"{PACKAGE}.scripts.dotted": [f"{PACKAGE}.metrics._band"]}
