"""The package's shape holds: imports run down the layers only and close no circle (issue 13).

Layers, top to bottom (a module may import its own layer's modules and any lower layer's):

    cli                                   the command line and the process launcher
    viz, tutorial                         pictures, report, the tutorial
    api, model, model_file, estimators,   fit(), the fitted model and its file, scikit-learn classes,
    inference, sklearn                    summaries (gradfit.sklearn: the drop-ins' public entry)
    solvers                               one file per algorithm, the registry, certificates
    data, distributed                     sources of batches: arrays, files, formulas, shards, all-reduce
    problem, numerics                     pure math: the batch interface (Batch, Batches), losses,
                                          penalties, objective; moments, QR, chunks, kernel
    exceptions, _version                  leaves

The batch interface is defined with the problem it feeds (problem/batches.py); data/ and distributed/
implement it (data/batches.py re-exports it under its old path).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gradfit"

LAYERS = [
    {"exceptions", "_version"},
    {"problem", "numerics"},
    {"data", "distributed"},
    {"solvers"},
    {"api", "model", "model_file", "estimators", "inference", "sklearn"},
    {"viz", "tutorial"},
    {"cli", "__main__"},
]


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every gradfit module this file imports, at module level or inside functions."""
    tree = ast.parse(path.read_text())
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("gradfit"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("gradfit"):
                continue
            for alias in node.names:  # `from pkg import module` imports the module
                candidate = f"{mod}.{alias.name}"
                sub = SRC.parent / candidate.replace(".", "/")
                found.add(candidate if sub.with_suffix(".py").exists() or sub.is_dir() else mod)
    return found


def layer_of(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module}: the top-level name {top!r} is in no layer; add it to LAYERS")


def graph() -> dict[str, set[str]]:
    mods = {module_name(p): p for p in SRC.rglob("*.py")}
    edges = {}
    for name, path in mods.items():
        # importing a package runs its __init__; count the edge to the package module itself
        edges[name] = {m for m in imports_of(path) if m in mods and m != name}
    return edges


def test_every_module_has_a_layer():
    for p in SRC.rglob("*.py"):
        name = module_name(p)
        if name != "gradfit":
            layer_of(name)


def test_imports_run_downward_only():
    upward = []
    for mod, deps in graph().items():
        if mod == "gradfit":  # the package's face re-exports from every layer
            continue
        for dep in deps:
            if dep == "gradfit":
                upward.append(f"{mod} imports the package root")
            elif layer_of(dep) > layer_of(mod):
                upward.append(f"{mod} -> {dep}")
    assert not upward, "imports that run up a layer:\n" + "\n".join(sorted(upward))


def test_no_import_circles():
    edges = graph()
    # a package __init__ that re-exports its children is not a circle with them
    def children(pkg):
        return {m for m in edges if m.startswith(pkg + ".")}
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for dep in edges[node]:
            if node in children(dep) or dep in children(node):
                continue
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert not cycles, "import circles:\n" + "\n".join(cycles)


def test_at_most_ten_top_level_modules():
    top = [p.name for p in SRC.glob("*.py")]
    assert len(top) <= 10, top


def test_no_private_names_across_modules():
    """`from gradfit.x import _name` reaches into another module's privates."""
    offenders = []
    for p in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gradfit"):
                offenders += [f"{module_name(p)}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__") and a.name != "_kernels"]
    assert not offenders, "\n".join(offenders)
