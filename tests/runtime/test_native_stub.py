"""`_native.pyi` is the native module's typed face: every public name the compiled module
has is declared there, and nothing is declared that the module lacks (a stub that drifts
types calls that fail, or hides calls that exist)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from serlaq import _native

STUB = Path(_native.__file__).with_name("_native.pyi")
if not STUB.exists():  # an installed wheel keeps the stub beside the package's sources
    STUB = Path(__file__).resolve().parents[2] / "python" / "serlaq" / "_native.pyi"


def typing_only(node: ast.AST) -> bool:
    """A name the stub defines for its own annotations: a TypedDict or Protocol, or a type
    alias (`X = tuple[...]`)."""
    if isinstance(node, ast.ClassDef):
        return any(isinstance(b, ast.Name) and b.id in ("TypedDict", "Protocol") for b in node.bases)
    return isinstance(node, ast.Assign) and isinstance(node.value, ast.Subscript)


def declared() -> dict[str, ast.AST]:
    """The stub's top-level public names: functions, classes, annotated or assigned values."""
    names: dict[str, ast.AST] = {}
    for node in ast.parse(STUB.read_text()).body:
        if typing_only(node):
            continue
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
        elif isinstance(node, ast.Assign):
            names.update({t.id: node for t in node.targets if isinstance(t, ast.Name)})
    return {k: v for k, v in names.items() if not k.startswith("_")}


def test_the_stub_declares_what_the_module_has() -> None:
    stub = declared()
    module = {name for name in dir(_native) if not name.startswith("_")}
    assert sorted(module - set(stub)) == [], "in the module, not in _native.pyi"
    assert sorted(set(stub) - module) == [], "in _native.pyi, not in the module"


def test_functions_take_the_parameters_the_stub_names() -> None:
    """Each native function's keyword names (pyo3's `text_signature`) are the stub's."""
    checked = 0
    for name, node in declared().items():
        obj = getattr(_native, name)
        if not isinstance(node, ast.FunctionDef) or not callable(obj) or inspect.isclass(obj):
            continue
        try:
            params = list(inspect.signature(obj).parameters)
        except (TypeError, ValueError):
            continue  # no signature exposed
        stub_params = [a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)]
        assert params == stub_params, name
        checked += 1
    assert checked >= 20, checked
