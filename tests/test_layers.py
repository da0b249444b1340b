"""The package's imports go one way: no cycles, no upward edges, and a runtime without torch.

The import graph is read from the source with `ast`, every `import` statement counted,
wherever it stands (module level or inside a function: a lazy import is still a
dependency). Imports under `if TYPE_CHECKING:` are left out: they never run. The layer
table below mirrors the one at the top of docs/architecture.md.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "python"
PACKAGE = SRC / "serlaq"

# layer -> the module prefixes it holds (the longest prefix decides), in docs/architecture.md order
LAYERS: dict[str, tuple[str, ...]] = {
    "base": (
        "serlaq.errors",
        "serlaq.version",
        "serlaq.feature_config",
        "serlaq.presets",
        "serlaq.config",
        "serlaq.laq_config",
        "serlaq.labels",
        "serlaq.io",
        "serlaq.provenance",
        "serlaq.cpus",
        "serlaq.metrics",
        "serlaq.plots",
        "serlaq.waveform",
        "serlaq._native",
    ),
    "runtime": ("serlaq.runtime",),
    "data": ("serlaq.data", "serlaq.features"),
    "model": ("serlaq.model", "serlaq.lightning_utils"),
    "laq": ("serlaq.laq",),
    "training": ("serlaq.training",),
    "evaluation": ("serlaq.evaluation", "serlaq.cross_corpus"),
    "reports": ("serlaq.reports",),
    "cli": ("serlaq.cli", "serlaq"),
}
# layer -> the layers it may import (its own included)
MAY_IMPORT: dict[str, set[str]] = {
    "base": {"base"},
    "runtime": {"base", "runtime"},
    "data": {"base", "data"},
    "model": {"base", "data", "model"},
    "laq": {"base", "data", "model", "laq"},
    "training": {"base", "data", "model", "laq", "training"},
    "evaluation": {"base", "runtime", "data", "evaluation"},
    "reports": {"base", "data", "model", "laq", "training", "reports"},
    "cli": set(LAYERS),
}
# what the runtime must never reach, directly or through other modules
HEAVY = ("torch", "torchaudio", "torchmetrics", "lightning")
TRAINING_SIDE = {"data", "model", "laq", "training", "reports"}

def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except those under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, known: set[str]) -> dict[str, int]:
    """Imported module -> line, for one source file (serlaq modules and external top-level names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: dict[str, int] = {}
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import sub` imports the submodule pkg.sub when there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in targets:
            out.setdefault(target, node.lineno)
    return out


def graph() -> dict[str, dict[str, int]]:
    mods = modules()
    known = set(mods) | {"serlaq._native"}
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def layer_of(module: str) -> str:
    best, layer = -1, ""
    for name, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), name
    if not layer:
        raise AssertionError(f"{module}: in no layer of the table; add it to LAYERS (and docs/architecture.md)")
    return layer


def internal(target: str) -> bool:
    return target == "serlaq" or target.startswith("serlaq.")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def internal_edges(g: dict[str, dict[str, int]]) -> dict[str, set[str]]:
    return {m: {t for t in targets if internal(t) and t != m} for m, targets in g.items()}


def describe_cycle(component: list[str], g: dict[str, dict[str, int]]) -> str:
    inside = set(component)
    ties = [
        f"{m} -> {t} ({modules()[m].relative_to(SRC)}:{line})"
        for m in component
        for t, line in sorted(g[m].items())
        if t in inside and t != m
    ]
    return "cycle: " + "; ".join(ties)


def upward_edges(g: dict[str, dict[str, int]]) -> list[tuple[str, str, str]]:
    """(module, imported module, description) of every import against MAY_IMPORT."""
    bad = []
    for m, targets in g.items():
        src = layer_of(m)
        for t, line in sorted(targets.items()):
            if internal(t) and t != m and layer_of(t) not in MAY_IMPORT[src]:
                bad.append((m, t, f"{modules()[m].relative_to(SRC)}:{line}: {m} ({src}) imports {t} ({layer_of(t)})"))
    return bad


def violations() -> list[str]:
    """Every import cycle and every upward edge in the package."""
    g = graph()
    found = [describe_cycle(c, g) for c in cycles(internal_edges(g))]
    found += [text for _, _, text in upward_edges(g)]
    return found


# --- the checker itself ---------------------------------------------------------------


def test_the_checker_sees_lazy_imports_cycles_and_upward_edges(tmp_path: Path) -> None:
    source = tmp_path / "serlaq" / "m.py"
    source.parent.mkdir()
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import torch\n"
        "def f():\n    from serlaq.training import fit\n    from . import n\n"
        "if TYPE_CHECKING:\n    from serlaq.cli import app\n"
    )
    found = imports_of("serlaq.m", source, {"serlaq.n", "serlaq.training"})
    assert found == {"typing": 1, "torch": 2, "serlaq.training": 4, "serlaq.n": 5}  # TYPE_CHECKING left out
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert layer_of("serlaq.laq.qat") == "laq" and layer_of("serlaq.laq_config") == "base"
    assert layer_of("serlaq") == "cli" and layer_of("serlaq.runtime.model") == "runtime"


def test_every_module_is_in_the_layer_table() -> None:
    for name in modules():
        layer_of(name)


def test_the_layer_table_is_the_one_in_the_docs() -> None:
    docs = (SRC.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    for layer, allowed in MAY_IMPORT.items():
        assert f"**{layer}**" in docs, f"docs/architecture.md does not name the layer {layer}"
    for prefixes in LAYERS.values():
        for prefix in prefixes:
            if prefix != "serlaq":
                assert f"`{prefix.removeprefix('serlaq.').replace('.', '/')}" in docs, f"docs/architecture.md: {prefix}"


# --- the package ----------------------------------------------------------------------


def test_no_import_cycles_and_no_upward_imports_anywhere() -> None:
    found = violations()
    assert not found, "\n".join(found)


def runtime_closure() -> tuple[set[str], dict[str, str]]:
    """serlaq modules reachable from the runtime layer, and external names -> who imports them."""
    g = graph()
    todo = [m for m in g if layer_of(m) == "runtime"]
    assert todo, "no runtime modules found"
    seen: set[str] = set()
    external: dict[str, str] = {}
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        for t in g.get(m, {}):
            if internal(t):
                todo.append(t)
            else:
                external.setdefault(t.split(".")[0], m)
    return seen, external


def test_the_runtime_reaches_no_torch_and_no_training_module() -> None:
    reached, external = runtime_closure()
    heavy = {name: who for name, who in external.items() if name in HEAVY}
    training = sorted(m for m in reached if layer_of(m) in TRAINING_SIDE or layer_of(m) == "cli")
    assert not heavy, f"the runtime imports {heavy} (name: importing module)"
    assert not training, f"the runtime reaches training-side modules {training}"


def test_importing_the_runtime_loads_no_torch() -> None:
    probe = (
        "import importlib, json, pkgutil, sys\n"
        "import serlaq.runtime as r\n"
        "for m in getattr(r, '__path__', None) and pkgutil.walk_packages(r.__path__, 'serlaq.runtime.') or []:\n"
        "    importlib.import_module(m.name)\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
