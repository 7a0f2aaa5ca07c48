"""The layers are real: every import of every module (function-level and lazy ones included), read with `ast`.

Allowed edges (docs/architecture.md): the leaves (poslabels, basemodels, problems, formats, argcheck, grids) import
no other package of the project, except the two foundation leaves formats (atomic writes) and argcheck (argument
checks), which every other leaf may use and which import nothing; codi imports nothing of
interp, probes, viz or app; probes nothing of codi, interp, viz or app; viz nothing of codi, interp, probes or app;
interp nothing of probes, viz or app; only app joins all of them; no import cycle between modules.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LEAVES = ("poslabels", "basemodels", "problems", "formats", "argcheck", "grids")
LIBRARY = ("codi", "interp", "probes", "viz")
PACKAGES = (*LEAVES, *LIBRARY, "app")
FOUNDATION = ("formats", "argcheck")  # the leaves under the leaves: every other leaf may write and check through them
LEAF_USES = {leaf: set(FOUNDATION) for leaf in LEAVES if leaf not in FOUNDATION}
FORBIDDEN = {
    "codi": {"interp", "probes", "viz", "app"},
    "probes": {"codi", "interp", "viz", "app"},
    "viz": {"codi", "interp", "probes", "app"},  # DESIGN.md: viz imports plotly and the result-grid leaf
    "interp": {"probes", "viz", "app"},  # DESIGN.md: interp imports codi, the leaves, TL, nnsight
    **{leaf: set(PACKAGES) - {leaf} - LEAF_USES.get(leaf, set()) for leaf in LEAVES},
}


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the project's packages (a package is its __init__)."""
    out = {}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[tuple[str, str]]:
    """(imported module, imported name or '') for every import statement anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {(a.name, "") for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:  # relative: resolve against this module's package
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([mod] if mod else []))
            for a in node.names:
                sub = f"{mod}.{a.name}"
                found.add((sub, "") if sub in MODULES else (mod, a.name))
    return {(m, n) for m, n in found if m.split(".")[0] in PACKAGES}


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}
GRAPH = {name: {m for m, _ in imps if m in MODULES and m != name} for name, imps in IMPORTS.items()}


def _edges_into(src_pkg: str, dst_pkgs: set[str]) -> list[str]:
    return sorted(f"{src} -> {dst}" for src, dsts in GRAPH.items() if src.split(".")[0] == src_pkg
                  for dst in dsts if dst.split(".")[0] in dst_pkgs)


def test_the_scan_sees_lazy_imports():
    """Guards the scan itself: function-level imports are found, and every package has modules."""
    assert {pkg for pkg in (m.split(".")[0] for m in MODULES)} == set(PACKAGES)
    assert "codi.train" in GRAPH["app.train_commands"]  # imported inside cmd_train
    assert "interp.identity" in GRAPH["interp.activations"]  # imported inside ActivationCache.summary


@pytest.mark.parametrize("pkg", sorted(FORBIDDEN))
def test_allowed_edges(pkg):
    bad = _edges_into(pkg, FORBIDDEN[pkg])
    assert not bad, f"{pkg} may not import {sorted(FORBIDDEN[pkg])}; found:\n" + "\n".join(bad)


def test_only_app_imports_all_of_them():
    joined = defaultdict(set)
    for src, dsts in GRAPH.items():
        joined[src.split(".")[0]] |= {d.split(".")[0] for d in dsts}
    assert [pkg for pkg, dsts in joined.items() if set(LIBRARY) <= dsts | {pkg}] == ["app"]


def test_no_import_cycles_between_modules():
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on_stack.discard(comp[-1])
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_no_private_name_imported_across_packages():
    bad = sorted(f"{src}: from {mod} import {name}" for src, imps in IMPORTS.items() for mod, name in imps
                 if name.startswith("_") and mod.split(".")[0] != src.split(".")[0])
    assert not bad, "\n".join(bad)


def test_cli_imports_no_private_names():
    assert not [(m, n) for m, n in IMPORTS["app.cli"] if n.startswith("_")]


def test_design_layers_import_no_probes():
    """DESIGN.md's layers, checked on their own so a failure names them: interp and viz read results through the
    neutral grid leaf (grids), never through probes."""
    bad = _edges_into("interp", {"probes"}) + _edges_into("viz", {"probes"})
    assert not bad, "\n".join(bad)


def test_grid_leaf_is_what_viz_and_the_interventions_use():
    assert "grids" in GRAPH["viz.heatmap"] and "grids" in GRAPH["interp.interventions.study"]
    assert "probes.grid" not in GRAPH["viz.report"]
